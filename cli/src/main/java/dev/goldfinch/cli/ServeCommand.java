package dev.goldfinch.cli;

import dev.goldfinch.cache.client.CacheClientProperties;
import dev.goldfinch.cache.client.EntrySigner;
import dev.goldfinch.gateway.ApiKeys;
import dev.goldfinch.mesh.MeshLauncher;
import dev.goldfinch.mesh.ProcessMeshLauncher;
import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "serve",
        mixinStandardHelpOptions = true,
        footer = {"", "Example:", "  goldfinch serve --shape L12-D768 --decode-replicas 2 --api-keys keys.txt"},
        description =
                "Run the whole mesh on this machine: cache store, prefill, decode replicas and the gateway, each on its own loopback port with real gRPC between them.")
final class ServeCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Option(
            names = "--vocab",
            description =
                    "A World-format vocabulary file instead of the bundled RWKV World vocabulary (default: the file beside --model if there is one, else bytes for a model of 256 tokens, else the bundled one).")
    Path vocab;

    @Option(
            names = "--redis",
            paramLabel = "URL",
            description = "Keep the cache in Redis (redis://host:6379) instead of the embedded store.")
    String redis;

    @Option(
            names = "--decode-replicas",
            defaultValue = "1",
            description = "Decode replicas (default: ${DEFAULT-VALUE}).")
    int decodeReplicas;

    @Option(
            names = "--prefill-replicas",
            defaultValue = "1",
            description = "Prefill replicas, balanced by the gateway like decode (default: ${DEFAULT-VALUE}).")
    int prefillReplicas;

    @Option(
            names = "--port",
            defaultValue = "8080",
            description = "HTTP port of the OpenAI-compatible API (default: ${DEFAULT-VALUE}).")
    int port;

    @Option(
            names = "--grpc-port",
            defaultValue = "9090",
            description = "gRPC port of goldfinch.v1.Generation (default: ${DEFAULT-VALUE}).")
    int grpcPort;

    @Option(
            names = "--host",
            defaultValue = "127.0.0.1",
            paramLabel = "ADDR",
            description = "Address the gateway's public ports listen on, e.g. 0.0.0.0 for every interface; the"
                    + " other services stay on loopback (default: ${DEFAULT-VALUE}).")
    String host;

    @Option(
            names = "--max-prompt-tokens",
            defaultValue = "16384",
            description = "Longest prompt accepted (default: ${DEFAULT-VALUE}).")
    int maxPromptTokens;

    @Option(
            names = "--max-tokens-cap",
            defaultValue = "4096",
            description = "Largest max_tokens accepted (default: ${DEFAULT-VALUE}).")
    int maxTokensCap;

    @Option(
            names = "--signing-key-file",
            paramLabel = "FILE",
            description = "The mesh key that signs cache entries (hex or base64, at least 32 bytes; e.g."
                    + " openssl rand -base64 32 > FILE). Default: a random key per run, so a restarted mesh"
                    + " does not trust entries a previous run left in Redis.")
    Path signingKeyFile;

    @Option(
            names = "--api-keys",
            paramLabel = "FILE",
            description = "Require 'Authorization: Bearer KEY': one 'TENANT KEY' pair per line, '#' comments."
                    + " Each tenant's cache entries are its own. Without it the mesh serves anyone.")
    Path apiKeys;

    @Option(
            names = "--served-model-name",
            paramLabel = "NAME",
            split = ",",
            description = "A name clients give as 'model' (repeat it, or separate names with commas, for several);"
                    + " the first is the name answers carry when a request names none. Default: the model's id.")
    List<String> servedModelNames;

    @Option(
            names = "--tls-cert",
            paramLabel = "FILE",
            description = "Serve the public HTTP and gRPC ports over TLS with this certificate chain (PEM);"
                    + " needs --tls-key. Inside, the mesh always speaks mutual TLS with a throwaway CA.")
    Path tlsCert;

    @Option(
            names = "--tls-key",
            paramLabel = "FILE",
            description = "The private key of --tls-cert (PKCS#8 PEM, unencrypted).")
    Path tlsKey;

    @Option(
            names = "--redis-ca",
            paramLabel = "FILE",
            description = "With --redis rediss://...: the CA (PEM) that issued Redis's certificate. Redis's user and"
                    + " password: in the URL, or GOLDFINCH_CACHE_REDISUSERNAME / GOLDFINCH_CACHE_REDISPASSWORD.")
    Path redisCa;

    @Option(
            names = "--initial-state",
            paramLabel = "NAME=FILE",
            description = "A named initial state requests may start from (\"initial_state\": \"NAME\"): a"
                    + " state-tuning file (blocks.N.att.time_state, .pth or .safetensors) or a state written by"
                    + " 'goldfinch state save'. Repeatable.")
    Map<String, Path> initialStates = new LinkedHashMap<>();

    @Option(
            names = "--separate-processes",
            description = "Run each service as its own child JVM (real loopback gRPC between processes), print"
                    + " 'service NAME pid PID grpc PORT http PORT' for each, and stop them all on exit. Their"
                    + " logs go to the directory printed as 'logs DIR'.")
    boolean separateProcesses;

    @Override
    public Integer call() throws InterruptedException, IOException {
        if ((tlsCert == null) != (tlsKey == null)) {
            throw new GoldFinchException.InvalidInput("--tls-cert and --tls-key go together");
        }
        if (decodeReplicas < 1) {
            throw new dev.goldfinch.model.GoldFinchException.InvalidInput("--decode-replicas must be at least 1");
        }
        if (prefillReplicas < 1) {
            throw new dev.goldfinch.model.GoldFinchException.InvalidInput("--prefill-replicas must be at least 1");
        }
        requireFree(host, port, "--port");
        requireFree(host, grpcPort, "--grpc-port");
        if (apiKeys != null) {
            ApiKeys.load(apiKeys); // a malformed file is one 'error:' line here, not a gateway's failed start
        }
        MeshLauncher.Options options = new MeshLauncher.Options(
                        model.source.model,
                        model.source.shape,
                        model.seed,
                        model.dtype,
                        vocab != null ? vocab : WorldTokenizer.vocabularyBeside(model.source.model),
                        redis,
                        decodeReplicas,
                        port,
                        grpcPort,
                        maxPromptTokens,
                        maxTokensCap,
                        apiKeys,
                        extra(),
                        host)
                .withPrefillReplicas(prefillReplicas);
        AutoCloseable mesh;
        if (separateProcesses) {
            ProcessMeshLauncher processes =
                    ProcessMeshLauncher.start(options, Files.createTempDirectory("goldfinch-mesh-logs"));
            processes.children().forEach(c -> System.out.println(c.describe()));
            System.out.println("logs " + processes.logDir());
            mesh = processes;
        } else {
            mesh = MeshLauncher.start(options);
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                mesh.close();
            } catch (Exception e) {
                System.err.println("error: stopping the mesh: " + e.getMessage());
            }
            stopped.countDown();
        }));
        System.out.println(
                tlsCert == null
                        ? "ready: http://" + host + ":" + port + " grpc://" + host + ":" + grpcPort
                        : "ready: https://" + host + ":" + port + " grpcs://" + host + ":" + grpcPort);
        System.out.flush();
        stopped.await();
        return 0;
    }

    private Map<String, String> extra() throws IOException {
        Map<String, String> extra = new LinkedHashMap<>(Map.of(
                "logging.level.root",
                "WARN",
                "logging.level.dev.goldfinch",
                "INFO",
                "goldfinch.model.quantize",
                model.quantize,
                "goldfinch.model.kv-format",
                dev.goldfinch.model.state.KvFormat.parse(model.kvFormat).label()));
        if (tlsCert != null) {
            extra.put(
                    "goldfinch.tls.public.certificate", tlsCert.toAbsolutePath().toString());
            extra.put(
                    "goldfinch.tls.public.private-key", tlsKey.toAbsolutePath().toString());
        }
        if (redisCa != null) {
            extra.put("goldfinch.cache.redis-ca", redisCa.toAbsolutePath().toString());
        }
        initialStates.forEach((name, file) -> {
            if (!Files.isRegularFile(file)) {
                throw new GoldFinchException.InvalidInput("--initial-state " + name + "=" + file + ": no such file");
            }
            extra.put(initialStateProperty(name), file.toAbsolutePath().toString());
        });
        if (servedModelNames != null && !servedModelNames.isEmpty()) {
            extra.put("goldfinch.gateway.served-model-names", String.join(",", servedModelNames));
        }
        if (signingKeyFile != null) {
            String key = Files.readString(signingKeyFile).strip();
            try {
                EntrySigner.parseKey(key, "--signing-key-file"); // fail here, before anything starts
            } catch (IllegalArgumentException e) {
                throw new GoldFinchException.InvalidInput(e.getMessage());
            }
            extra.put(CacheClientProperties.SIGNING_KEY, key);
        }
        return extra;
    }

    /** The prefill service's property naming initial state {@code name} (bracketed: a name may hold dots). */
    static String initialStateProperty(String name) {
        return "goldfinch.prefill.initial-states[" + name + "]";
    }

    /** Before anything starts: a busy public port is one line with its fix, not a half-started mesh. */
    private static void requireFree(String host, int port, String option) {
        try (var socket = new java.net.ServerSocket()) {
            socket.setReuseAddress(true);
            socket.bind(new java.net.InetSocketAddress(host, port));
        } catch (IOException e) {
            throw new GoldFinchException.InvalidInput("port " + port + " (" + option + ") is already in use: stop what"
                    + " listens there, or choose another with " + option);
        }
    }
}
