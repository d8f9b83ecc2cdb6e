package dev.goldfinch.cache.client;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Cache writes off the request path: one writer thread and a bounded queue. A write that finds the queue
 * full is dropped and counted ({@code goldfinch.cache.writes.dropped}): a cache write only ever saves later
 * work, so under pressure, or while the store is slow, it is the first thing to give up.
 *
 * <p>A write runs {@link RequestDeadline#detached detached} from the request that queued it, bounded by the
 * store timeout alone: it serves later requests (often other clients', a shared prefix's checkpoint), so
 * neither the deadline nor a cancellation of the request that happened to compute it may cut it short.
 */
public final class BackgroundWrites implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(BackgroundWrites.class);

    private final ThreadPoolExecutor writer;
    private final Counter dropped;

    public BackgroundWrites(String service, int queue, MeterRegistry meters) {
        this.dropped = Counter.builder("goldfinch.cache.writes.dropped")
                .description("Cache writes dropped because the background writer's queue was full")
                .tag("service", service)
                .register(meters);
        this.writer = new ThreadPoolExecutor(
                1,
                1,
                0,
                TimeUnit.SECONDS,
                new ArrayBlockingQueue<>(queue),
                Thread.ofPlatform().name(service + "-cache-writer").daemon().factory(),
                (task, executor) -> dropped.increment());
    }

    /** Queues {@code write}, or drops it when the queue is full. */
    public void submit(Runnable write) {
        writer.execute(() -> {
            try {
                RequestDeadline.detached(write);
            } catch (RuntimeException e) {
                log.warn("background cache write failed: {}", e.toString());
            }
        });
    }

    public long dropped() {
        return (long) dropped.count();
    }

    /** Waits until every write queued so far has run (tests; a drain). */
    public void awaitIdle() {
        try {
            while (writer.getCompletedTaskCount() < writer.getTaskCount()) {
                Thread.sleep(5);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        writer.shutdown();
        try {
            writer.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
