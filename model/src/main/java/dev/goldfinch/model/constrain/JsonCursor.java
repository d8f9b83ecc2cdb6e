package dev.goldfinch.model.constrain;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import java.util.Arrays;

/**
 * One sequence's position in a {@link JsonGrammar}: masks the logits before each draw and follows each token
 * drawn. The position is a function of the tokens emitted so far, so a replica resuming a sequence gets it back
 * with {@link #replay}. Not thread-safe (one per sequence).
 */
public final class JsonCursor {
    private final JsonGrammar grammar;
    private int state;
    private boolean ended;

    JsonCursor(JsonGrammar grammar, int state) {
        this.grammar = grammar;
        this.state = state;
    }

    /**
     * Sets to -infinity every logit whose token would break the output, given {@code stepsLeft} generation steps
     * including this one: a token is kept only if the value can still be finished (and end-of-text drawn) in the
     * steps after it. Entries past the vocabulary (a model's padding rows) are always masked.
     */
    public void mask(float[] logits, int stepsLeft) {
        if (ended) {
            throw new IllegalStateException("the JSON value is complete; nothing more can be generated");
        }
        if (grammar.unconstrained(state)) {
            return; // free text (an optional constraint not taken)
        }
        JsonGrammar.Mask m = grammar.mask(state);
        int budget = stepsLeft - 2; // bytes that may remain after this token: later steps minus end-of-text
        boolean tight = m.maxDistanceAfter() > budget;
        ByteDfa dfa = grammar.dfa();
        byte[][] byId = grammar.vocabulary().byId;
        int from = 0; // logits[from ..) not yet decided
        for (int id : m.allowed()) {
            if (id >= logits.length) {
                break;
            }
            Arrays.fill(logits, from, id, Float.NEGATIVE_INFINITY);
            from = id + 1;
            if (tight && id != WorldTokenizer.END_OF_TEXT) {
                int q = state;
                for (byte b : byId[id]) {
                    q = dfa.step(q, b);
                }
                if (dfa.distance(q) > budget) {
                    logits[id] = Float.NEGATIVE_INFINITY;
                }
            }
        }
        Arrays.fill(logits, Math.min(from, logits.length), logits.length, Float.NEGATIVE_INFINITY);
    }

    /** Follows a drawn token; a token the mask would have removed is a bug upstream, not bad input. */
    public void accept(int token) {
        if (ended) {
            throw new IllegalStateException("token " + token + " after the end of the JSON value");
        }
        if (token == WorldTokenizer.END_OF_TEXT) {
            if (!grammar.dfa().accepting(state)) {
                throw new IllegalStateException("end-of-text before the JSON value is complete");
            }
            ended = true;
            return;
        }
        int q = state;
        byte[][] byId = grammar.vocabulary().byId;
        if (token < 0 || token >= byId.length || byId[token] == null) {
            throw new GoldFinchException.InvalidInput("token id " + token + " is not in the vocabulary");
        }
        for (byte b : byId[token]) {
            q = grammar.dfa().step(q, b);
            if (q == ByteDfa.REJECT) {
                throw new IllegalStateException("token " + token + " breaks the JSON value");
            }
        }
        state = q;
    }

    /** A cursor at the position after {@code emitted} (a resumed sequence's tokens so far). */
    public static JsonCursor replay(JsonGrammar grammar, int[] emitted) {
        JsonCursor c = grammar.start();
        for (int t : emitted) {
            c.accept(t);
        }
        return c;
    }

    /** Whether the output so far is a complete value (end-of-text may be drawn). */
    public boolean complete() {
        return grammar.dfa().accepting(state);
    }

    /** Fewest bytes still needed to complete the value. */
    public int bytesToComplete() {
        return grammar.dfa().distance(state);
    }
}
