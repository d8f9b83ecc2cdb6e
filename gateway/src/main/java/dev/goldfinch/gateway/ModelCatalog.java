package dev.goldfinch.gateway;

import dev.goldfinch.error.FailureKind;
import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.proto.internal.v1.DescribeModelRequest;
import dev.goldfinch.proto.internal.v1.PrefillGrpc;
import dev.goldfinch.proto.v1.ModelInfo;
import dev.goldfinch.service.ErrorTable;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/** The served model as the prefill service describes it (id, limits, fingerprint); asked once, then kept. */
public final class ModelCatalog {
    private final ReplicaRouter prefills;
    private volatile ModelInfo info;

    public ModelCatalog(ReplicaRouter prefills) {
        this.prefills = prefills;
    }

    public ModelInfo info() {
        ModelInfo i = info;
        return i != null
                ? i
                : describe(PrefillGrpc.newBlockingStub(anyPrefill()).withDeadlineAfter(10, TimeUnit.SECONDS));
    }

    /**
     * The model, waiting up to {@code wait} for a prefill replica to come up (it may be loading the model): each
     * replica in turn, a few seconds each, so one that never starts does not hold the gateway's start.
     */
    public ModelInfo awaitInfo(Duration wait) {
        long deadline = System.nanoTime() + wait.toNanos();
        List<ReplicaRouter.Replica> replicas = prefills.replicas();
        for (int n = 0; ; n++) {
            ReplicaRouter.Replica r = replicas.get(n % replicas.size());
            long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            long each = replicas.size() == 1 ? left : Math.min(left, 5000);
            try {
                return describe(PrefillGrpc.newBlockingStub(r.channel())
                        .withWaitForReady()
                        .withDeadlineAfter(Math.max(1, each), TimeUnit.MILLISECONDS));
            } catch (StatusRuntimeException e) {
                if (System.nanoTime() >= deadline) {
                    throw e;
                }
            }
        }
    }

    private ManagedChannel anyPrefill() {
        return prefills.pickLeastLoaded(Set.of())
                .or(() -> prefills.pickDespiteHealth(Set.of()))
                .orElseThrow(() -> ErrorTable.status(FailureKind.UNAVAILABLE, "no healthy prefill replica", null))
                .channel();
    }

    private ModelInfo describe(PrefillGrpc.PrefillBlockingStub stub) {
        ModelInfo i = info;
        if (i == null) {
            i = stub.describeModel(DescribeModelRequest.getDefaultInstance());
            info = i;
        }
        return i;
    }

    /** Checks a requested model name (empty = the only model) and returns the served model. */
    public ModelInfo resolve(String requested) {
        ModelInfo i = info();
        if (requested != null && !requested.isEmpty() && !requested.equals(i.getId())) {
            throw new GoldFinchException.InvalidInput(
                    "model", "model '" + requested + "' does not exist; this server serves '" + i.getId() + "'");
        }
        return i;
    }

    /** Prompt length within the model's limit; {@code field} is where the caller put the prompt. */
    public void checkPrompt(int[] tokens, String field) {
        int max = info().getMaxPromptTokens();
        if (tokens.length == 0) {
            throw new GoldFinchException.InvalidInput(field, "prompt must not be empty");
        }
        if (tokens.length > max) {
            throw new GoldFinchException.InvalidInput(
                    field, "prompt is " + tokens.length + " tokens, more than the maximum of " + max);
        }
    }
}
