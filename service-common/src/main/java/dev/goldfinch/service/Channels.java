package dev.goldfinch.service;

import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import java.util.concurrent.TimeUnit;

/** Plaintext gRPC channels between the mesh's services (inside one trust boundary; put mTLS at the mesh layer). */
public final class Channels {
    /** Blobs move in 256 KiB chunks; 16 MiB leaves room for large token lists without inviting abuse. */
    public static final int MAX_MESSAGE_BYTES = 16 << 20;

    private Channels() {}

    /**
     * A channel to {@code target}: {@code host:port}, or a gRPC target URI such as
     * {@code dns:///decode:9090} (every address behind the name, balanced round-robin).
     */
    public static ManagedChannel open(String target) {
        NettyChannelBuilder b = NettyChannelBuilder.forTarget(target)
                .usePlaintext()
                .maxInboundMessageSize(MAX_MESSAGE_BYTES)
                .keepAliveTime(30, TimeUnit.SECONDS);
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
