package dev.goldfinch.model.tensor;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.IntConsumer;

/**
 * A fixed gang of threads that run one job at a time, split into one part per thread; the caller runs
 * part 0 and waits for the rest. Between jobs the workers spin for a short while before parking: a
 * decode step is ~200 products of a millisecond or less, and waking a parked thread for each (as a
 * fork/join pool does) cost more than the second core gained (measured: q8_0 decode 11.2 ms/token on one
 * thread, 12–14 ms on two through fork/join). Callers from several threads take turns, a job each.
 */
final class Gang {
    /** How long an idle worker spins before it parks: longer than the gaps inside a forward pass. */
    private static final long SPIN_NANOS = 500_000;

    private static final ThreadLocal<Boolean> WORKER = ThreadLocal.withInitial(() -> false);

    private final int size;
    private final ReentrantLock turn = new ReentrantLock();
    private final AtomicInteger pending = new AtomicInteger();
    private final Thread[] workers;
    private volatile IntConsumer job;
    private volatile long generation;
    private volatile Throwable failure;
    /** Per worker: parked (or about to park) and must be unparked for the next job. */
    private final java.util.concurrent.atomic.AtomicIntegerArray parked;

    Gang(int size, String name) {
        this.size = Math.max(1, size);
        this.workers = new Thread[this.size - 1];
        this.parked = new java.util.concurrent.atomic.AtomicIntegerArray(workers.length);
        for (int i = 0; i < workers.length; i++) {
            int part = i + 1;
            workers[i] = Thread.ofPlatform().name(name + "-" + part).daemon().unstarted(() -> work(part));
            workers[i].start();
        }
    }

    int size() {
        return size;
    }

    /** Thread ids of the workers (part 0 runs on the caller). */
    long[] workerIds() {
        long[] ids = new long[workers.length];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = workers[i].threadId();
        }
        return ids;
    }

    /** Runs {@code part.accept(i)} for every {@code i < size()}, in parallel, and returns when all are done. */
    void run(IntConsumer part) {
        if (size == 1 || turn.isHeldByCurrentThread() || WORKER.get()) {
            // Alone, or nested inside a job (a part that itself runs a job): all parts here, in order, not a deadlock.
            for (int i = 0; i < size; i++) {
                part.accept(i);
            }
            return;
        }
        turn.lock();
        try {
            failure = null;
            job = part;
            pending.set(size - 1);
            generation++; // volatile write: publishes the job to the spinning workers
            for (int i = 0; i < workers.length; i++) {
                if (parked.get(i) == 1) {
                    LockSupport.unpark(workers[i]);
                }
            }
            Throwable own = null;
            try {
                part.accept(0);
            } catch (Throwable t) {
                own = t;
            }
            while (pending.get() != 0) {
                Thread.onSpinWait();
            }
            job = null;
            Throwable failed = own != null ? own : failure;
            if (failed instanceof RuntimeException e) {
                throw e;
            } else if (failed instanceof Error e) {
                throw e;
            } else if (failed != null) {
                throw new IllegalStateException(failed);
            }
        } finally {
            turn.unlock();
        }
    }

    private void work(int part) {
        WORKER.set(true);
        int slot = part - 1;
        long seen = 0;
        while (true) {
            long started = System.nanoTime();
            int spins = 0;
            while (generation == seen) {
                if ((++spins & 63) != 0 || System.nanoTime() - started < SPIN_NANOS) {
                    Thread.onSpinWait();
                    continue;
                }
                parked.set(slot, 1);
                if (generation == seen) { // re-checked after announcing: a job published meanwhile is not missed
                    LockSupport.park(this);
                }
                parked.set(slot, 0);
                started = System.nanoTime();
            }
            seen = generation;
            try {
                job.accept(part);
            } catch (Throwable t) {
                failure = t;
            }
            pending.decrementAndGet();
        }
    }
}
