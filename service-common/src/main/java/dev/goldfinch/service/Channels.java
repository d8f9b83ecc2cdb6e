package dev.goldfinch.service;

import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptor;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.util.concurrent.TimeUnit;

/** gRPC channels between the mesh's services; a service opens them through {@link MeshChannels}. */
public final class Channels {
    /** Blobs move in 256 KiB chunks; 16 MiB leaves room for large token lists without inviting abuse. */
    public static final int MAX_MESSAGE_BYTES = 16 << 20;

    private Channels() {}

    /** A plaintext channel: a mesh without TLS, or a client of a public port that serves plaintext. */
    public static ManagedChannel open(String target) {
        return open(target, InsecureChannelCredentials.create());
    }

    /**
     * A channel to {@code target}: {@code host:port}, or a gRPC target URI such as
     * {@code dns:///decode:9090} (every address behind the name, balanced round-robin). With TLS credentials
     * the server's certificate must name the target's host.
     */
    public static ManagedChannel open(
            String target, ChannelCredentials credentials, ClientInterceptor... interceptors) {
        NettyChannelBuilder b = NettyChannelBuilder.forTarget(target, credentials)
                .maxInboundMessageSize(MAX_MESSAGE_BYTES)
                .keepAliveTime(30, TimeUnit.SECONDS)
                .intercept(interceptors);
        if (target.contains(":///")) {
            b.defaultLoadBalancingPolicy("round_robin");
        }
        return b.build();
    }

    public static void close(ManagedChannel channel) {
        channel.shutdown();
        try {
            if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
                channel.shutdownNow();
            }
        } catch (InterruptedException e) {
            channel.shutdownNow();
            Thread.currentThread().interrupt();
        }
    }
}
