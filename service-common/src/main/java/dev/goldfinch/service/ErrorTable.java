package dev.goldfinch.service;

import dev.goldfinch.error.FailureKind;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The one table from a {@link FailureKind} to what a caller sees: the gRPC status code, the HTTP status
 * and OpenAI's error object ({@code {"error": {"message", "type", "param", "code"}}}). gRPC errors carry
 * the field at fault in the {@value #PARAM_KEY_NAME} trailer, so the gateway can name it as OpenAI's
 * {@code param} even when the check ran in another service.
 */
public final class ErrorTable {
    /** One row: how one kind of failure is shown over gRPC, over HTTP and in OpenAI's error object. */
    public record Row(FailureKind kind, Status.Code grpc, int http, String openAiType, String openAiCode) {}

    static final String PARAM_KEY_NAME = "goldfinch-error-param";
    /**
     * The kind, for the kinds that share a gRPC code with another ({@link FailureKind#TOO_LARGE},
     * {@link FailureKind#MODEL_NOT_FOUND}, ...): without it the gateway could not tell them apart.
     */
    public static final Metadata.Key<String> KIND =
            Metadata.Key.of("goldfinch-error-kind", Metadata.ASCII_STRING_MARSHALLER);
    /** The trailer naming the request field at fault (an invalid argument's). */
    public static final Metadata.Key<String> PARAM = Metadata.Key.of(PARAM_KEY_NAME, Metadata.ASCII_STRING_MARSHALLER);

    private ErrorTable() {}

    public static Row row(FailureKind kind) {
        return switch (kind) {
            case INVALID_ARGUMENT ->
                new Row(kind, Status.Code.INVALID_ARGUMENT, 400, "invalid_request_error", "invalid_value");
            case UNAUTHENTICATED ->
                new Row(kind, Status.Code.UNAUTHENTICATED, 401, "invalid_request_error", "invalid_api_key");
            case NOT_FOUND -> new Row(kind, Status.Code.NOT_FOUND, 404, "invalid_request_error", "not_found");
            case MODEL_NOT_FOUND ->
                new Row(kind, Status.Code.NOT_FOUND, 404, "invalid_request_error", "model_not_found");
            case METHOD_NOT_ALLOWED ->
                new Row(kind, Status.Code.UNIMPLEMENTED, 405, "invalid_request_error", "method_not_allowed");
            case MODEL_MISMATCH ->
                new Row(kind, Status.Code.FAILED_PRECONDITION, 409, "invalid_request_error", "model_mismatch");
            case RESOURCE_EXHAUSTED ->
                new Row(kind, Status.Code.RESOURCE_EXHAUSTED, 429, "rate_limit_error", "rate_limit_exceeded");
            // gRPC's own message-size limit answers RESOURCE_EXHAUSTED too.
            case TOO_LARGE ->
                new Row(kind, Status.Code.RESOURCE_EXHAUSTED, 413, "invalid_request_error", "request_too_large");
            case UNAVAILABLE -> new Row(kind, Status.Code.UNAVAILABLE, 503, "server_error", "service_unavailable");
            case DEADLINE_EXCEEDED -> new Row(kind, Status.Code.DEADLINE_EXCEEDED, 504, "server_error", "timeout");
            // 499: nginx's "client closed request"; nobody may be listening, but a log or a proxy reads it.
            case CANCELLED -> new Row(kind, Status.Code.CANCELLED, 499, "cancelled", "cancelled");
            case INTERNAL -> new Row(kind, Status.Code.INTERNAL, 500, "server_error", "internal_error");
        };
    }

    /** The kind a gRPC status stands for, for statuses that come from another service or from gRPC itself. */
    public static FailureKind kindOf(Status.Code code) {
        return switch (code) {
            case INVALID_ARGUMENT, OUT_OF_RANGE -> FailureKind.INVALID_ARGUMENT;
            case UNAUTHENTICATED -> FailureKind.UNAUTHENTICATED;
            case NOT_FOUND -> FailureKind.NOT_FOUND;
            case FAILED_PRECONDITION -> FailureKind.MODEL_MISMATCH;
            case RESOURCE_EXHAUSTED -> FailureKind.RESOURCE_EXHAUSTED;
            case UNAVAILABLE -> FailureKind.UNAVAILABLE;
            case DEADLINE_EXCEEDED -> FailureKind.DEADLINE_EXCEEDED;
            case CANCELLED -> FailureKind.CANCELLED;
            default -> FailureKind.INTERNAL;
        };
    }

    /** The kind of a gRPC error: its {@link #KIND} trailer when it has one, else its code's. */
    public static FailureKind kindOf(StatusRuntimeException e) {
        String named = e.getTrailers() == null ? null : e.getTrailers().get(KIND);
        if (named != null) {
            for (FailureKind k : FailureKind.values()) {
                if (k.name().equals(named) && row(k).grpc() == e.getStatus().getCode()) {
                    return k;
                }
            }
        }
        return kindOf(e.getStatus().getCode());
    }

    /** The gRPC error of a failure of {@code kind}; {@code field} (may be null) goes into the {@link #PARAM} trailer. */
    public static StatusRuntimeException status(FailureKind kind, String message, String field) {
        Metadata trailers = new Metadata();
        if (field != null) {
            trailers.put(PARAM, field);
        }
        if (kindOf(row(kind).grpc()) != kind) {
            trailers.put(KIND, kind.name());
        }
        return Status.fromCode(row(kind).grpc()).withDescription(message).asRuntimeException(trailers);
    }

    /** The HTTP status of a gRPC error. */
    public static int httpStatus(StatusRuntimeException e) {
        return row(kindOf(e)).http();
    }

    /** OpenAI's error object for a gRPC error: {@code {"error": {"message", "type", "param", "code"}}}. */
    public static Map<String, Object> openAiError(StatusRuntimeException e) {
        String description = e.getStatus().getDescription();
        return openAiError(
                kindOf(e),
                description == null ? e.getStatus().getCode().name() : description,
                e.getTrailers() == null ? null : e.getTrailers().get(PARAM));
    }

    /** OpenAI's error object for a failure of {@code kind} that never went through gRPC. */
    public static Map<String, Object> openAiError(FailureKind kind, String message, String param) {
        Row row = row(kind);
        Map<String, Object> error = new LinkedHashMap<>();
        error.put("message", message);
        error.put("type", row.openAiType());
        error.put("param", param);
        error.put("code", row.openAiCode());
        return Map.of("error", error);
    }
}
