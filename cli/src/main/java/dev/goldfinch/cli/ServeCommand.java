package dev.goldfinch.cli;

import dev.goldfinch.cache.client.CacheClientProperties;
import dev.goldfinch.cache.client.EntrySigner;
import dev.goldfinch.gateway.ApiKeys;
import dev.goldfinch.mesh.MeshLauncher;
import dev.goldfinch.mesh.ProcessMeshLauncher;
import dev.goldfinch.model.GoldFinchException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(
        name = "serve",
        mixinStandardHelpOptions = true,
        description =
                "Run the whole mesh on this machine: cache store, prefill, decode replicas and the gateway, each on its own loopback port with real gRPC between them.")
final class ServeCommand implements Callable<Integer> {
    @Mixin
    ModelOptions model;

    @Option(
            names = "--vocab",
            required = true,
            description = "The RWKV World vocabulary file (rwkv_vocab_v20230424.txt).")
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
            names = "--separate-processes",
            description = "Run each service as its own child JVM (real loopback gRPC between processes), print"
                    + " 'service NAME pid PID grpc PORT http PORT' for each, and stop them all on exit. Their"
                    + " logs go to the directory printed as 'logs DIR'.")
    boolean separateProcesses;

    @Override
    public Integer call() throws InterruptedException, IOException {
        if (decodeReplicas < 1) {
            throw new dev.goldfinch.model.GoldFinchException.InvalidInput("--decode-replicas must be at least 1");
        }
        if (apiKeys != null) {
            ApiKeys.load(apiKeys); // a malformed file is one 'error:' line here, not a gateway's failed start
        }
        MeshLauncher.Options options = new MeshLauncher.Options(
                model.source.model,
                model.source.shape,
                model.seed,
                model.dtype,
                vocab,
                redis,
                decodeReplicas,
                port,
                grpcPort,
                maxPromptTokens,
                maxTokensCap,
                apiKeys,
                extra());
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
        System.out.println("ready: http://127.0.0.1:" + port + " grpc://127.0.0.1:" + grpcPort);
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
                model.quantize));
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
}
