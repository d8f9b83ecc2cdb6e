package dev.goldfinch.model.tensor;

import java.util.function.IntConsumer;

/**
 * The engine's threads: one {@link Gang} sized to the cores, and the jobs it runs (a matrix product split into
 * blocks of panels, a loop split into ranges). The math lives in {@link Kernels} and the formats' tiles; this class
 * only decides who runs which part.
 */
public final class Parallel {
    /** One gang of threads for the whole engine, sized to the cores: requests share it instead of bringing their own. */
    private static final Gang GANG = new Gang(Runtime.getRuntime().availableProcessors(), "goldfinch-engine");
    /** Below this many multiply-adds a product runs on the calling thread alone. */
    private static final long PARALLEL_THRESHOLD = 1L << 16;

    private Parallel() {}

    /** {@code y[t] = W x[t]} for {@code n} inputs, the output panels shared out across the gang. */
    static void product(Matrix w, float[] x, int n, float[] y) {
        long work = (long) w.rows() * w.cols() * n;
        if (work < PARALLEL_THRESHOLD || GANG.size() == 1) {
            w.matmulRows(x, n, y, 0, w.rows());
            return;
        }
        ProductJob job = PRODUCT_JOB.get();
        if (job.w != null) {
            job = new ProductJob(); // a product started inside another on this thread: its own job
        }
        job.w = w;
        job.x = x;
        job.n = n;
        job.y = y;
        try {
            GANG.run(job);
        } finally {
            job.w = null;
            job.x = null;
            job.y = null;
        }
    }

    /**
     * One product split across the gang: one contiguous block of whole panels per thread, each streaming its own
     * part of the matrix. (Finer splits, for work stealing, measured 1.3× slower in decode: more tasks, broken
     * prefetch streams.) Reused per calling thread, so the ~200 products of a decode step allocate nothing.
     */
    private static final class ProductJob implements IntConsumer {
        Matrix w;
        float[] x;
        int n;
        float[] y;

        @Override
        public void accept(int part) {
            int panels = (w.rows() + Matrix.PANEL - 1) / Matrix.PANEL;
            int parts = GANG.size();
            int p0 = (int) ((long) panels * part / parts);
            int p1 = (int) ((long) panels * (part + 1) / parts);
            if (p0 < p1) {
                w.matmulRows(x, n, y, p0 * Matrix.PANEL, Math.min(w.rows(), p1 * Matrix.PANEL));
            }
        }
    }

    private static final ThreadLocal<ProductJob> PRODUCT_JOB = ThreadLocal.withInitial(ProductJob::new);

    /**
     * Runs {@code item.accept(i)} for every {@code i < count}, split into one contiguous range per thread of the
     * gang. Items must be independent; each should be a few microseconds of work or more.
     */
    public static void forEach(int count, IntConsumer item) {
        int parts = Math.min(GANG.size(), count);
        if (parts <= 1) {
            for (int i = 0; i < count; i++) {
                item.accept(i);
            }
            return;
        }
        GANG.run(part -> {
            for (int i = (int) ((long) count * part / GANG.size()),
                            end = (int) ((long) count * (part + 1) / GANG.size());
                    i < end;
                    i++) {
                item.accept(i);
            }
        });
    }

    /**
     * Bytes allocated so far by the calling thread and the gang's workers (HotSpot's per-thread counters), for
     * measuring what a forward pass allocates; -1 where the JVM does not count.
     */
    public static long allocatedBytesHereAndInGang() {
        if (!(java.lang.management.ManagementFactory.getThreadMXBean() instanceof com.sun.management.ThreadMXBean mx)
                || !mx.isThreadAllocatedMemorySupported()
                || !mx.isThreadAllocatedMemoryEnabled()) {
            return -1;
        }
        long total = mx.getCurrentThreadAllocatedBytes();
        for (long bytes : mx.getThreadAllocatedBytes(GANG.workerIds())) {
            total += Math.max(0, bytes);
        }
        return total;
    }

    /** Threads of the engine's gang. */
    public static int threads() {
        return GANG.size();
    }
}
