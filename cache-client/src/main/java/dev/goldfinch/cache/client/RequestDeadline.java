package dev.goldfinch.cache.client;

import io.grpc.Context;
import io.grpc.Deadline;
import java.util.function.Supplier;

/**
 * The deadline of the request a cache-store call is made for, whichever thread makes the call. gRPC gives a
 * client call the deadline of the {@link Context} it starts in and cancels it with that context; work that
 * hops to another thread loses both. Work done for one request alone carries the whole context there
 * ({@link Context#wrap}), cancellation included. Work that other requests may share (a prefill joined by
 * identical ones) or that must not stop when its caller hangs up carries the deadline alone, as a value,
 * through {@link #within}. Writes for later requests run {@link #detached}: bounded by the store timeout only.
 */
public final class RequestDeadline {
    private static final Context.Key<Deadline> CARRIED = Context.key("goldfinch-request-deadline");

    private RequestDeadline() {}

    /** The deadline of the request in hand: the gRPC context's or the one carried by {@link #within}; null for none. */
    public static Deadline current() {
        return earlier(Context.current().getDeadline(), CARRIED.get());
    }

    /**
     * Runs {@code work} with {@code deadline} (null: none) as its request's deadline, apart from the current
     * context's cancellation and deadline (its other values stay).
     */
    public static <T> T within(Deadline deadline, Supplier<T> work) {
        Context context = Context.current().fork().withValue(CARRIED, deadline);
        Context previous = context.attach();
        try {
            return work.get();
        } finally {
            context.detach(previous);
        }
    }

    /** Runs {@code work} for no request: neither a deadline nor a cancellation reaches its cache calls. */
    public static void detached(Runnable work) {
        within(null, () -> {
            work.run();
            return null;
        });
    }

    /** The later of two deadlines, null (none) being later than any. */
    public static Deadline later(Deadline a, Deadline b) {
        return a == null || b == null ? null : a.isBefore(b) ? b : a;
    }

    private static Deadline earlier(Deadline a, Deadline b) {
        return a == null ? b : b == null ? a : a.minimum(b);
    }
}
