package dev.goldfinch.gateway;

import dev.goldfinch.proto.internal.v1.DescribeModelRequest;
import dev.goldfinch.proto.internal.v1.EntryRef;
import dev.goldfinch.proto.internal.v1.PrefillGrpc;
import dev.goldfinch.proto.internal.v1.PrefillRequest;
import dev.goldfinch.proto.internal.v1.PrefillResponse;
import dev.goldfinch.proto.v1.ModelInfo;
import io.grpc.Context;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A Prefill service without a model: it describes a small model and answers every prompt with an entry
 * whose address hashes the tokens and salt (the same prompt, the same entry, as the real service), so
 * the gateway's routing by entry works. A test can make the next calls fail.
 */
final class FakePrefill extends PrefillGrpc.PrefillImplBase {
    static final ModelInfo MODEL = ModelInfo.newBuilder()
            .setId("test-model")
            .setArchitecture("goldfinch")
            .setVocabSize(300)
            .setMaxPromptTokens(24)
            .setMaxTokensCap(16)
            .setFingerprint("00000000000000ff")
            .build();

    /** What DescribeModel answers; a test of long prompts raises the limits before its first request. */
    volatile ModelInfo model = MODEL;

    final List<PrefillRequest> requests = new CopyOnWriteArrayList<>();
    final Queue<StatusRuntimeException> failures = new ConcurrentLinkedQueue<>();
    /** Set: the next call never answers (a long prompt), so only its caller's cancellation ends it. */
    final AtomicBoolean holdNext = new AtomicBoolean();
    /** Calls their caller cancelled. */
    final BlockingQueue<PrefillRequest> cancelled = new LinkedBlockingQueue<>();
    /** The deadline each call arrived with (none: {@link FakeDecode#NO_DEADLINE}). */
    final List<io.grpc.Deadline> deadlines = new CopyOnWriteArrayList<>();

    void reset() {
        requests.clear();
        failures.clear();
        holdNext.set(false);
        cancelled.clear();
        deadlines.clear();
    }

    @Override
    public void describeModel(DescribeModelRequest request, StreamObserver<ModelInfo> response) {
        response.onNext(model);
        response.onCompleted();
    }

    @Override
    public void prefill(PrefillRequest request, StreamObserver<PrefillResponse> response) {
        requests.add(request);
        io.grpc.Deadline deadline = Context.current().getDeadline();
        deadlines.add(deadline == null ? FakeDecode.NO_DEADLINE : deadline);
        if (holdNext.getAndSet(false)) {
            Context.current().addListener(context -> cancelled.add(request), Runnable::run);
            return;
        }
        StatusRuntimeException failure = failures.poll();
        if (failure != null) {
            response.onError(failure);
            return;
        }
        PrefillResponse.Builder answer = PrefillResponse.newBuilder()
                .setEntry(EntryRef.newBuilder()
                        .setModel(MODEL.getFingerprint())
                        .setPrefixHash(address(request))
                        .setLength(request.getTokensCount()))
                .setComputedTokens(request.getTokensCount());
        if (request.hasPromptLogprobs()) { // tokens[i] scores -i/4, its alternatives the ids after it
            for (int i = 1; i < request.getTokensCount(); i++) {
                var position = dev.goldfinch.proto.internal.v1.PromptLogprob.newBuilder()
                        .setToken(promptLogprob(request.getTokens(i), -i / 4f));
                for (int k = 0; k < request.getPromptLogprobs(); k++) {
                    position.addTopLogprobs(promptLogprob(request.getTokens(i) + k, -k));
                }
                answer.addPromptLogprobs(position);
            }
        }
        response.onNext(answer.build());
        response.onCompleted();
    }

    private static dev.goldfinch.proto.v1.TokenLogprob promptLogprob(int token, float logprob) {
        return dev.goldfinch.proto.v1.TokenLogprob.newBuilder()
                .setToken(token)
                .setLogprob(logprob)
                .build();
    }

    static String address(PrefillRequest request) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update(request.getCacheSalt().getBytes(java.nio.charset.StandardCharsets.UTF_8));
            for (int t : request.getTokensList()) {
                sha.update(ByteBuffer.allocate(4).putInt(t).array());
            }
            return HexFormat.of().formatHex(sha.digest(), 0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
