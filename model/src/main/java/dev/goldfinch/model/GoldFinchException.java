package dev.goldfinch.model;

/**
 * Base of every error the engine raises at its boundary. Each subclass maps to one caller-facing
 * category (services translate them to gRPC status codes in one place).
 */
public class GoldFinchException extends RuntimeException {
    public GoldFinchException(String message) {
        super(message);
    }

    public GoldFinchException(String message, Throwable cause) {
        super(message, cause);
    }

    /** The caller's input is wrong: an empty prompt, a token id outside the vocabulary, a bad flag. */
    public static final class InvalidInput extends GoldFinchException {
        public InvalidInput(String message) {
            super(message);
        }
    }

    /** A weights file, config or checkpoint is malformed or does not describe a supported model. */
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
            super(message);
        }
    }
}
