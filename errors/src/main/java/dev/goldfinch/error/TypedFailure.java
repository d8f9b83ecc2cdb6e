package dev.goldfinch.error;

import java.util.Objects;

/**
 * Base of every failure a module raises on purpose: it carries its {@link FailureKind} and, for an
 * invalid argument, the name of the field at fault (as the caller spelled it, e.g. {@code max_tokens} or
 * {@code messages[2].role}). Anything else that escapes to a service boundary is a bug: INTERNAL.
 */
public class TypedFailure extends RuntimeException {
    private final FailureKind kind;
    private final String field;

    public TypedFailure(FailureKind kind, String message) {
        this(kind, null, message, null);
    }

    public TypedFailure(FailureKind kind, String message, Throwable cause) {
        this(kind, null, message, cause);
    }

    protected TypedFailure(FailureKind kind, String field, String message, Throwable cause) {
        super(message, cause);
        this.kind = Objects.requireNonNull(kind, "kind");
        this.field = field;
    }

    /** The caller's {@code field} is wrong; {@code message} says how, naming it. */
    public static TypedFailure invalidArgument(String field, String message) {
        return new TypedFailure(FailureKind.INVALID_ARGUMENT, Objects.requireNonNull(field, "field"), message, null);
    }

    /** A failure of {@code kind} about the caller's {@code field} (may be null). */
    public static TypedFailure of(FailureKind kind, String field, String message) {
        return new TypedFailure(kind, field, message, null);
    }

    public FailureKind kind() {
        return kind;
    }

    /** The field at fault, or null when the failure is not about one field. */
    public String field() {
        return field;
    }
}
