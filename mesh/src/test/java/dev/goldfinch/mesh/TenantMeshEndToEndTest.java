package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.GenerateResponse;
import dev.goldfinch.proto.v1.GenerationGrpc;
import dev.goldfinch.proto.v1.SamplingParams;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tenants end to end: the mesh with the embedded store and an API keys file of tenants A and B. A tenant's
 * cache is its own whatever salt another tenant names, and a caller without a valid key gets nothing.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TenantMeshEndToEndTest {
    static final String TENANT_A = "tenant-a";
    static final String KEY_A = "sk-a-7f3c9e1d2b4a";
    static final String KEY_B = "sk-b-0e8d6c4a2f19";

    @TempDir
    static Path dir;

    MeshLauncher mesh;
    MeshClient a;
    MeshClient b;
    MeshClient anonymous;

    @BeforeAll
    void startMesh() throws Exception {
        Path keys = dir.resolve("api-keys");
        Files.writeString(
                keys,
                "# test tenants\n" + TENANT_A + " " + KEY_A + "\ntenant-b " + KEY_B + "\n",
                StandardCharsets.UTF_8);
        mesh = MeshLauncher.start(new MeshLauncher.Options(
                null,
                MeshEndToEndTest.SHAPE,
                7,
                "f32",
                null, // the bundled World vocabulary
                null,
                1,
                0,
                0,
                MeshEndToEndTest.MAX_PROMPT,
                MeshEndToEndTest.CAP,
                keys,
                Map.of("logging.level.root", "WARN")));
        int http = mesh.httpPort("gateway");
        int grpc = mesh.grpcPort("gateway");
        a = new MeshClient(http, grpc, KEY_A);
        b = new MeshClient(http, grpc, KEY_B);
        anonymous = new MeshClient(http, grpc);
    }

    @AfterAll
    void stopMesh() {
        for (MeshClient c : new MeshClient[] {a, b, anonymous}) {
            if (c != null) {
                c.close();
            }
        }
        if (mesh != null) {
            mesh.close();
        }
    }

    private static Map<String, Object> request(List<Integer> prompt, String salt) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("prompt", prompt);
        m.put("max_tokens", 2);
        m.put("temperature", 0);
        if (salt != null) {
            m.put("cache_salt", salt);
        }
        return m;
    }

    private static int cached(MeshClient client, List<Integer> prompt, String salt) throws Exception {
        return client.complete("/v1/completions", request(prompt, salt)).cachedTokens();
    }

    @Test
    void tenantsNeverShareCacheEntriesWhateverSaltTheyName() throws Exception {
        List<Integer> prompt = new ArrayList<>();
        new Random(11).ints(150, 1, 65000).forEach(prompt::add);
        String saltOfA = "salt-of-a";

        assertEquals(0, cached(a, prompt, null), "A starts cold");
        int warmA = cached(a, prompt, null);
        assertTrue(warmA > 0, "A's repeat is served from its cache: " + warmA);
        assertEquals(0, cached(a, prompt, saltOfA), "A's own salt partitions A's cache");
        assertTrue(cached(a, prompt, saltOfA) > 0, "A repeats under its salt");

        assertEquals(0, cached(b, prompt, null), "B without a salt");
        assertEquals(0, cached(b, prompt, TENANT_A), "B naming A's tenant id as its salt");
        assertEquals(0, cached(b, prompt, saltOfA), "B naming A's salt");
        assertTrue(cached(b, prompt, null) > 0, "B's own cache works: its zeros were isolation");
    }

    @Test
    void withoutAValidKeyNothingIsServed() throws Exception {
        Map<String, Object> body = request(List.of(1, 2, 3), null);
        assertEquals(401, anonymous.post("/v1/completions", body).status());
        MeshClient.Reply wrong;
        try (MeshClient stranger = new MeshClient(mesh.httpPort("gateway"), mesh.grpcPort("gateway"), "sk-not-a-key")) {
            wrong = stranger.post("/v1/chat/completions", body);
        }
        assertEquals(401, wrong.status());
        assertEquals("invalid_api_key", wrong.body().get("error").get("code").asString());

        GenerateRequest generate = GenerateRequest.newBuilder()
                .setPromptUtf8(ByteString.copyFromUtf8("Hello"))
                .setSampling(SamplingParams.newBuilder().setMaxTokens(2))
                .build();
        GenerationGrpc.GenerationBlockingStub stub =
                GenerationGrpc.newBlockingStub(anonymous.grpc).withDeadlineAfter(60, TimeUnit.SECONDS);
        StatusRuntimeException e = assertThrows(
                StatusRuntimeException.class, () -> stub.generate(generate).hasNext());
        assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());

        Metadata headers = new Metadata();
        headers.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + KEY_B);
        List<GenerateResponse> out = new ArrayList<>();
        stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers))
                .generate(generate)
                .forEachRemaining(out::add);
        assertTrue(out.getLast().hasUsage(), "tenant B served over gRPC: " + out);
    }
}
