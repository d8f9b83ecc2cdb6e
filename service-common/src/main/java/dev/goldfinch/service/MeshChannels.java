package dev.goldfinch.service;

import dev.goldfinch.service.tls.TlsProperties;
import io.grpc.ChannelCredentials;
import io.grpc.ManagedChannel;

/**
 * Channels from this service to the others of the mesh: mutual TLS with the service's mesh identity when
 * {@code goldfinch.tls.mesh.*} is set, else plaintext. Every service-to-service channel goes through here.
 */
public final class MeshChannels {
    private final ChannelCredentials credentials;
    private final boolean tls;

    public MeshChannels(TlsProperties.Mesh mesh) {
        this.tls = mesh.configured();
        this.credentials = mesh.channelCredentials();
    }

    public ManagedChannel open(String target) {
        return Channels.open(target, credentials);
    }

    public boolean tls() {
        return tls;
    }
}
