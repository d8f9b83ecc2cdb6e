package dev.goldfinch.model.sampling;

import dev.goldfinch.model.GoldFinchException;
import java.util.List;
import java.util.Map;

/**
 * How to pick each next token, with OpenAI/vLLM field names and semantics. Validated on
 * construction: every error is an {@link GoldFinchException.InvalidInput} naming the field.
 *
 * @param temperature       0 = greedy; otherwise logits are divided by it
 * @param topK              keep the k most likely tokens; 0 = off
 * @param topP              keep the smallest set whose probability reaches p; 1 = off; in (0, 1]
 * @param minP              drop tokens below minP × the top probability; 0 = off; in [0, 1]
 * @param presencePenalty   subtracted once from every token already generated; [-2, 2]
 * @param frequencyPenalty  subtracted per (decayed) occurrence of a generated token; [-2, 2]
 * @param repetitionPenalty > 1 discourages tokens of the prompt and the output (positive logits divided, negative multiplied); 1 = off
 * @param penaltyDecay      RWKV's occurrence decay per generated token (ChatRWKV uses 0.996); 1 = none; in (0, 1]
 * @param seed              makes sampling reproducible; null = random
 * @param maxTokens         generated tokens at most; > 0
 * @param stop              stop sequences (text), at most {@value #MAX_STOP}, none empty nor longer than
 *                          {@value #MAX_STOP_LENGTH} characters; not included in the output
 * @param logprobs          how many top alternatives to report per token; 0..{@value #MAX_LOGPROBS}
 * @param logitBias         token id to a bias added to its logit before sampling, in [-100, 100] (OpenAI's
 *                          {@code logit_bias}: -100 bans the token, 100 all but forces it); at most
 *                          {@value #MAX_LOGIT_BIAS} entries
 */
public record SamplingParams(
        double temperature,
        int topK,
        double topP,
        double minP,
        double presencePenalty,
        double frequencyPenalty,
        double repetitionPenalty,
        double penaltyDecay,
        Long seed,
        int maxTokens,
        List<String> stop,
        int logprobs,
        Map<Integer, Float> logitBias) {
    public static final int MAX_STOP = 16;
    /** Bounds what a client can make the stop matcher hold back and compare per token. */
    public static final int MAX_STOP_LENGTH = 1024;

    public static final int MAX_LOGPROBS = 20;

    public static final int MAX_LOGIT_BIAS = 1024;
    public static final float MAX_BIAS = 100;

    public SamplingParams {
        stop = stop == null ? List.of() : List.copyOf(stop);
        logitBias = logitBias == null ? Map.of() : Map.copyOf(logitBias);
        check(
                logitBias.size() <= MAX_LOGIT_BIAS,
                "logit_bias",
                "logit_bias allows at most " + MAX_LOGIT_BIAS + " tokens, got " + logitBias.size());
        for (Map.Entry<Integer, Float> b : logitBias.entrySet()) {
            check(b.getKey() >= 0, "logit_bias", "logit_bias keys must be token ids >= 0, got " + b.getKey());
            check(
                    b.getValue() >= -MAX_BIAS && b.getValue() <= MAX_BIAS,
                    "logit_bias",
                    "logit_bias values must be in [-100, 100], got " + b.getValue() + " for token " + b.getKey());
        }
        check(
                Double.isFinite(temperature) && temperature >= 0,
                "temperature",
                "temperature must be >= 0, got " + temperature);
        check(topK >= 0, "top_k", "top_k must be >= 0 (0 = off), got " + topK);
        check(topP > 0 && topP <= 1, "top_p", "top_p must be in (0, 1], got " + topP);
        check(minP >= 0 && minP <= 1, "min_p", "min_p must be in [0, 1], got " + minP);
        check(
                presencePenalty >= -2 && presencePenalty <= 2,
                "presence_penalty",
                "presence_penalty must be in [-2, 2], got " + presencePenalty);
        check(
                frequencyPenalty >= -2 && frequencyPenalty <= 2,
                "frequency_penalty",
                "frequency_penalty must be in [-2, 2], got " + frequencyPenalty);
        check(
                repetitionPenalty > 0 && Double.isFinite(repetitionPenalty),
                "repetition_penalty",
                "repetition_penalty must be > 0, got " + repetitionPenalty);
        check(
                penaltyDecay > 0 && penaltyDecay <= 1,
                "penalty_decay",
                "penalty_decay must be in (0, 1], got " + penaltyDecay);
        check(maxTokens > 0, "max_tokens", "max_tokens must be > 0, got " + maxTokens);
        check(stop.size() <= MAX_STOP, "stop", "stop allows at most " + MAX_STOP + " sequences, got " + stop.size());
        check(stop.stream().noneMatch(String::isEmpty), "stop", "stop sequences must not be empty");
        check(
                stop.stream().allMatch(x -> x.length() <= MAX_STOP_LENGTH),
                "stop",
                "stop sequences must be at most " + MAX_STOP_LENGTH + " characters long");
        check(
                logprobs >= 0 && logprobs <= MAX_LOGPROBS,
                "logprobs",
                "logprobs must be in [0, " + MAX_LOGPROBS + "], got " + logprobs);
    }

    private static void check(boolean ok, String field, String message) {
        if (!ok) {
            throw new GoldFinchException.InvalidInput(field, message);
        }
    }

    /** OpenAI's defaults: temperature 1, nothing filtered, no penalties, 16 tokens. */
    public static SamplingParams defaults() {
        return new SamplingParams(1.0, 0, 1.0, 0, 0, 0, 1.0, 1.0, null, 16, List.of(), 0, Map.of());
    }

    public static SamplingParams greedy(int maxTokens) {
        return defaults().withTemperature(0).withMaxTokens(maxTokens);
    }

    /** Fails when max_tokens exceeds a server's cap. */
    public SamplingParams checkMaxTokens(int cap) {
        check(maxTokens <= cap, "max_tokens", "max_tokens must be <= " + cap + ", got " + maxTokens);
        return this;
    }

    public boolean isGreedy() {
        return temperature == 0;
    }

    public SamplingParams withTemperature(double v) {
        return new SamplingParams(
                v,
                topK,
                topP,
                minP,
                presencePenalty,
                frequencyPenalty,
                repetitionPenalty,
                penaltyDecay,
                seed,
                maxTokens,
                stop,
                logprobs,
                logitBias);
    }

    public SamplingParams withTopK(int v) {
        return new SamplingParams(
                temperature,
                v,
                topP,
                minP,
                presencePenalty,
                frequencyPenalty,
                repetitionPenalty,
                penaltyDecay,
                seed,
                maxTokens,
                stop,
                logprobs,
                logitBias);
    }

    public SamplingParams withTopP(double v) {
        return new SamplingParams(
                temperature,
                topK,
                v,
                minP,
                presencePenalty,
                frequencyPenalty,
                repetitionPenalty,
                penaltyDecay,
                seed,
                maxTokens,
                stop,
                logprobs,
                logitBias);
    }

    public SamplingParams withMinP(double v) {
        return new SamplingParams(
                temperature,
                topK,
                topP,
                v,
                presencePenalty,
                frequencyPenalty,
                repetitionPenalty,
                penaltyDecay,
                seed,
                maxTokens,
                stop,
                logprobs,
                logitBias);
    }

    public SamplingParams withPenalties(double presence, double frequency, double repetition, double decay) {
        return new SamplingParams(
                temperature,
                topK,
                topP,
                minP,
                presence,
                frequency,
                repetition,
                decay,
                seed,
                maxTokens,
                stop,
                logprobs,
                logitBias);
    }

    public SamplingParams withSeed(Long v) {
        return new SamplingParams(
                temperature,
                topK,
                topP,
                minP,
                presencePenalty,
                frequencyPenalty,
                repetitionPenalty,
                penaltyDecay,
                v,
                maxTokens,
                stop,
                logprobs,
                logitBias);
    }

    public SamplingParams withMaxTokens(int v) {
        return new SamplingParams(
                temperature,
                topK,
                topP,
                minP,
                presencePenalty,
                frequencyPenalty,
                repetitionPenalty,
                penaltyDecay,
                seed,
                v,
                stop,
                logprobs,
                logitBias);
    }

    public SamplingParams withStop(List<String> v) {
        return new SamplingParams(
                temperature,
                topK,
                topP,
                minP,
                presencePenalty,
                frequencyPenalty,
                repetitionPenalty,
                penaltyDecay,
                seed,
                maxTokens,
                v,
                logprobs,
                logitBias);
    }

    public SamplingParams withLogprobs(int v) {
        return new SamplingParams(
                temperature,
                topK,
                topP,
                minP,
                presencePenalty,
                frequencyPenalty,
                repetitionPenalty,
                penaltyDecay,
                seed,
                maxTokens,
                stop,
                v,
                logitBias);
    }

    public SamplingParams withLogitBias(Map<Integer, Float> v) {
        return new SamplingParams(
                temperature,
                topK,
                topP,
                minP,
                presencePenalty,
                frequencyPenalty,
                repetitionPenalty,
                penaltyDecay,
                seed,
                maxTokens,
                stop,
                logprobs,
                v);
    }
}
