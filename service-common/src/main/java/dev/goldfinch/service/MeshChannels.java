package dev.goldfinch.service;

import dev.goldfinch.service.tls.TlsProperties;
import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptor;
import io.grpc.ManagedChannel;
import io.micrometer.core.instrument.binder.grpc.ObservationGrpcClientInterceptor;
import io.micrometer.observation.ObservationRegistry;

/**
 * Channels from this service to the others of the mesh: mutual TLS with the service's mesh identity when
 * {@code goldfinch.tls.mesh.*} is set, else plaintext. Every service-to-service channel goes through here, so
 * this is also where every call gets its client observation: a span whose trace context (and the request id
 * riding in its baggage) travels in the call's metadata. Spring gRPC adds that interceptor only to channels of
 * its own channel factory, which the mesh does not use.
 */
public final class MeshChannels {
    private final ChannelCredentials credentials;
    private final boolean tls;
    private final ClientInterceptor[] interceptors;

    public MeshChannels(TlsProperties.Mesh mesh) {
        this(mesh, ObservationRegistry.NOOP);
    }

    public MeshChannels(TlsProperties.Mesh mesh, ObservationRegistry observations) {
        this.tls = mesh.configured();
        this.credentials = mesh.channelCredentials();
        this.interceptors = observations.isNoop()
                ? new ClientInterceptor[0]
                : new ClientInterceptor[] {new ObservationGrpcClientInterceptor(observations)};
    }

    public ManagedChannel open(String target) {
        return Channels.open(target, credentials, interceptors);
    }

    public boolean tls() {
        return tls;
    }
}
