package dev.goldfinch.gateway;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.sampling.SamplingParams;
import java.util.LinkedHashMap;
import java.util.Map;
import tools.jackson.databind.JsonNode;

/**
 * The OpenAI request fields about how many choices a request gets and what each reports: {@code n},
 * {@code best_of}, {@code echo}, {@code logprobs} / {@code top_logprobs}, {@code logit_bias}, and the
 * completions fields we refuse ({@code suffix}). Parsed apart from the rest of the request so the
 * controller only asks the result.
 *
 * @param n             choices returned
 * @param bestOf        sequences generated (completions; {@code >= n}): the {@code n} with the highest cumulative
 *                      logprob are returned
 * @param echo          completions: the prompt's text (and, with {@code logprobs}, its tokens' logprobs) before
 *                      each choice's
 * @param logprobs      whether logprobs are reported (chat {@code logprobs: true}; completions {@code logprobs} set)
 * @param topLogprobs   alternatives reported per position
 * @param decode        false when {@code max_tokens} is 0 with {@code echo}: the prompt is scored, nothing generated
 */
record OpenAiChoices(int n, int bestOf, boolean echo, boolean logprobs, int topLogprobs, boolean decode) {
    static final OpenAiChoices ONE = new OpenAiChoices(1, 1, false, false, 0, true);

    /** Sequences the pipeline runs. */
    int sequences() {
        return Math.max(n, bestOf);
    }

    /** What the prefill scores: the prompt's logprobs when echoed with logprobs, else nothing (-1). */
    int promptLogprobs() {
        return echo && logprobs ? topLogprobs : -1;
    }

    GenerationPipeline.Fanout fanout() {
        return new GenerationPipeline.Fanout(sequences(), promptLogprobs(), decode);
    }

    /**
     * Reads the fields of {@code root}; {@code maxChoices}: the configured bound of {@code n} and {@code best_of};
     * {@code maxTokensZero}: the field that asked for 0 tokens (allowed only with {@code echo}), else null.
     */
    static OpenAiChoices parse(JsonNode root, boolean chat, boolean stream, int maxChoices, String maxTokensZero) {
        int n = bounded(root, "n", 1, 1, maxChoices);
        int bestOf = n;
        boolean echo = false;
        if (!chat) {
            bestOf = bounded(root, "best_of", n, 1, maxChoices);
            if (bestOf < n) {
                throw new GoldFinchException.InvalidInput("best_of", "best_of must be >= n (" + n + "), got " + bestOf);
            }
            if (stream && bestOf > n) {
                throw new GoldFinchException.InvalidInput(
                        "best_of", "best_of > n cannot be streamed: the best are known only at the end");
            }
            JsonNode suffix = root.get("suffix");
            if (suffix != null
                    && !suffix.isNull()
                    && !(suffix.isString() && suffix.asString().isEmpty())) {
                throw new GoldFinchException.InvalidInput(
                        "suffix", "suffix is not supported: this server does no fill-in-the-middle");
            }
            JsonNode e = root.get("echo");
            if (e != null && !e.isNull()) {
                if (!e.isBoolean()) {
                    throw new GoldFinchException.InvalidInput("echo", "echo must be a boolean");
                }
                echo = e.asBoolean();
            }
        }
        JsonNode user = root.get("user");
        if (user != null && !user.isNull() && !user.isString()) {
            throw new GoldFinchException.InvalidInput("user", "user must be a string");
        }
        if (maxTokensZero != null && !echo) {
            throw new GoldFinchException.InvalidInput(
                    maxTokensZero, maxTokensZero + " must be >= 1 (0 only with echo, to score the prompt)");
        }
        boolean logprobs = false;
        int top = 0;
        JsonNode lp = root.get("logprobs");
        if (lp != null && !lp.isNull()) {
            if (chat) {
                if (!lp.isBoolean()) {
                    throw new GoldFinchException.InvalidInput(
                            "logprobs", "logprobs must be a boolean for chat completions");
                }
                logprobs = lp.asBoolean();
                top = logprobs ? bounded(root, "top_logprobs", 0, 0, SamplingParams.MAX_LOGPROBS) : 0;
            } else {
                logprobs = true;
                top = bounded(root, "logprobs", 0, 0, SamplingParams.MAX_LOGPROBS);
            }
        }
        return new OpenAiChoices(n, bestOf, echo, logprobs, top, maxTokensZero == null);
    }

    /**
     * OpenAI's {@code logit_bias}: an object of token ids (as strings) to biases in [-100, 100]; ids must be in
     * the model's vocabulary.
     */
    static Map<Integer, Float> logitBias(JsonNode root, int vocabSize) {
        JsonNode bias = root.get("logit_bias");
        Map<Integer, Float> out = new LinkedHashMap<>();
        if (bias == null || bias.isNull()) {
            return out;
        }
        if (!bias.isObject()) {
            throw new GoldFinchException.InvalidInput(
                    "logit_bias", "logit_bias must be an object of token ids to numbers");
        }
        if (bias.size() > SamplingParams.MAX_LOGIT_BIAS) {
            throw new GoldFinchException.InvalidInput(
                    "logit_bias",
                    "logit_bias allows at most " + SamplingParams.MAX_LOGIT_BIAS + " tokens, got " + bias.size());
        }
        for (Map.Entry<String, JsonNode> e : bias.properties()) {
            int token;
            try {
                token = Integer.parseInt(e.getKey());
            } catch (NumberFormatException x) {
                token = -1;
            }
            if (token < 0 || token >= vocabSize) {
                throw new GoldFinchException.InvalidInput(
                        "logit_bias",
                        "logit_bias key '" + e.getKey() + "' is not a token id in [0, " + vocabSize + ")");
            }
            JsonNode v = e.getValue();
            if (!v.isNumber()
                    || !(v.asDouble() >= -SamplingParams.MAX_BIAS && v.asDouble() <= SamplingParams.MAX_BIAS)) {
                throw new GoldFinchException.InvalidInput(
                        "logit_bias", "logit_bias values must be numbers in [-100, 100], got " + v + " for " + token);
            }
            out.put(token, (float) v.asDouble());
        }
        return out;
    }

    private static int bounded(JsonNode root, String field, int otherwise, int min, int max) {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return otherwise;
        }
        if (!v.isIntegralNumber() || !v.canConvertToLong()) {
            throw new GoldFinchException.InvalidInput(field, field + " must be an integer");
        }
        long x = v.asLong(); // compared as sent: a cast would let 2^32 + 1 pass as 1
        if (x < min || x > max) {
            throw new GoldFinchException.InvalidInput(
                    field, field + " must be in [" + min + ", " + max + "] on this server, got " + x);
        }
        return (int) x;
    }
}
