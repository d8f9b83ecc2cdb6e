package dev.goldfinch.cache.grpc;

import io.grpc.stub.ServerCallStreamObserver;

/**
 * Lets the (virtual) thread writing a server stream wait while the client cannot take more (gRPC flow
 * control), so a slow reader holds its value's chunks back in the store's heap once, not again in the
 * transport's buffers. Made in the service method itself: gRPC takes the ready handler only there.
 */
final class ReadyWait {
    private final ServerCallStreamObserver<?> call;

    ReadyWait(ServerCallStreamObserver<?> call) {
        this.call = call;
        call.setOnReadyHandler(this::wake);
    }

    private synchronized void wake() {
        notifyAll();
    }

    /** Waits until the client can take the next message; false when it has cancelled the call instead. */
    synchronized boolean ready() {
        try {
            while (!call.isReady()) {
                if (call.isCancelled()) {
                    return false;
                }
                wait(100); // a cancellation does not wake us; look again now and then
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
        return !call.isCancelled();
    }
}
