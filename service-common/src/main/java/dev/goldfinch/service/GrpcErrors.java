package dev.goldfinch.service;

import dev.goldfinch.error.FailureKind;
import dev.goldfinch.error.TypedFailure;
import io.grpc.StatusException;
import io.grpc.StatusRuntimeException;
import java.util.HexFormat;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Any failure to the gRPC error a caller sees, through {@link ErrorTable}. Typed failures keep their
 * message (it names the field); a status from another service passes through; anything else is a bug,
 * logged here with a fresh id and answered as INTERNAL with only that id, never the exception's text.
 */
public final class GrpcErrors {
    private static final Logger log = LoggerFactory.getLogger(GrpcErrors.class);

    private GrpcErrors() {}

    public static StatusRuntimeException toStatus(Throwable t) {
        while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return switch (t) {
            case StatusRuntimeException s -> s;
            case StatusException s -> new StatusRuntimeException(s.getStatus(), s.getTrailers());
            case TypedFailure f
            when f.kind() != FailureKind.INTERNAL -> ErrorTable.status(f.kind(), f.getMessage(), f.field());
            // The pool's own message names classes and pool sizes: the caller needs only "busy".
            case RejectedExecutionException e ->
                ErrorTable.status(
                        FailureKind.RESOURCE_EXHAUSTED,
                        "server busy: every worker and queue slot is taken; retry later",
                        null);
            case TimeoutException e -> ErrorTable.status(FailureKind.DEADLINE_EXCEEDED, "deadline exceeded", null);
            case CancellationException e -> ErrorTable.status(FailureKind.CANCELLED, "cancelled", null);
            default -> internal(t);
        };
    }

    /** A rejected request naming no single field. */
    public static StatusRuntimeException invalid(String message) {
        return ErrorTable.status(FailureKind.INVALID_ARGUMENT, message, null);
    }

    /** Logs {@code t} with a fresh id (with its stack) and returns the INTERNAL error that names only the id. */
    static StatusRuntimeException internal(Throwable t) {
        String id = HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong());
        log.error("internal error, id {}", id, t);
        return ErrorTable.status(FailureKind.INTERNAL, "internal error, id " + id, null);
    }
}
