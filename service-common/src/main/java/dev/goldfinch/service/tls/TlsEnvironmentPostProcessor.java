package dev.goldfinch.service.tls;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.springframework.boot.EnvironmentPostProcessor;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.context.config.ConfigDataEnvironmentPostProcessor;
import org.springframework.core.Ordered;
import org.springframework.core.env.ConfigurableEnvironment;
import org.springframework.core.env.MapPropertySource;

/**
 * Turns {@code goldfinch.tls.*} into Spring Boot SSL bundles and the servers' SSL settings, so that Tomcat and
 * Spring gRPC do the TLS and every service reads its certificates the same way. The one rule it enforces: a
 * service with a mesh identity serves its internal gRPC port only to clients holding a certificate of the
 * mesh CA ({@code client-auth=require}), whatever else is configured.
 */
public class TlsEnvironmentPostProcessor implements EnvironmentPostProcessor, Ordered {
    public static final String MESH_BUNDLE = "goldfinch-mesh";
    public static final String PUBLIC_BUNDLE = "goldfinch-public";

    @Override
    public int getOrder() {
        return ConfigDataEnvironmentPostProcessor.ORDER + 1; // after application-<profile>.properties are read
    }

    @Override
    public void postProcessEnvironment(ConfigurableEnvironment env, SpringApplication application) {
        Map<String, Object> props = springProperties(TlsProperties.from(env));
        if (!props.isEmpty()) {
            env.getPropertySources().addFirst(new MapPropertySource("goldfinch-tls", props));
        }
    }

    static Map<String, Object> springProperties(TlsProperties tls) {
        Map<String, Object> p = new LinkedHashMap<>();
        if (tls.mesh().configured()) {
            String bundle = "spring.ssl.bundle.pem." + MESH_BUNDLE;
            p.put(bundle + ".keystore.certificate", location(tls.mesh().certificate()));
            p.put(bundle + ".keystore.private-key", location(tls.mesh().privateKey()));
            p.put(bundle + ".truststore.certificate", location(tls.mesh().ca()));
            if (tls.grpcPort() == TlsProperties.GrpcPort.INTERNAL) {
                grpcServer(p, MESH_BUNDLE, "require");
            }
        }
        if (tls.publicPorts().configured()) {
            String bundle = "spring.ssl.bundle.pem." + PUBLIC_BUNDLE;
            p.put(bundle + ".keystore.certificate", location(tls.publicPorts().certificate()));
            p.put(bundle + ".keystore.private-key", location(tls.publicPorts().privateKey()));
            p.put("server.ssl.bundle", PUBLIC_BUNDLE);
            if (tls.grpcPort() == TlsProperties.GrpcPort.PUBLIC) {
                grpcServer(p, PUBLIC_BUNDLE, "none");
            }
        }
        return p;
    }

    private static void grpcServer(Map<String, Object> p, String bundle, String clientAuth) {
        p.put("spring.grpc.server.ssl.enabled", "true");
        p.put("spring.grpc.server.ssl.bundle", bundle);
        p.put("spring.grpc.server.ssl.client-auth", clientAuth);
        p.put("spring.grpc.server.ssl.secure", "true"); // check client certificates against the bundle's CA
    }

    /** A Spring resource location; a bare path would be looked up on the classpath. */
    private static String location(Path file) {
        return "file:" + file.toAbsolutePath().normalize();
    }
}
