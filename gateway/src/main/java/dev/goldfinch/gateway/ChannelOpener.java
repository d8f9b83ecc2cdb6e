package dev.goldfinch.gateway;

import io.grpc.ManagedChannel;

/**
 * Opens the gateway's channels to prefill and decode targets. A bean of its own so that the gateway's
 * tests can put fake services behind the same targets in one JVM (grpc-java's in-process transport).
 */
@FunctionalInterface
public interface ChannelOpener {
    ManagedChannel open(String target);
}
