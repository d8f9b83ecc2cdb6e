package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.marcnuri.helm.Helm;
import com.marcnuri.helm.LintResult;
import com.marcnuri.helm.TemplateCommand;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.KubernetesResource;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * deploy/: the Helm chart renders (Helm's own engine, through helm-java), lints clean, and every object it
 * renders is a Kubernetes object with no field Kubernetes does not know; each Deployment runs a service
 * that exists, sets only variables the applications read, probes its own gRPC port, and each address it
 * is given names a headless Service of the chart on that service's port. deploy/kubernetes/ is the chart
 * rendered with its defaults (run with -Dgoldfinch.deploy.write=true to refresh it after a chart change).
 */
class KubernetesManifestsTest {
    static final Path CHART = DockerComposeConfigTest.projectFile("deploy/helm/goldfinch-mesh");
    static final Path RENDERED = DockerComposeConfigTest.projectFile("deploy/kubernetes/goldfinch-mesh.yaml");
    static final Map<String, String> MAIN_CLASS = Map.of(
            "cache-store", "dev.goldfinch.cache.app.CacheStoreApplication",
            "prefill", "dev.goldfinch.prefill.PrefillApplication",
            "decode", "dev.goldfinch.decode.DecodeApplication",
            "gateway", "dev.goldfinch.gateway.GatewayApplication");

    /** What people without Helm apply: the defaults, with a Secret they create themselves (README). */
    static String renderForPlainKubectl() {
        return template().set("secrets.existingSecret", "goldfinch-secrets").call();
    }

    static TemplateCommand template() {
        return new Helm(CHART).template().withName("goldfinch");
    }

    static List<HasMetadata> parse(String yaml) {
        KubernetesSerialization k8s = new KubernetesSerialization();
        List<HasMetadata> objects = new ArrayList<>();
        for (String doc : yaml.split("(?m)^---\\s*$")) {
            if (doc.lines().allMatch(l -> l.isBlank() || l.strip().startsWith("#"))) {
                continue;
            }
            Object o = k8s.unmarshal(doc);
            assertTrue(o instanceof HasMetadata, "not a Kubernetes object:\n" + doc);
            assertNoUnknownFields(
                    o,
                    o.getClass().getSimpleName() + " "
                            + ((HasMetadata) o).getMetadata().getName());
            objects.add((HasMetadata) o);
        }
        return objects;
    }

    /** fabric8 keeps a field it does not know in additionalProperties: Kubernetes would reject it. */
    static void assertNoUnknownFields(Object root, String where) {
        walk(root, new IdentityHashMap<>(), o -> {
            try {
                Method m = o.getClass().getMethod("getAdditionalProperties");
                Object extra = m.invoke(o);
                assertTrue(
                        extra == null || ((Map<?, ?>) extra).isEmpty(),
                        where + ": unknown fields " + extra + " in "
                                + o.getClass().getSimpleName());
            } catch (NoSuchMethodException e) {
                // not a model class
            } catch (ReflectiveOperationException e) {
                throw new AssertionError(e);
            }
        });
    }

    private static void walk(Object o, IdentityHashMap<Object, Boolean> seen, Consumer<Object> visit) {
        if (o == null || seen.put(o, true) != null) {
            return;
        }
        if (o instanceof Collection<?> c) {
            c.forEach(e -> walk(e, seen, visit));
            return;
        }
        if (o instanceof Map<?, ?> m) {
            m.values().forEach(e -> walk(e, seen, visit));
            return;
        }
        if (!(o instanceof KubernetesResource)) {
            return;
        }
        visit.accept(o);
        for (Method m : o.getClass().getMethods()) {
            if (m.getParameterCount() == 0
                    && m.getName().startsWith("get")
                    && !m.getName().equals("getAdditionalProperties")
                    && !m.getName().equals("getClass")) {
                try {
                    walk(m.invoke(o), seen, visit);
                } catch (ReflectiveOperationException e) {
                    throw new AssertionError(e);
                }
            }
        }
    }

    static <T> List<T> ofKind(List<HasMetadata> objects, Class<T> kind) {
        return objects.stream().filter(kind::isInstance).map(kind::cast).toList();
    }

    static String component(HasMetadata o) {
        return o.getMetadata().getLabels().get("app.kubernetes.io/component");
    }

    @Test
    void theChartLintsClean() {
        LintResult lint = new Helm(CHART).lint().strict().call();
        assertFalse(lint.isFailed(), String.join("\n", lint.getMessages()));
    }

    @Test
    void theRenderedManifestsAreTheChartsDefaults() throws Exception {
        String fresh =
                "# Rendered from deploy/helm/goldfinch-mesh with its defaults and secrets.existingSecret=goldfinch-secrets\n"
                        + "# (KubernetesManifestsTest; refresh with -Dgoldfinch.deploy.write=true). Create the Secret first: README.\n"
                        + renderForPlainKubectl();
        if (Boolean.getBoolean("goldfinch.deploy.write")) {
            Files.createDirectories(RENDERED.getParent());
            Files.writeString(RENDERED, fresh);
        }
        assertEquals(fresh, Files.readString(RENDERED), "deploy/kubernetes is stale: re-render it");
    }

    @Test
    void everyDeploymentRunsAServiceWithVariablesItReadsAndAddressesThatExist() {
        List<HasMetadata> objects = parse(renderForPlainKubectl());
        List<Deployment> deployments = ofKind(objects, Deployment.class);
        Map<String, Service> services = new LinkedHashMap<>();
        ofKind(objects, Service.class).forEach(s -> services.put(s.getMetadata().getName(), s));
        assertEquals(
                MAIN_CLASS.keySet(),
                Set.copyOf(deployments.stream()
                        .map(KubernetesManifestsTest::component)
                        .toList()));
        Set<String> known = DockerComposeConfigTest.knownVariables();

        for (Deployment d : deployments) {
            String name = component(d);
            var pod = d.getSpec().getTemplate().getSpec();
            assertTrue(
                    d.getSpec()
                            .getTemplate()
                            .getMetadata()
                            .getLabels()
                            .entrySet()
                            .containsAll(
                                    d.getSpec().getSelector().getMatchLabels().entrySet()),
                    name + ": the selector matches the pod's labels");
            assertEquals(Boolean.TRUE, pod.getSecurityContext().getRunAsNonRoot(), name + " runs as non-root");
            Container c = pod.getContainers().getFirst();
            assertEquals("goldfinch-mesh:latest", c.getImage(), name + "'s image is the mesh assembly (Dockerfile)");
            assertEquals(List.of(MAIN_CLASS.get(name)), c.getArgs(), name + " runs its application");
            try {
                Class.forName(c.getArgs().getFirst());
            } catch (ClassNotFoundException e) {
                throw new AssertionError(name + " runs a class that does not exist", e);
            }
            Map<String, String> env = new LinkedHashMap<>();
            for (EnvVar v : c.getEnv()) {
                assertTrue(
                        known.contains(v.getName()) || DockerComposeConfigTest.SPRING.contains(v.getName()),
                        name + ": " + v.getName() + " is not read by any configuration class");
                env.put(v.getName(), v.getValue());
            }
            Map<String, Integer> ports = new LinkedHashMap<>();
            for (ContainerPort p : c.getPorts()) {
                ports.put(p.getName(), p.getContainerPort());
            }
            assertEquals(String.valueOf(ports.get("http")), env.get("SERVER_PORT"), name + "'s HTTP port");
            assertEquals(String.valueOf(ports.get("grpc")), env.get("SPRING_GRPC_SERVER_PORT"), name + "'s gRPC port");
            for (Probe probe : List.of(c.getReadinessProbe(), c.getLivenessProbe(), c.getStartupProbe())) {
                assertNotNull(probe, name + " has readiness, liveness and startup probes");
                assertEquals(ports.get("grpc"), probe.getGrpc().getPort(), name + " probes its gRPC health");
            }
            assertNotNull(c.getResources().getRequests().get("memory"), name + " requests memory");
            assertNotNull(c.getResources().getLimits().get("memory"), name + " has a memory limit");
            for (Map.Entry<String, String> v : env.entrySet()) {
                if (v.getValue() == null || !v.getValue().startsWith("dns:")) {
                    continue;
                }
                // dns:///NAME:PORT (gRPC's resolver) or dns:NAME:PORT (the gateway's every-address form)
                String target = v.getValue().replaceFirst("^dns:(///)?", "");
                String host = target.substring(0, target.indexOf(':'));
                int port = Integer.parseInt(target.substring(target.indexOf(':') + 1));
                Service s = services.get(host);
                assertNotNull(s, name + ": " + v.getKey() + " names no Service of the chart: " + host);
                assertEquals("None", s.getSpec().getClusterIP(), host + " is headless, so clients see every replica");
                assertTrue(
                        s.getSpec().getPorts().stream()
                                .map(ServicePort::getPort)
                                .anyMatch(p -> p == port),
                        v.getKey() + ": " + host + " serves no port " + port);
                String targetComponent = component(s);
                Deployment backing = deployments.stream()
                        .filter(x -> component(x).equals(targetComponent))
                        .findFirst()
                        .orElseThrow();
                assertTrue(
                        backing.getSpec().getTemplate().getSpec().getContainers().getFirst().getPorts().stream()
                                .anyMatch(p -> p.getContainerPort() == port),
                        v.getKey() + ": " + targetComponent + " listens on " + port);
            }
        }

        List<HorizontalPodAutoscaler> hpas = ofKind(objects, HorizontalPodAutoscaler.class);
        assertEquals(1, hpas.size());
        String scaled = hpas.getFirst().getSpec().getScaleTargetRef().getName();
        assertEquals(
                "decode",
                component(deployments.stream()
                        .filter(d -> d.getMetadata().getName().equals(scaled))
                        .findFirst()
                        .orElseThrow()),
                "the autoscaler scales decode");
        for (PodDisruptionBudget pdb : ofKind(objects, PodDisruptionBudget.class)) {
            Map<String, String> selector = pdb.getSpec().getSelector().getMatchLabels();
            assertTrue(
                    deployments.stream()
                            .anyMatch(d -> d.getSpec()
                                    .getTemplate()
                                    .getMetadata()
                                    .getLabels()
                                    .entrySet()
                                    .containsAll(selector.entrySet())),
                    pdb.getMetadata().getName() + " selects a Deployment's pods");
        }
        assertTrue(ofKind(objects, Secret.class).isEmpty(), "plain manifests take an existing Secret");
    }

    @Test
    void secretsComeFromASecretAndRealWeightsFromAVolume() {
        List<HasMetadata> objects = parse(template()
                .set("secrets.apiKeys", "acme sk-acme-0123456789")
                .set("secrets.signingKey", "c2lnbmluZy1rZXktb2YtYXQtbGVhc3QtMzItYnl0ZXMtZm9yLXRlc3Q=")
                .set("model.path", "/models/goldfinch.safetensors")
                .set("modelVolume.persistentVolumeClaim.claimName", "models")
                .call());
        Secret secret = ofKind(objects, Secret.class).getFirst();
        assertEquals(Set.of("signing-key", "api-keys"), secret.getStringData().keySet());
        for (Deployment d : ofKind(objects, Deployment.class)) {
            Container c = d.getSpec().getTemplate().getSpec().getContainers().getFirst();
            Map<String, EnvVar> env = new LinkedHashMap<>();
            c.getEnv().forEach(v -> env.put(v.getName(), v));
            String name = component(d);
            if (name.equals("prefill") || name.equals("decode")) {
                EnvVar key = env.get("GOLDFINCH_CACHE_SIGNINGKEY");
                assertEquals(
                        secret.getMetadata().getName(),
                        key.getValueFrom().getSecretKeyRef().getName());
                assertEquals(
                        "/models/goldfinch.safetensors",
                        env.get("GOLDFINCH_MODEL_PATH").getValue());
                assertFalse(env.containsKey("GOLDFINCH_MODEL_SHAPE"), "a path or a shape, never both");
                assertTrue(c.getVolumeMounts().stream()
                        .anyMatch(m -> m.getMountPath().equals("/models")));
            } else {
                assertFalse(env.containsKey("GOLDFINCH_CACHE_SIGNINGKEY"), name + " never holds the mesh key");
            }
            if (name.equals("gateway")) {
                String file = env.get("GOLDFINCH_GATEWAY_APIKEYSFILE").getValue();
                assertTrue(
                        c.getVolumeMounts().stream().anyMatch(m -> file.startsWith(m.getMountPath() + "/")),
                        "the API keys file is mounted where the gateway reads it");
            }
        }
    }
}
