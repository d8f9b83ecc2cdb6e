package dev.goldfinch.gateway;

import dev.goldfinch.proto.internal.v1.DecodeGrpc;
import dev.goldfinch.proto.internal.v1.DecodeRequest;
import dev.goldfinch.proto.internal.v1.DecodeResponse;
import dev.goldfinch.proto.v1.FinishReason;
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A decode replica without a model: each call plays the next {@link Script} a test queued (by default one
 * token and the end of the length budget). It records every request it was sent and every call its
 * client cancelled.
 */
final class FakeDecode extends DecodeGrpc.DecodeImplBase {
    /** What one Decode call does; it runs on a thread of its own so the call can see its cancellation. */
    @FunctionalInterface
    interface Script {
        void play(ServerCallStreamObserver<DecodeResponse> call) throws InterruptedException;
    }

    final String target;
    final List<DecodeRequest> requests = new CopyOnWriteArrayList<>();
    final BlockingQueue<DecodeRequest> cancelled = new LinkedBlockingQueue<>();
    final Queue<Script> scripts = new ConcurrentLinkedQueue<>();
    /** The deadline each call arrived with (none: {@link #NO_DEADLINE}). */
    final List<Deadline> deadlines = new CopyOnWriteArrayList<>();
    /** Messages sent by {@link #paced} scripts. */
    final AtomicInteger sent = new AtomicInteger();

    static final Deadline NO_DEADLINE = Deadline.after(3650, TimeUnit.DAYS);

    FakeDecode(String target) {
        this.target = target;
    }

    void reset() {
        requests.clear();
        cancelled.clear();
        scripts.clear();
        deadlines.clear();
        sent.set(0);
    }

    /**
     * Streams {@code count} tokens and the end of the length budget as a well-behaved replica does: each only
     * when the gateway's side of the call is ready for it (gRPC flow control), counting them in {@link #sent}.
     */
    Script paced(int token, int count) {
        return call -> {
            for (int i = 1; i <= count; i++) {
                while (!call.isReady()) {
                    if (call.isCancelled()) {
                        return;
                    }
                    Thread.sleep(1);
                }
                send(call, token, i, i == count ? FinishReason.FINISH_REASON_LENGTH : null);
                sent.incrementAndGet();
            }
            call.onCompleted();
        };
    }

    /** Streams {@code tokens}, the last one carrying {@code finish}, then completes. */
    static Script finish(FinishReason finish, int... tokens) {
        return call -> {
            for (int i = 0; i < tokens.length; i++) {
                send(call, tokens[i], i + 1, i == tokens.length - 1 ? finish : null);
            }
            call.onCompleted();
        };
    }

    /** Streams {@code tokens}, then fails with {@code status}. */
    static Script fail(Status status, int... tokens) {
        return call -> {
            for (int i = 0; i < tokens.length; i++) {
                send(call, tokens[i], i + 1, null);
            }
            call.onError(status.asRuntimeException());
        };
    }

    /** Streams {@code tokens}, then {@code filler} every 10 ms until the client cancels (at most 30 s). */
    static Script thenRepeat(int filler, int... tokens) {
        return call -> {
            int n = 0;
            for (int t : tokens) {
                send(call, t, ++n, null);
            }
            for (int i = 0; i < 3000 && !call.isCancelled(); i++) {
                Thread.sleep(10);
                if (!call.isCancelled()) {
                    send(call, filler, ++n, null);
                }
            }
        };
    }

    private static void send(
            ServerCallStreamObserver<DecodeResponse> call, int token, int generated, FinishReason finish) {
        if (call.isCancelled()) {
            return;
        }
        DecodeResponse.Builder b =
                DecodeResponse.newBuilder().setToken(token).setLogprob(-0.5f).setGeneratedTokens(generated);
        if (finish != null) {
            b.setFinishReason(finish);
        }
        call.onNext(b.build());
    }

    @Override
    public void decode(DecodeRequest request, StreamObserver<DecodeResponse> response) {
        requests.add(request);
        Deadline deadline = Context.current().getDeadline();
        deadlines.add(deadline == null ? NO_DEADLINE : deadline);
        ServerCallStreamObserver<DecodeResponse> call = (ServerCallStreamObserver<DecodeResponse>) response;
        call.setOnCancelHandler(() -> cancelled.add(request));
        Script script = scripts.poll();
        Script play = script != null ? script : finish(FinishReason.FINISH_REASON_LENGTH, TestVocab.HELLO);
        Thread.ofVirtual().name("fake-decode-" + target).start(() -> {
            try {
                play.play(call);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (io.grpc.StatusRuntimeException e) {
                // the client cancelled while we wrote: nothing more to send
            }
        });
    }
}
