package dev.goldfinch.service;

import dev.goldfinch.model.GoldFinchException;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.RejectedExecutionException;

/** The one mapping from failures to gRPC status codes; messages pass through, since they name the field. */
public final class GrpcErrors {
    private GrpcErrors() {
    }

    public static StatusRuntimeException toStatus(Throwable t) {
        while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return switch (t) {
            case StatusRuntimeException s -> s;
            case GoldFinchException.InvalidInput e -> Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException();
            case IllegalArgumentException e -> Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException();
            case RejectedExecutionException e -> Status.RESOURCE_EXHAUSTED.withDescription("server busy: " + e.getMessage()).asRuntimeException();
            case GoldFinchException.StateMismatch e -> Status.FAILED_PRECONDITION.withDescription(e.getMessage()).asRuntimeException();
            default -> Status.INTERNAL.withDescription(t.toString()).withCause(t).asRuntimeException();
        };
    }

    public static StatusRuntimeException invalid(String message) {
        return Status.INVALID_ARGUMENT.withDescription(message).asRuntimeException();
    }
}
