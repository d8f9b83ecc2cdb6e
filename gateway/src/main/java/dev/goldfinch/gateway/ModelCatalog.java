package dev.goldfinch.gateway;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.proto.internal.v1.DescribeModelRequest;
import dev.goldfinch.proto.internal.v1.PrefillGrpc;
import dev.goldfinch.proto.v1.ModelInfo;
import io.grpc.ManagedChannel;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/** The served model as the prefill service describes it (id, limits, fingerprint); asked once, then kept. */
public final class ModelCatalog {
    private final ManagedChannel prefill;
    private volatile ModelInfo info;

    public ModelCatalog(ManagedChannel prefill) {
        this.prefill = prefill;
    }

    public ModelInfo info() {
        return describe(PrefillGrpc.newBlockingStub(prefill).withDeadlineAfter(10, TimeUnit.SECONDS));
    }

    /** The model, waiting up to {@code wait} for the prefill service to come up (it may be loading the model). */
    public ModelInfo awaitInfo(Duration wait) {
        return describe(PrefillGrpc.newBlockingStub(prefill)
                .withWaitForReady()
                .withDeadlineAfter(wait.toMillis(), TimeUnit.MILLISECONDS));
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

    /** logit_bias ids within the model's vocabulary (the engine bounds the values). */
    public void checkLogitBias(java.util.Map<Integer, Float> bias, String field) {
        int vocab = info().getVocabSize();
        for (int token : bias.keySet()) {
            if (token >= vocab) {
                throw new GoldFinchException.InvalidInput(
                        field, field + " key " + token + " is not a token id in [0, " + vocab + ")");
            }
        }
    }
}
