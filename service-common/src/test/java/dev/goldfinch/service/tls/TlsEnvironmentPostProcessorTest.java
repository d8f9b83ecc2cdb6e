package dev.goldfinch.service.tls;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.springframework.boot.SpringApplication;
import org.springframework.core.env.MapPropertySource;
import org.springframework.core.env.StandardEnvironment;

/** What {@code goldfinch.tls.*} turns into, for an internal service and for the gateway. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TlsEnvironmentPostProcessorTest {
    MeshCertificates ca;
    TlsProperties.Mesh store;
    TlsProperties.Mesh api;

    @BeforeAll
    void issue() {
        ca = MeshCertificates.create("unit-test-ca");
        store = ca.issue("cache-store");
        api = ca.issue("api");
    }

    @AfterAll
    void delete() {
        ca.close();
    }

    private StandardEnvironment environment(Map<String, Object> props) {
        StandardEnvironment env = new StandardEnvironment();
        env.getPropertySources().addFirst(new MapPropertySource("test", props));
        new TlsEnvironmentPostProcessor().postProcessEnvironment(env, new SpringApplication());
        return env;
    }

    private Map<String, Object> mesh() {
        return Map.of(
                "goldfinch.tls.mesh.certificate", store.certificate().toString(),
                "goldfinch.tls.mesh.private-key", store.privateKey().toString(),
                "goldfinch.tls.mesh.ca", store.ca().toString());
    }

    @Test
    void anInternalServiceWithAMeshIdentityRequiresClientCertificates() {
        Map<String, Object> props = new HashMap<>(mesh());
        props.put("spring.grpc.server.ssl.client-auth", "none");
        StandardEnvironment env = environment(props);
        assertEquals("goldfinch-mesh", env.getProperty("spring.grpc.server.ssl.bundle"));
        assertEquals("require", env.getProperty("spring.grpc.server.ssl.client-auth"), "a setting cannot weaken it");
        assertEquals(
                "file:" + store.certificate().toAbsolutePath(),
                env.getProperty("spring.ssl.bundle.pem.goldfinch-mesh.keystore.certificate"));
        assertEquals(
                "file:" + store.ca().toAbsolutePath(),
                env.getProperty("spring.ssl.bundle.pem.goldfinch-mesh.truststore.certificate"));
        assertNull(env.getProperty("server.ssl.bundle"), "the HTTP port is not the mesh's");
    }

    @Test
    void theGatewayServesItsPublicCertificateWithoutClientAuthentication() {
        Map<String, Object> props = new HashMap<>(mesh());
        props.put("goldfinch.tls.grpc-port", "public");
        props.put("goldfinch.tls.public.certificate", api.certificate().toString());
        props.put("goldfinch.tls.public.private-key", api.privateKey().toString());
        StandardEnvironment env = environment(props);
        assertEquals("goldfinch-public", env.getProperty("spring.grpc.server.ssl.bundle"));
        assertEquals("none", env.getProperty("spring.grpc.server.ssl.client-auth"));
        assertEquals("goldfinch-public", env.getProperty("server.ssl.bundle"));
        assertTrue(env.containsProperty("spring.ssl.bundle.pem.goldfinch-mesh.keystore.private-key"), "its channels");
    }

    @Test
    void withoutCertificatesNothingChanges() {
        StandardEnvironment env = environment(Map.of());
        assertNull(env.getProperty("spring.grpc.server.ssl.bundle"));
        assertNull(env.getProperty("server.ssl.bundle"));
    }

    @Test
    void aHalfConfiguredIdentityStopsTheStart() {
        IllegalArgumentException e = assertThrows(
                IllegalArgumentException.class,
                () -> environment(Map.of(
                        "goldfinch.tls.mesh.certificate", store.certificate().toString())));
        assertTrue(e.getMessage().contains("goldfinch.tls.mesh"), e.getMessage());
        IllegalArgumentException missing = assertThrows(
                IllegalArgumentException.class,
                () -> environment(Map.of(
                        "goldfinch.tls.public.certificate",
                        "/nonexistent/api.crt",
                        "goldfinch.tls.public.private-key",
                        api.privateKey().toString())));
        assertTrue(missing.getMessage().contains("cannot read"), missing.getMessage());
    }
}
