package dev.goldfinch.gateway;

import dev.goldfinch.model.tokenizer.WorldTokenizer;
import dev.goldfinch.proto.internal.v1.PromptLogprob;
import dev.goldfinch.proto.v1.TokenLogprob;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Logprobs in OpenAI's two shapes: chat's {@code logprobs.content[i]} ({@code token}, {@code logprob},
 * {@code bytes}, {@code top_logprobs}) and legacy completions' parallel lists ({@code tokens},
 * {@code token_logprobs}, {@code top_logprobs} as dicts, {@code text_offset}).
 */
final class OpenAiLogprobs {
    /**
     * One scored position: its token, its logprob (null for the prompt's first token) and the alternatives (none
     * for that first token).
     */
    record Position(int token, Float logprob, List<TokenLogprob> top) {}

    private final WorldTokenizer tokenizer;

    OpenAiLogprobs(WorldTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /** A sampled token's position: the chosen token and at most {@code top} of its alternatives. */
    static Position sampled(TokenLogprob chosen, List<TokenLogprob> alternatives, int top) {
        return new Position(
                chosen.getToken(), chosen.getLogprob(), alternatives.subList(0, Math.min(top, alternatives.size())));
    }

    /**
     * The prompt's positions: its first token unscored, then what the prefill pass scored. The first token's
     * alternatives are an empty dict rather than OpenAI's {@code null}: the SDKs' schema allows no null there
     * (openai-java's response validation rejects it), and an empty dict says the same, nothing was scored.
     */
    static List<Position> prompt(int[] tokens, List<PromptLogprob> scored) {
        List<Position> out = new ArrayList<>();
        out.add(new Position(tokens[0], null, List.of()));
        for (PromptLogprob p : scored) {
            out.add(new Position(p.getToken().getToken(), p.getToken().getLogprob(), p.getTopLogprobsList()));
        }
        return out;
    }

    /** Chat's {@code {"content": [...]}}. */
    Map<String, Object> chat(List<Position> positions) {
        List<Map<String, Object>> content = new ArrayList<>();
        for (Position p : positions) {
            Map<String, Object> entry = entry(p.token(), p.logprob());
            List<Map<String, Object>> alts = new ArrayList<>();
            for (TokenLogprob a : p.top()) {
                alts.add(entry(a.getToken(), a.getLogprob()));
            }
            entry.put("top_logprobs", alts);
            content.add(entry);
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("content", content);
        out.put("refusal", null);
        return out;
    }

    private Map<String, Object> entry(int token, Float logprob) {
        Map<String, Object> e = new LinkedHashMap<>();
        e.put("token", text(token));
        e.put("logprob", logprob);
        List<Integer> bytes = new ArrayList<>();
        for (byte b : tokenizer.tokenBytes(token)) {
            bytes.add(b & 0xff);
        }
        e.put("bytes", bytes);
        return e;
    }

    /**
     * Completions' shape; {@code offset}: the text offset of the first position (the length of the text returned
     * before it, in UTF-16 units as OpenAI's clients index strings).
     */
    Map<String, Object> completions(List<Position> positions, int offset) {
        List<String> tokens = new ArrayList<>();
        List<Float> tokenLogprobs = new ArrayList<>();
        List<Map<String, Float>> top = new ArrayList<>();
        List<Integer> offsets = new ArrayList<>();
        int at = offset;
        for (Position p : positions) {
            String t = text(p.token());
            tokens.add(t);
            tokenLogprobs.add(p.logprob());
            Map<String, Float> alts = new LinkedHashMap<>();
            for (TokenLogprob a : p.top()) {
                alts.putIfAbsent(text(a.getToken()), a.getLogprob());
            }
            top.add(alts);
            offsets.add(at);
            at += t.length();
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("tokens", tokens);
        out.put("token_logprobs", tokenLogprobs);
        out.put("top_logprobs", top);
        out.put("text_offset", offsets);
        return out;
    }

    /** A token as text; a token holding part of a character reads as replacement characters, as OpenAI's do. */
    String text(int token) {
        return new String(tokenizer.tokenBytes(token), StandardCharsets.UTF_8);
    }
}
