package dev.goldfinch.mesh;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import org.junit.jupiter.api.Test;

/**
 * A launcher retries a start whose picked port was taken meanwhile: it must recognise the failure as the
 * transports really report it. Netty's native transport (what the services' gRPC servers use here) throws its
 * own IOException, not a BindException — the case a clean-clone CI run hit.
 */
class PortTakenTest {
    @Test
    void aGrpcServerBindingATakenPortIsRecognised() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            IOException failure = assertThrows(
                    IOException.class,
                    () -> NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", taken.getLocalPort()))
                            .build()
                            .start());
            assertTrue(MeshLauncher.portTaken(new IllegalStateException("start failed", failure)), failure::toString);
        }
    }

    @Test
    void anotherFailureIsNot() {
        assertFalse(MeshLauncher.portTaken(new IllegalStateException("no model at /nowhere")));
    }
}
