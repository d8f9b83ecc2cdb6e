package dev.goldfinch.service;

import dev.goldfinch.model.sampling.SamplingParams;

/** The public protobuf sampling fields to the engine's validated {@link SamplingParams}: one place for the defaults. */
public final class SamplingMapper {
    private SamplingMapper() {}

    /** Unset fields take the engine's defaults; out-of-range ones fail with a message naming the field. */
    public static SamplingParams fromProto(dev.goldfinch.proto.v1.SamplingParams p, int maxTokensCap) {
        SamplingParams d = SamplingParams.defaults();
        SamplingParams s = new SamplingParams(
                p.hasTemperature() ? p.getTemperature() : d.temperature(),
                p.hasTopK() ? p.getTopK() : d.topK(),
                p.hasTopP() ? p.getTopP() : d.topP(),
                p.hasMinP() ? p.getMinP() : d.minP(),
                p.hasPresencePenalty() ? p.getPresencePenalty() : d.presencePenalty(),
                p.hasFrequencyPenalty() ? p.getFrequencyPenalty() : d.frequencyPenalty(),
                p.hasRepetitionPenalty() ? p.getRepetitionPenalty() : d.repetitionPenalty(),
                p.hasPenaltyDecay() ? p.getPenaltyDecay() : d.penaltyDecay(),
                p.hasSeed() ? Long.valueOf(p.getSeed()) : null,
                p.hasMaxTokens()
                        ? Math.toIntExact(Math.min(Integer.MAX_VALUE, Integer.toUnsignedLong(p.getMaxTokens())))
                        : d.maxTokens(),
                p.getStopList(),
                p.hasLogprobs() ? p.getLogprobs() : 0,
                logitBias(p));
        return s.checkMaxTokens(maxTokensCap);
    }

    /** Wire keys are unsigned: one past int's range stays out of range instead of wrapping to a small id. */
    private static java.util.Map<Integer, Float> logitBias(dev.goldfinch.proto.v1.SamplingParams p) {
        java.util.Map<Integer, Float> bias = new java.util.HashMap<>();
        p.getLogitBiasMap().forEach((token, value) -> {
            if (token < 0) {
                throw new dev.goldfinch.model.GoldFinchException.InvalidInput(
                        "logit_bias", "logit_bias key " + Integer.toUnsignedString(token) + " is not a token id");
            }
            bias.put(token, value);
        });
        return bias;
    }
}
