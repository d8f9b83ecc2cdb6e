package dev.goldfinch.gateway;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.tokenizer.WorldTokenizer;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;

/**
 * Text to prompt tokens. Chat uses the RWKV World format ({@code User: …\n\nAssistant:}); each message is
 * tokenized on its own and the pieces concatenated, so a conversation's next turn starts with exactly the
 * tokens of the previous turn's prompt — which is what lets the prefix cache serve it.
 *
 * <p>Tools (the README's "Tool calls" documents this format): the function list is a system message; an
 * assistant's calls are {@value #TOOL_CALL_PREFIX} and a JSON array of {@code {"name", "arguments"}} right after
 * {@code Assistant:}, exactly as the model is made to write them; a tool's result is {@code Tool: [<call id>]
 * <content>}; a developer message is a system message.
 */
public final class PromptBuilder {
    /**
     * One chat message; {@code toolCallId} for a tool result, {@code toolCalls} (a JSON array of {@code {"name",
     * "arguments"}}) for an assistant's calls. Either may be null.
     */
    public record Message(String role, String content, String toolCallId, String toolCalls) {
        public Message(String role, String content) {
            this(role, content, null, null);
        }
    }

    /** What opens a tool call in an assistant turn (after {@code Assistant:}). */
    public static final String TOOL_CALL_PREFIX = " <tool_call>";

    /** The system text listing the functions a model may call: {@code functions} are compact JSON objects. */
    public static String toolsPrompt(List<String> functions) {
        return "You can call functions. To call, answer with" + TOOL_CALL_PREFIX
                + " and then a JSON array of calls, each {\"name\": <function name>, \"arguments\": {...}}, and"
                + " nothing else; the results come back as Tool messages. Functions:\n" + String.join("\n", functions);
    }

    private final WorldTokenizer tokenizer;

    public PromptBuilder(WorldTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    public WorldTokenizer tokenizer() {
        return tokenizer;
    }

    /** Strict UTF-8: invalid bytes are the caller's error, never silently replaced. {@code field} null: the whole request body. */
    public static String utf8(byte[] bytes, String field) {
        try {
            return StandardCharsets.UTF_8
                    .newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new GoldFinchException.InvalidInput(
                    field, (field == null ? "request body" : field) + " is not valid UTF-8");
        }
    }

    /**
     * Refuses, before any tokenizing, a prompt of more UTF-8 bytes than {@code maxPromptTokens} tokens can
     * cover (no token is longer than {@link WorldTokenizer#maxTokenBytes()}): such a prompt could only end
     * in "too many tokens" after the work of tokenizing it. {@code field} is where the caller put it.
     */
    public void checkBytes(long utf8Bytes, int maxPromptTokens, String field) {
        long max = (long) maxPromptTokens * tokenizer.maxTokenBytes();
        if (utf8Bytes > max) {
            throw new GoldFinchException.InvalidInput(
                    field,
                    field + " is " + utf8Bytes + " bytes, more than the " + max + " bytes that fit in the maximum of "
                            + maxPromptTokens + " tokens");
        }
    }

    /** The UTF-8 length of {@code s}, without encoding it (an unpaired surrogate counts as its 3-byte replacement). */
    public static long utf8Length(CharSequence s) {
        long n = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                n += 1;
            } else if (c < 0x800) {
                n += 2;
            } else if (Character.isHighSurrogate(c)
                    && i + 1 < s.length()
                    && Character.isLowSurrogate(s.charAt(i + 1))) {
                n += 4;
                i++;
            } else {
                n += 3;
            }
        }
        return n;
    }

    public int[] completion(String prompt) {
        if (prompt.isEmpty()) {
            throw new GoldFinchException.InvalidInput("prompt", "prompt must not be empty");
        }
        return tokenizer.encode(prompt);
    }

    public int[] chat(List<Message> messages) {
        if (messages.isEmpty()) {
            throw new GoldFinchException.InvalidInput("messages", "messages must not be empty");
        }
        IntList out = new IntList();
        for (int i = 0; i < messages.size(); i++) {
            Message m = messages.get(i);
            String role = m.role() == null ? "" : m.role().toLowerCase(Locale.ROOT);
            String content = m.content() == null ? "" : m.content();
            switch (role) {
                case "system", "developer" -> out.add(tokenizer.encode("System: " + content.strip() + "\n\n"));
                case "user" -> out.add(tokenizer.encode("User: " + content.strip() + "\n\n"));
                case "tool" -> {
                    String id = m.toolCallId() == null ? "" : "[" + m.toolCallId() + "] ";
                    out.add(tokenizer.encode("Tool: " + id + content.strip() + "\n\n"));
                }
                case "assistant" -> {
                    if (m.toolCalls() != null) { // as the model wrote them: no text before the call
                        out.add(tokenizer.encode("Assistant:"));
                        out.add(tokenizer.encode(TOOL_CALL_PREFIX + m.toolCalls()));
                        out.add(tokenizer.encode("\n\n"));
                        continue;
                    }
                    // The same pieces the model produced after "Assistant:" in the previous turn.
                    out.add(tokenizer.encode("Assistant:"));
                    String body =
                            content.isEmpty() || Character.isWhitespace(content.charAt(0)) ? content : " " + content;
                    out.add(tokenizer.encode(body.stripTrailing()));
                    out.add(tokenizer.encode("\n\n"));
                }
                default ->
                    throw new GoldFinchException.InvalidInput(
                            "messages[" + i + "].role",
                            "messages[" + i + "].role must be system, developer, user, assistant or tool, got '"
                                    + m.role() + "'");
            }
        }
        out.add(tokenizer.encode("Assistant:"));
        return out.toArray();
    }

    /** The chat stop sequence: the model starting the user's next turn. */
    public static final String CHAT_STOP = "\n\nUser:";

    /**
     * A chat's sampling with the turn stop among its stops: a client's {@code stop} adds to it, never replaces
     * it (else the model writes the user's next turn).
     */
    public static dev.goldfinch.proto.v1.SamplingParams withTurnStop(dev.goldfinch.proto.v1.SamplingParams wire) {
        if (wire.getStopList().contains(CHAT_STOP)) {
            return wire;
        }
        if (wire.getStopCount() >= dev.goldfinch.model.sampling.SamplingParams.MAX_STOP) {
            throw new dev.goldfinch.model.GoldFinchException.InvalidInput(
                    "stop",
                    "stop allows at most " + (dev.goldfinch.model.sampling.SamplingParams.MAX_STOP - 1)
                            + " sequences in a chat (the turn stop is one more), got " + wire.getStopCount());
        }
        return wire.toBuilder().addStop(CHAT_STOP).build();
    }

    private static final class IntList {
        private int[] a = new int[256];
        private int n;

        void add(int[] more) {
            if (n + more.length > a.length) {
                a = java.util.Arrays.copyOf(a, Math.max(a.length * 2, n + more.length));
            }
            System.arraycopy(more, 0, a, n, more.length);
            n += more.length;
        }

        int[] toArray() {
            return java.util.Arrays.copyOf(a, n);
        }
    }
}
