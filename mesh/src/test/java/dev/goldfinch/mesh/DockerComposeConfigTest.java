package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.cache.app.CacheStoreProperties;
import dev.goldfinch.cache.client.CacheClientProperties;
import dev.goldfinch.decode.DecodeProperties;
import dev.goldfinch.gateway.GatewayProperties;
import dev.goldfinch.prefill.PrefillProperties;
import dev.goldfinch.service.ModelProperties;
import java.io.Reader;
import java.lang.reflect.RecordComponent;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.yaml.snakeyaml.Yaml;

/**
 * docker-compose.yml names every service, port and variable the applications read: each GOLDFINCH_*
 * variable is a property of a configuration class (in Spring's environment-variable form), each service
 * runs an application that exists, and every address it is given names a service of the file.
 */
class DockerComposeConfigTest {
    static final List<Class<?>> CONFIG = List.of(
            ModelProperties.class,
            CacheStoreProperties.class,
            CacheClientProperties.class,
            PrefillProperties.class,
            DecodeProperties.class,
            GatewayProperties.class);
    static final Set<String> SPRING = Set.of("SERVER_PORT", "SPRING_GRPC_SERVER_PORT");

    /** Spring's relaxed binding: goldfinch.model.max-prompt-tokens ← GOLDFINCH_MODEL_MAXPROMPTTOKENS. */
    static Set<String> knownVariables() {
        Set<String> vars = new HashSet<>();
        for (Class<?> c : CONFIG) {
            String prefix = c.getAnnotation(ConfigurationProperties.class).value();
            for (RecordComponent rc : c.getRecordComponents()) {
                vars.add((prefix + "." + rc.getName())
                        .replace('.', '_')
                        .replace("-", "")
                        .toUpperCase(Locale.ROOT));
            }
        }
        return vars;
    }

    static Path projectFile(String name) {
        Path file = Path.of(System.getProperty("maven.multiModuleProjectDirectory", ".."), name);
        return Files.exists(file) ? file : Path.of("..", name);
    }

    @Test
    void theImageRunsAsANonRootUser() throws Exception {
        List<String> lines = Files.readAllLines(projectFile("Dockerfile"));
        int lastFrom = 0;
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).startsWith("FROM ")) {
                lastFrom = i;
            }
        }
        String user = null;
        for (String line : lines.subList(lastFrom, lines.size())) {
            if (line.startsWith("USER ")) {
                user = line.substring(5).trim();
            }
        }
        assertTrue(user != null, "the runtime stage sets a USER");
        assertTrue(!user.equals("root") && !user.equals("0") && !user.startsWith("0:"), "USER " + user);
    }

    @Test
    void theImageIsTheMeshAssemblyWithoutPlotting() throws Exception {
        String dockerfile = Files.readString(projectFile("Dockerfile"));
        assertTrue(
                dockerfile.contains("-pl mesh -am package") && dockerfile.contains("/src/mesh/target/lib /app/lib"),
                "the image holds the mesh assembly and its runtime libraries");
        assertThrows(
                ClassNotFoundException.class,
                () -> Class.forName("org.knowm.xchart.XYChart"),
                "XChart is the command line's (bench plot), never on the services' class path");
    }

    @Test
    @SuppressWarnings("unchecked")
    void composeMatchesTheApplications() throws Exception {
        Path file = projectFile("docker-compose.yml");
        Map<String, Object> compose;
        try (Reader r = Files.newBufferedReader(file)) {
            compose = new Yaml().load(r);
        }
        Map<String, Map<String, Object>> services = (Map<String, Map<String, Object>>) compose.get("services");
        assertEquals(
                Set.of("redis", "cache-store", "prefill", "decode-1", "decode-2", "gateway", "prometheus", "grafana"),
                services.keySet());
        Map<String, String> mainClass = new HashMap<>();
        Set<String> known = knownVariables();
        for (Map.Entry<String, Map<String, Object>> s : services.entrySet()) {
            if (s.getKey().equals("redis") || s.getValue().containsKey("profiles")) {
                continue;
            }
            List<String> command = (List<String>) s.getValue().get("command");
            Class<?> app = Class.forName(command.getFirst());
            mainClass.put(s.getKey(), app.getSimpleName());
            Map<String, Object> env = (Map<String, Object>) s.getValue().get("environment");
            for (Map.Entry<String, Object> v : env.entrySet()) {
                assertTrue(
                        known.contains(v.getKey()) || SPRING.contains(v.getKey()),
                        s.getKey() + ": " + v.getKey() + " is not read by any configuration class");
                String value = String.valueOf(v.getValue());
                for (String target : value.split(",")) {
                    if (target.matches("[a-z0-9-]+:\\d+")) {
                        String host = target.substring(0, target.indexOf(':'));
                        assertTrue(
                                services.containsKey(host),
                                s.getKey() + ": " + v.getKey() + " points at unknown service " + host);
                        String port = target.substring(target.indexOf(':') + 1);
                        Map<String, Object> targetEnv =
                                (Map<String, Object>) services.get(host).get("environment");
                        assertEquals(
                                port,
                                String.valueOf(targetEnv.get("SPRING_GRPC_SERVER_PORT")),
                                v.getKey() + " uses " + host + "'s gRPC port");
                    }
                }
            }
            assertTrue(
                    env.containsKey("SERVER_PORT") && env.containsKey("SPRING_GRPC_SERVER_PORT"),
                    s.getKey() + " sets its ports");
            List<String> ports = (List<String>) s.getValue().get("ports");
            if (s.getKey().equals("gateway")) {
                assertEquals(
                        Set.of(
                                env.get("SERVER_PORT") + ":" + env.get("SERVER_PORT"),
                                env.get("SPRING_GRPC_SERVER_PORT") + ":" + env.get("SPRING_GRPC_SERVER_PORT")),
                        Set.copyOf(ports),
                        "the gateway publishes its public HTTP and gRPC ports, nothing else");
            } else {
                assertEquals(null, ports, s.getKey() + " publishes no port: only the gateway is exposed");
            }
        }
        assertEquals(null, services.get("redis").get("ports"), "Redis publishes no port");
        assertEquals(
                Map.of(
                        "cache-store",
                        "CacheStoreApplication",
                        "prefill",
                        "PrefillApplication",
                        "decode-1",
                        "DecodeApplication",
                        "decode-2",
                        "DecodeApplication",
                        "gateway",
                        "GatewayApplication"),
                mainClass);
        for (String service : List.of("cache-store", "prefill", "decode-1", "decode-2")) {
            Map<String, Object> env =
                    (Map<String, Object>) services.get(service).get("environment");
            assertEquals(
                    "64",
                    String.valueOf(env.get("GOLDFINCH_CACHE_BLOCKSIZE")),
                    service + " reads the mesh's one block size");
        }
        Map<String, Object> gatewayEnv =
                (Map<String, Object>) services.get("gateway").get("environment");
        assertEquals("decode-1:9092,decode-2:9092", gatewayEnv.get("GOLDFINCH_GATEWAY_DECODETARGETS"));
    }

    @SuppressWarnings("unchecked")
    static Map<String, Map<String, Object>> composeServices() throws Exception {
        try (Reader r = Files.newBufferedReader(projectFile("docker-compose.yml"))) {
            Map<String, Object> compose = new Yaml().load(r);
            return (Map<String, Map<String, Object>>) compose.get("services");
        }
    }

    static final List<String> MESH = List.of("cache-store", "prefill", "decode-1", "decode-2", "gateway");

    /** Each service is healthy only when its gRPC health says SERVING, and starts after what it calls is. */
    @Test
    @SuppressWarnings("unchecked")
    void servicesStartInOrderOnGrpcHealth() throws Exception {
        Map<String, Map<String, Object>> services = composeServices();
        Class.forName("dev.goldfinch.service.HealthProbe"); // what the healthchecks run, in the image
        for (String name : MESH) {
            Map<String, Object> service = services.get(name);
            Map<String, Object> env = (Map<String, Object>) service.get("environment");
            List<String> probe = (List<String>) ((Map<String, Object>) service.get("healthcheck")).get("test");
            assertEquals(
                    List.of(
                            "CMD",
                            "java",
                            "-cp",
                            "/app/goldfinch-mesh.jar:/app/lib/*",
                            "dev.goldfinch.service.HealthProbe",
                            "127.0.0.1:" + env.get("SPRING_GRPC_SERVER_PORT")),
                    probe,
                    name + " probes its own gRPC health");
            Object dependsOn = service.get("depends_on");
            assertTrue(dependsOn instanceof Map, name + " waits for what it calls to be healthy");
            for (Map.Entry<String, Object> d : ((Map<String, Object>) dependsOn).entrySet()) {
                assertEquals(
                        "service_healthy",
                        ((Map<String, Object>) d.getValue()).get("condition"),
                        name + " waits for " + d.getKey() + " to be healthy");
                assertTrue(
                        services.get(d.getKey()).containsKey("healthcheck"),
                        d.getKey() + " has a healthcheck to wait on");
            }
        }
        List<String> redis = (List<String>) services.get("redis").get("command");
        assertTrue(
                redis.contains("--requirepass") && redis.contains("allkeys-lru"), "Redis: a password, LRU: " + redis);
        String password = redis.get(redis.indexOf("--requirepass") + 1);
        Map<String, Object> storeEnv =
                (Map<String, Object>) services.get("cache-store").get("environment");
        assertTrue(
                password.startsWith("${GOLDFINCH_REDIS_PASSWORD")
                        && String.valueOf(storeEnv.get("GOLDFINCH_CACHE_REDISPASSWORD"))
                                .equals("${GOLDFINCH_REDIS_PASSWORD}"),
                "the cache store logs in with Redis' password");
        Map<String, Object> modelEnv =
                (Map<String, Object>) services.get("prefill").get("environment");
        assertEquals("${GOLDFINCH_MODEL_PATH:-}", modelEnv.get("GOLDFINCH_MODEL_PATH"), "real weights by a variable");
        for (Map<String, Object> observer : List.of(services.get("prometheus"), services.get("grafana"))) {
            assertEquals(
                    List.of("observe"), observer.get("profiles"), "Prometheus and Grafana only with --profile observe");
            Object ports = observer.get("ports");
            if (ports != null) {
                for (Object p : (List<Object>) ports) {
                    assertTrue(String.valueOf(p).startsWith("127.0.0.1:"), "observers publish on loopback only: " + p);
                }
            }
        }
    }

    /** Prometheus scrapes every service's /metrics on its HTTP port, under the jobs the dashboard selects. */
    @Test
    @SuppressWarnings("unchecked")
    void prometheusScrapesEveryServiceUnderTheDashboardsJobs() throws Exception {
        Map<String, Map<String, Object>> services = composeServices();
        Map<String, Object> config;
        try (Reader r = Files.newBufferedReader(projectFile("deploy/prometheus/prometheus.yml"))) {
            config = new Yaml().load(r);
        }
        Set<String> scraped = new java.util.HashSet<>();
        Set<String> jobs = new java.util.HashSet<>();
        for (Map<String, Object> job : (List<Map<String, Object>>) config.get("scrape_configs")) {
            jobs.add((String) job.get("job_name"));
            assertEquals("/metrics", job.get("metrics_path"), job.get("job_name") + " scrapes the public /metrics");
            for (Map<String, Object> sc : (List<Map<String, Object>>) job.get("static_configs")) {
                for (String target : (List<String>) sc.get("targets")) {
                    String host = target.substring(0, target.indexOf(':'));
                    Map<String, Object> env =
                            (Map<String, Object>) services.get(host).get("environment");
                    assertEquals(
                            String.valueOf(env.get("SERVER_PORT")),
                            target.substring(target.indexOf(':') + 1),
                            target + " is " + host + "'s HTTP port");
                    scraped.add(host);
                }
            }
        }
        assertEquals(Set.copyOf(MESH), scraped, "every service is scraped");
        String dashboard = Files.readString(projectFile("deploy/grafana/goldfinch-mesh.json"));
        var selected = java.util.regex.Pattern.compile("job=\\\\\"([a-z-]+)\\\\\"")
                .matcher(dashboard)
                .results()
                .map(m -> m.group(1))
                .collect(java.util.stream.Collectors.toSet());
        assertTrue(
                !selected.isEmpty() && jobs.containsAll(selected),
                "dashboard jobs " + selected + " are scraped: " + jobs);
    }

    /** Where the Compose CLI exists, it accepts the file as written. */
    @Test
    void dockerComposeAcceptsTheFile() throws Exception {
        org.junit.jupiter.api.Assumptions.assumeTrue(
                run("docker", "compose", "version") == 0, "no docker compose CLI on this machine");
        assertEquals(
                0,
                run("docker", "compose", "-f", projectFile("docker-compose.yml").toString(), "config", "--quiet"),
                "docker compose config");
    }

    private static int run(String... command) throws Exception {
        try {
            ProcessBuilder b = new ProcessBuilder(command);
            b.environment().put("GOLDFINCH_CACHE_SIGNINGKEY", "c2lnbmluZy1rZXktZm9yLWNvbXBvc2UtY29uZmlnLW9ubHk=");
            b.environment().put("GOLDFINCH_REDIS_PASSWORD", "compose-config-only");
            Process p = b.redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .start();
            return p.waitFor();
        } catch (java.io.IOException e) {
            return -1;
        }
    }
}
