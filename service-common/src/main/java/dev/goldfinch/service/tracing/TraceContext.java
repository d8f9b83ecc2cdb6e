package dev.goldfinch.service.tracing;

import io.micrometer.context.ContextExecutorService;
import io.micrometer.context.ContextSnapshotFactory;
import java.util.concurrent.ExecutorService;

/** Carrying a request's trace context (its current observation, so its span and baggage) across threads. */
public final class TraceContext {
    private static final ContextSnapshotFactory SNAPSHOTS =
            ContextSnapshotFactory.builder().build();

    private TraceContext() {}

    /** {@code executor}, running each task in the context of the thread that submitted it. */
    public static ExecutorService propagating(ExecutorService executor) {
        return ContextExecutorService.wrap(executor, SNAPSHOTS::captureAll);
    }
}
