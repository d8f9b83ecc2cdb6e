package dev.goldfinch.gateway;

import dev.goldfinch.error.FailureKind;
import dev.goldfinch.error.TypedFailure;
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

/**
 * The served model as the prefill service describes it (id, limits, fingerprint); asked once, then kept.
 * Clients reach it by its served names ({@code goldfinch.gateway.served-model-names}, as vLLM's
 * {@code --served-model-name}): several names for one model, the first one the name answers carry when a
 * request names none. Without served names, the model's own id is its one name.
 */
public final class ModelCatalog {
    private final ReplicaRouter prefills;
    private final List<String> servedNames;
    private volatile ModelInfo info;

    public ModelCatalog(ReplicaRouter prefills) {
        this(prefills, List.of());
    }

    public ModelCatalog(ReplicaRouter prefills, List<String> servedNames) {
        this.prefills = prefills;
        this.servedNames = List.copyOf(servedNames);
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

    /** The names the model answers to, the default first. */
    public List<String> names() {
        return servedNames.isEmpty() ? List.of(info().getId()) : servedNames;
    }

    /**
     * The served model under the name a request gave (empty: the default name), as answers echo it; an unknown
     * name is NOT_FOUND ({@code model_not_found}) naming {@code model}.
     */
    public ModelInfo resolve(String requested) {
        ModelInfo i = info();
        List<String> names = names();
        String name = requested == null || requested.isEmpty() ? names.getFirst() : requested;
        if (!names.contains(name)) {
            throw TypedFailure.of(
                    FailureKind.MODEL_NOT_FOUND,
                    "model",
                    "The model '" + name + "' does not exist; this server serves " + String.join(", ", names));
        }
        return name.equals(i.getId()) ? i : i.toBuilder().setId(name).build();
    }

    /**
     * OpenAI's {@code system_fingerprint}: the model fingerprint (its config and weights), so a client sees when
     * the model behind a name changed. Same model, same fingerprint, on every replica and restart.
     */
    public String systemFingerprint() {
        String f = info().getFingerprint();
        return "fp_" + (f.length() > 16 ? f.substring(0, 16) : f);
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
