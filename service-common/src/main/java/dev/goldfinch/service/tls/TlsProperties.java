package dev.goldfinch.service.tls;

import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.TlsChannelCredentials;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.boot.context.properties.bind.Name;
import org.springframework.core.env.Environment;

/**
 * {@code goldfinch.tls.*}: the certificates of one service, PEM files.
 *
 * @param mesh        this service's identity inside the mesh and the mesh CA. Set: its gRPC port (when internal)
 *                    speaks TLS and refuses a client without a certificate from that CA, and its channels to
 *                    other services present this identity. Unset: plaintext inside.
 * @param publicPorts {@code goldfinch.tls.public.*}: the certificate of the public ports (the gateway's HTTP
 *                    and gRPC); clients need none of their own.
 * @param grpcPort    {@code internal} (prefill, decode, cache store: mutual TLS with the mesh identity) or
 *                    {@code public} (the gateway: TLS with the public certificate, no client certificate)
 */
@ConfigurationProperties("goldfinch.tls")
public record TlsProperties(Mesh mesh, @Name("public") Public publicPorts, GrpcPort grpcPort) {
    public static final String PREFIX = "goldfinch.tls";

    public enum GrpcPort {
        INTERNAL,
        PUBLIC
    }

    public TlsProperties {
        mesh = mesh == null ? new Mesh(null, null, null) : mesh;
        publicPorts = publicPorts == null ? new Public(null, null) : publicPorts;
        grpcPort = grpcPort == null ? GrpcPort.INTERNAL : grpcPort;
    }

    /** Bound straight from the environment: what an environment post-processor sees before any bean exists. */
    public static TlsProperties from(Environment env) {
        return Binder.get(env).bind(PREFIX, TlsProperties.class).orElseGet(() -> new TlsProperties(null, null, null));
    }

    /**
     * @param certificate this service's certificate chain
     * @param privateKey  its key (PKCS#8 PEM, unencrypted; keep the file readable by the service only)
     * @param ca          the mesh CA: a peer is trusted only with a certificate it issued
     */
    public record Mesh(Path certificate, Path privateKey, Path ca) {
        public boolean configured() {
            return allOrNone("mesh", certificate, privateKey, ca);
        }

        /** What this service's channels to others present: TLS with its identity, or plaintext when unset. */
        public ChannelCredentials channelCredentials() {
            if (!configured()) {
                return InsecureChannelCredentials.create();
            }
            try {
                return TlsChannelCredentials.newBuilder()
                        .keyManager(certificate.toFile(), privateKey.toFile())
                        .trustManager(ca.toFile())
                        .build();
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + PREFIX + ".mesh.* certificate files", e);
            }
        }
    }

    /**
     * @param certificate the public certificate chain
     * @param privateKey  its key (PKCS#8 PEM, unencrypted)
     */
    public record Public(Path certificate, Path privateKey) {
        public boolean configured() {
            return allOrNone("public", certificate, privateKey);
        }
    }

    /** True when every file is set (and readable), false when none is; a half-configured identity stops the start. */
    private static boolean allOrNone(String identity, Path... files) {
        int set = 0;
        for (Path f : files) {
            if (f != null) {
                set++;
            }
        }
        if (set == 0) {
            return false;
        }
        String names = identity.equals("mesh") ? "certificate, private-key and ca" : "certificate and private-key";
        if (set < files.length) {
            throw new IllegalArgumentException(PREFIX + "." + identity + ": set all of " + names + ", or none");
        }
        for (Path f : files) {
            if (!Files.isReadable(f)) {
                throw new IllegalArgumentException(PREFIX + "." + identity + ": cannot read " + f);
            }
        }
        return true;
    }
}
