package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

/**
 * docker-compose.yml names every service, port and variable the applications read: each GOLDFINCH_*
 * variable is a property of a configuration class (in Spring's environment-variable form), each service
 * runs an application that exists, and every address it is given names a service of the file.
 */
class DockerComposeConfigTest {
    static final Set<String> SPRING = Set.of("SERVER_PORT", "SPRING_GRPC_SERVER_PORT");

    /** Every property of every configuration class, in Spring's environment-variable form. */
    static Set<String> knownVariables() {
        Set<String> vars = new HashSet<>();
        for (String property : ConfigurationCatalog.defaults().keySet()) {
            vars.add(ConfigurationCatalog.environmentVariable(property));
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
                Set.of(
                        "mesh-certs",
                        "redis",
                        "cache-store",
                        "prefill",
                        "decode-1",
                        "decode-2",
                        "gateway",
                        "prometheus",
                        "grafana"),
                services.keySet());
        Map<String, String> mainClass = new HashMap<>();
        Set<String> known = knownVariables();
        for (Map.Entry<String, Map<String, Object>> s : services.entrySet()) {
            if (!MESH.contains(s.getKey())) {
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
            List<String> expected = new java.util.ArrayList<>(List.of(
                    "CMD", "java", "-cp", "/app/goldfinch-mesh.jar:/app/lib/*", "dev.goldfinch.service.HealthProbe"));
            if (name.equals("gateway")) {
                expected.add("--plaintext"); // its gRPC port is the public one, without a public certificate here
            }
            expected.add("127.0.0.1:" + env.get("SPRING_GRPC_SERVER_PORT"));
            assertEquals(expected, probe, name + " probes its own gRPC health");
            Object dependsOn = service.get("depends_on");
            assertTrue(dependsOn instanceof Map, name + " waits for what it calls to be healthy");
            for (Map.Entry<String, Object> d : ((Map<String, Object>) dependsOn).entrySet()) {
                if (d.getKey().equals("mesh-certs")) {
                    continue; // a one-shot job: everyServiceHasAMeshIdentityFromTheCertificatesVolume
                }
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

    /**
     * Mutual TLS inside, as {@code serve} has it: every service of the mesh has its own certificate (named after
     * the compose service its peers dial), its key and the mesh CA, from the volume the one-shot mesh-certs
     * service fills with deploy/tls/make-certs.sh; services mount it read-only and wait for it, and the CA's
     * key lives in a volume only mesh-certs mounts.
     */
    @Test
    @SuppressWarnings("unchecked")
    void everyServiceHasAMeshIdentityFromTheCertificatesVolume() throws Exception {
        Map<String, Map<String, Object>> services = composeServices();
        Map<String, Object> certs = services.get("mesh-certs");
        List<String> entrypoint = (List<String>) certs.get("entrypoint");
        assertEquals(List.of("/bin/sh", "/make-certs.sh", "/certs", "/ca", "10001"), entrypoint);
        List<String> certVolumes = (List<String>) certs.get("volumes");
        assertEquals(
                Set.of("./deploy/tls/make-certs.sh:/make-certs.sh:ro", "mesh-certs:/certs", "mesh-ca:/ca"),
                Set.copyOf(certVolumes));
        assertTrue(Files.isRegularFile(projectFile("deploy/tls/make-certs.sh")), "the script mesh-certs runs");
        String dockerfile = Files.readString(projectFile("Dockerfile"));
        assertTrue(dockerfile.contains("--uid 10001"), "the keys are handed to the image's user, 10001");

        // The certificates the script makes: one per mesh service, named after it.
        String script = Files.readString(projectFile("deploy/tls/make-certs.sh"));
        var listed =
                java.util.regex.Pattern.compile("(?m)^services=\"([^\"]+)\"").matcher(script);
        assertTrue(listed.find(), "make-certs.sh lists the services it certifies");
        assertEquals(Set.copyOf(MESH), Set.of(listed.group(1).split(" ")), "a certificate for every service");
        assertTrue(script.contains("subjectAltName=DNS:%s,IP:127.0.0.1"), "named as peers dial it, and loopback");

        Map<String, Object> volumes = (Map<String, Object>) new Yaml()
                .<Map<String, Object>>load(Files.readString(projectFile("docker-compose.yml")))
                .get("volumes");
        assertTrue(volumes.containsKey("mesh-certs") && volumes.containsKey("mesh-ca"), "named volumes");
        for (Map.Entry<String, Map<String, Object>> s : services.entrySet()) {
            String name = s.getKey();
            List<Object> mounts = (List<Object>) s.getValue().getOrDefault("volumes", List.of());
            if (!name.equals("mesh-certs")) {
                for (Object m : mounts) {
                    assertTrue(!String.valueOf(m).startsWith("mesh-ca:"), name + " must not see the CA's key");
                }
            }
            if (!MESH.contains(name)) {
                continue;
            }
            assertTrue(mounts.contains("mesh-certs:/tls:ro"), name + " mounts the certificates read-only");
            Map<String, Object> env = (Map<String, Object>) s.getValue().get("environment");
            assertEquals("/tls/" + name + ".crt", env.get("GOLDFINCH_TLS_MESH_CERTIFICATE"), name);
            assertEquals("/tls/" + name + ".key", env.get("GOLDFINCH_TLS_MESH_PRIVATEKEY"), name);
            assertEquals("/tls/ca.crt", env.get("GOLDFINCH_TLS_MESH_CA"), name);
            Map<String, Object> dependsOn = (Map<String, Object>) s.getValue().get("depends_on");
            assertEquals(
                    "service_completed_successfully",
                    ((Map<String, Object>) dependsOn.get("mesh-certs")).get("condition"),
                    name + " starts once its certificate exists");
            // Every peer it dials by name holds a certificate of that name (hostname verification).
            for (Object value : env.values()) {
                for (String target : String.valueOf(value).split(",")) {
                    if (target.matches("[a-z0-9-]+:\\d+")) {
                        assertTrue(MESH.contains(target.substring(0, target.indexOf(':'))), name + " dials " + target);
                    }
                }
            }
        }
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
