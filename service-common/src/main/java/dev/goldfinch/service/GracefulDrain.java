package dev.goldfinch.service;

import dev.goldfinch.error.FailureKind;
import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthGrpc;
import io.grpc.protobuf.services.HealthStatusManager;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A service's graceful drain, run when its context closes (SIGTERM, or a mesh child's standard input
 * ending) and before Spring stops the gRPC server: gRPC health answers NOT_SERVING at once; for the notice
 * period new calls are still taken (routers learn of the change at their next health round); then new calls
 * are refused with UNAVAILABLE (a caller tries another replica) and the calls in progress get up to the
 * drain timeout to finish. Those still running then are cut by shutting the server down now: their callers
 * see the call end without an answer, and the gateway resumes a decode stream on another replica with the
 * same tokens (a prefill on another prefill replica). The notice is skipped by a service that had no call in
 * progress or started during it: nobody is routing to it.
 */
public final class GracefulDrain implements ServerInterceptor {
    private static final Logger log = LoggerFactory.getLogger(GracefulDrain.class);

    private final Duration notice;
    private final Duration timeout;
    private final HealthStatusManager health;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final Object idle = new Object();
    private volatile long lastCallNanos = System.nanoTime() - TimeUnit.DAYS.toNanos(1);
    private volatile boolean refusing;
    private final AtomicBoolean drained = new AtomicBoolean();
    private volatile Server server;

    /** {@code health} may be null (gRPC health switched off). */
    public GracefulDrain(Duration notice, Duration timeout, HealthStatusManager health) {
        this.notice = notice;
        this.timeout = timeout;
        this.health = health;
    }

    /** The running gRPC server, cut short when the drain timeout passes with calls still in progress. */
    void serverStarted(Server server) {
        this.server = server;
    }

    /** Calls in progress, health checks aside. */
    public int inFlight() {
        return inFlight.get();
    }

    public boolean draining() {
        return refusing;
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(
            ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        if (HealthGrpc.SERVICE_NAME.equals(call.getMethodDescriptor().getServiceName())) {
            return next.startCall(call, headers);
        }
        if (refusing) {
            StatusRuntimeException e =
                    ErrorTable.status(FailureKind.UNAVAILABLE, "this replica is shutting down: try another", null);
            call.close(e.getStatus(), e.getTrailers() == null ? new Metadata() : e.getTrailers());
            return new ServerCall.Listener<>() {};
        }
        inFlight.incrementAndGet();
        lastCallNanos = System.nanoTime();
        AtomicBoolean ended = new AtomicBoolean();
        Runnable end = () -> {
            if (ended.compareAndSet(false, true) && inFlight.decrementAndGet() == 0) {
                synchronized (idle) {
                    idle.notifyAll();
                }
            }
        };
        ServerCall.Listener<Q> listener;
        try {
            listener = next.startCall(call, headers);
        } catch (RuntimeException e) {
            end.run();
            throw e;
        }
        return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(listener) {
            @Override
            public void onComplete() {
                try {
                    super.onComplete();
                } finally {
                    end.run();
                }
            }

            @Override
            public void onCancel() {
                try {
                    super.onCancel();
                } finally {
                    end.run();
                }
            }
        };
    }

    /** Runs the drain; returns when no call is in progress or the remaining ones were cut. */
    public void drain() {
        if (!drained.compareAndSet(false, true)) {
            return;
        }
        long start = System.nanoTime();
        if (health != null) {
            health.enterTerminalState(); // NOT_SERVING for every service name, and it stays so
        }
        int atStart = inFlight.get();
        boolean recentlyCalled = System.nanoTime() - lastCallNanos < notice.toNanos();
        log.info("draining: health NOT_SERVING, {} calls in progress", atStart);
        if (atStart > 0 || recentlyCalled) {
            sleep(notice);
        }
        refusing = true;
        long deadline = start + timeout.toNanos();
        synchronized (idle) {
            while (inFlight.get() > 0 && System.nanoTime() < deadline) {
                try {
                    idle.wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
        }
        int left = inFlight.get();
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start);
        if (left > 0) {
            log.warn(
                    "drain timeout: {} calls still in progress after {} ms are cut for their callers to move",
                    left,
                    ms);
            Server s = server;
            if (s != null) {
                s.shutdownNow();
            }
        } else {
            log.info("drained in {} ms: no call in progress", ms);
        }
    }

    private static void sleep(Duration d) {
        try {
            Thread.sleep(d);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
