package dev.goldfinch.model;

import dev.goldfinch.error.FailureKind;
import dev.goldfinch.error.TypedFailure;

/**
 * Base of every error the engine raises at its boundary. Each subclass is one {@link FailureKind}; the
 * services map kinds to gRPC and HTTP statuses in one table.
 */
public class GoldFinchException extends TypedFailure {
    public GoldFinchException(String message) {
        super(FailureKind.INTERNAL, message);
    }

    public GoldFinchException(String message, Throwable cause) {
        super(FailureKind.INTERNAL, message, cause);
    }

    protected GoldFinchException(FailureKind kind, String field, String message, Throwable cause) {
        super(kind, field, message, cause);
    }

    /** The caller's input is wrong: an empty prompt, a token id outside the vocabulary, a bad flag. */
    public static final class InvalidInput extends GoldFinchException {
        /** Input wrong in a way no one request field names (a file, a shape, a token list as a whole). */
        public InvalidInput(String message) {
            super(FailureKind.INVALID_ARGUMENT, null, message, null);
        }

        /** {@code field} is the name the caller used for what is wrong (e.g. {@code max_tokens}). */
        public InvalidInput(String field, String message) {
            super(FailureKind.INVALID_ARGUMENT, field, message, null);
        }
    }

    /** A weights file, config or checkpoint is malformed or does not describe a supported model: the server's fault. */
    public static final class BadModel extends GoldFinchException {
        public BadModel(String message) {
            super(message);
        }

        public BadModel(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** A serialized sequence state is truncated, oversized or fails its checksum. Treat as a cache miss. */
    public static final class CorruptState extends GoldFinchException {
        public CorruptState(String message) {
            super(message);
        }
    }

    /** A serialized sequence state is intact but belongs to another model or format version. */
    public static final class StateMismatch extends GoldFinchException {
        public StateMismatch(String message) {
            super(FailureKind.MODEL_MISMATCH, null, message, null);
        }
    }
}
