package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.goldfinch.proto.internal.v1.CacheStoreGrpc;
import dev.goldfinch.proto.internal.v1.StatsRequest;
import dev.goldfinch.proto.internal.v1.StatsResponse;
import dev.goldfinch.proto.v1.GenerateRequest;
import dev.goldfinch.proto.v1.GenerateResponse;
import dev.goldfinch.proto.v1.GenerationGrpc;
import dev.goldfinch.proto.v1.SamplingParams;
import dev.goldfinch.service.Channels;
import dev.goldfinch.service.HealthProbe;
import dev.goldfinch.service.tls.MeshCertificates;
import dev.goldfinch.service.tls.TlsProperties;
import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * Transport security end to end: the mesh of {@code serve} (its throwaway CA, mutual TLS inside) with a public
 * certificate on the gateway. Internal ports serve only clients holding a certificate of the mesh's CA; the
 * public ports serve TLS to clients without one; the mesh still answers. Needs nothing outside the repository:
 * a byte-level vocabulary is written here.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class MeshTlsEndToEndTest {
    private static final List<String> INTERNAL = List.of("cache-store", "prefill", "decode-1");

    @TempDir
    static Path dir;

    MeshLauncher mesh;
    MeshCertificates publicCa;
    MeshCertificates foreignCa;

    @BeforeAll
    void startMesh() throws Exception {
        Path vocab = dir.resolve("bytes-vocab.txt");
        StringBuilder v = new StringBuilder();
        for (int b = 0; b < 256; b++) {
            v.append(b + 1).append(" b'\\x").append(String.format("%02x", b)).append("' 1\n");
        }
        Files.writeString(vocab, v, StandardCharsets.UTF_8);
        publicCa = MeshCertificates.create("test-public-ca");
        foreignCa = MeshCertificates.create("someone-elses-ca");
        TlsProperties.Mesh publicCert = publicCa.issue("api");
        mesh = MeshLauncher.start(new MeshLauncher.Options(
                null,
                "layers=2,width=64,head=32,vocab=257", // every id the model can sample is in the byte vocabulary
                7,
                "f32",
                vocab,
                null,
                1,
                0,
                0,
                MeshEndToEndTest.MAX_PROMPT,
                MeshEndToEndTest.CAP,
                null,
                Map.of(
                        "logging.level.root", "WARN",
                        "goldfinch.tls.public.certificate",
                                publicCert.certificate().toString(),
                        "goldfinch.tls.public.private-key",
                                publicCert.privateKey().toString())));
    }

    @AfterAll
    void stopMesh() {
        if (mesh != null) {
            mesh.close();
        }
        for (MeshCertificates ca : new MeshCertificates[] {publicCa, foreignCa}) {
            if (ca != null) {
                ca.close();
            }
        }
    }

    private StatsResponse stats(ManagedChannel channel) {
        try {
            return CacheStoreGrpc.newBlockingStub(channel)
                    .withDeadlineAfter(10, TimeUnit.SECONDS)
                    .stats(StatsRequest.getDefaultInstance());
        } finally {
            Channels.close(channel);
        }
    }

    private void assertRefused(String service, ChannelCredentials credentials) {
        ManagedChannel channel = Channels.open("127.0.0.1:" + mesh.grpcPort(service), credentials);
        StatusRuntimeException e = assertThrows(StatusRuntimeException.class, () -> stats(channel), service);
        assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), service + ": " + e.getStatus());
    }

    @Test
    void aClientWithAMeshCertificateIsServed() {
        StatsResponse s = stats(mesh.internalChannel("cache-store"));
        assertFalse(s.getBackend().isEmpty());
    }

    /** Compose's healthchecks: the probe presents the identity its environment names, as the service does. */
    @Test
    void theHealthProbeUsesTheMeshIdentityOfItsEnvironment() {
        TlsProperties.Mesh probe = mesh.issueCertificate("probe");
        var env = Map.of(
                "GOLDFINCH_TLS_MESH_CERTIFICATE", probe.certificate().toString(),
                "GOLDFINCH_TLS_MESH_PRIVATEKEY", probe.privateKey().toString(),
                "GOLDFINCH_TLS_MESH_CA", probe.ca().toString());
        for (String service : INTERNAL) {
            String target = "127.0.0.1:" + mesh.grpcPort(service);
            assertTrue(HealthProbe.serving(target, HealthProbe.meshCredentials(env)), service);
            assertFalse(HealthProbe.serving(target, HealthProbe.meshCredentials(Map.of())), service + " in plaintext");
        }
    }

    @Test
    void everyInternalPortRefusesAPlaintextClient() {
        for (String service : INTERNAL) {
            assertRefused(service, InsecureChannelCredentials.create());
        }
    }

    @Test
    void everyInternalPortRefusesATlsClientWithoutACertificate() throws Exception {
        ChannelCredentials noCertificate = TlsChannelCredentials.newBuilder()
                .trustManager(mesh.meshCa().toFile())
                .build();
        for (String service : INTERNAL) {
            assertRefused(service, noCertificate);
        }
    }

    @Test
    void theCacheStoreRefusesACertificateOfAnotherCa() throws Exception {
        TlsProperties.Mesh intruder = foreignCa.issue("intruder");
        ChannelCredentials foreign = TlsChannelCredentials.newBuilder()
                .keyManager(
                        intruder.certificate().toFile(), intruder.privateKey().toFile())
                .trustManager(mesh.meshCa().toFile()) // it trusts the store; the store must not trust it
                .build();
        assertRefused("cache-store", foreign);
    }

    @Test
    void thePublicPortsServeTlsWithoutAClientCertificateAndTheMeshAnswers() throws Exception {
        SSLContext tls = SSLContext.getInstance("TLS");
        tls.init(null, trusting(publicCa.caFile()).getTrustManagers(), null);
        String body = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":3,\"temperature\":0}";
        try (HttpClient http = HttpClient.newBuilder().sslContext(tls).build()) {
            HttpResponse<String> r = http.send(
                    HttpRequest.newBuilder(URI.create(
                                    "https://127.0.0.1:" + mesh.httpPort("gateway") + "/v1/chat/completions"))
                            .header("Content-Type", "application/json")
                            .POST(HttpRequest.BodyPublishers.ofString(body))
                            .build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(200, r.statusCode(), r.body());
            assertTrue(r.body().contains("\"completion_tokens\":3"), r.body());
        }

        ManagedChannel grpc = Channels.open(
                "127.0.0.1:" + mesh.grpcPort("gateway"),
                TlsChannelCredentials.newBuilder()
                        .trustManager(publicCa.caFile().toFile())
                        .build());
        try {
            Iterator<GenerateResponse> it = GenerationGrpc.newBlockingStub(grpc)
                    .withDeadlineAfter(120, TimeUnit.SECONDS)
                    .generate(GenerateRequest.newBuilder()
                            .setPromptUtf8(ByteString.copyFromUtf8("hello"))
                            .setSampling(SamplingParams.newBuilder().setMaxTokens(3))
                            .build());
            List<Integer> tokens = new ArrayList<>();
            it.forEachRemaining(r -> tokens.addAll(r.getTokenIdsList()));
            assertEquals(3, tokens.size());
        } finally {
            Channels.close(grpc);
        }

        ManagedChannel plaintext = Channels.open("127.0.0.1:" + mesh.grpcPort("gateway"));
        try {
            StatusRuntimeException e = assertThrows(
                    StatusRuntimeException.class,
                    () -> GenerationGrpc.newBlockingStub(plaintext)
                            .withDeadlineAfter(10, TimeUnit.SECONDS)
                            .generate(GenerateRequest.newBuilder()
                                    .setPromptUtf8(ByteString.copyFromUtf8("hello"))
                                    .build())
                            .hasNext());
            assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), "plaintext to a TLS port");
        } finally {
            Channels.close(plaintext);
        }
    }

    private static TrustManagerFactory trusting(Path caPem) throws Exception {
        KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
        store.load(null, null);
        try (InputStream in = Files.newInputStream(caPem)) {
            store.setCertificateEntry(
                    "ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory f = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        f.init(store);
        return f;
    }
}
