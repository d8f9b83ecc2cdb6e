package dev.goldfinch.service;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.goldfinch.error.FailureKind;
import dev.goldfinch.error.TypedFailure;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.slf4j.LoggerFactory;

class ErrorTableTest {
    private final ListAppender<ILoggingEvent> logged = new ListAppender<>();
    private final Logger grpcErrorsLog = (Logger) LoggerFactory.getLogger(GrpcErrors.class);

    @BeforeEach
    void captureLog() {
        logged.start();
        grpcErrorsLog.addAppender(logged);
    }

    @AfterEach
    void releaseLog() {
        grpcErrorsLog.detachAppender(logged);
    }

    @ParameterizedTest(name = "{0} -> {1}, HTTP {2}, {3}")
    @CsvSource({
        "INVALID_ARGUMENT,   INVALID_ARGUMENT,    400, invalid_request_error, invalid_value",
        "NOT_FOUND,          NOT_FOUND,           404, invalid_request_error, not_found",
        "MODEL_NOT_FOUND,    NOT_FOUND,           404, invalid_request_error, model_not_found",
        "METHOD_NOT_ALLOWED, UNIMPLEMENTED,       405, invalid_request_error, method_not_allowed",
        "MODEL_MISMATCH,     FAILED_PRECONDITION, 409, invalid_request_error, model_mismatch",
        "RESOURCE_EXHAUSTED, RESOURCE_EXHAUSTED,  429, rate_limit_error,      rate_limit_exceeded",
        "UNAVAILABLE,        UNAVAILABLE,         503, server_error,          service_unavailable",
        "DEADLINE_EXCEEDED,  DEADLINE_EXCEEDED,   504, server_error,          timeout",
        "CANCELLED,          CANCELLED,           499, cancelled,             cancelled",
    })
    void aTypedFailureReachesTheCallerAsItsRowSays(
            FailureKind kind, Status.Code grpc, int http, String type, String code) {
        StatusRuntimeException s = GrpcErrors.toStatus(new TypedFailure(kind, "what happened, in words"));
        assertEquals(grpc, s.getStatus().getCode());
        assertEquals("what happened, in words", s.getStatus().getDescription());
        assertEquals(http, ErrorTable.httpStatus(s));
        Map<?, ?> error = (Map<?, ?>) ErrorTable.openAiError(s).get("error");
        assertEquals("what happened, in words", error.get("message"));
        assertEquals(type, error.get("type"));
        assertEquals(code, error.get("code"));
        assertNull(error.get("param"));
        assertTrue(logged.list.isEmpty(), "a caller's failure is not the server's error: " + logged.list);
    }

    @Test
    void everyKindHasARowAndTheRowsAreDistinct() {
        Set<String> answers = new HashSet<>();
        for (FailureKind kind : FailureKind.values()) {
            ErrorTable.Row row = ErrorTable.row(kind);
            answers.add(row.http() + " " + row.openAiCode());
            // The trailers travel with the status: a kind sharing its code with another still survives a hop.
            StatusRuntimeException hop = ErrorTable.status(kind, "m", null);
            assertSame(kind, ErrorTable.kindOf(hop), kind + " survives a hop through another service");
            boolean ownCode = ErrorTable.kindOf(row.grpc()) == kind;
            assertEquals(
                    !ownCode, hop.getTrailers().containsKey(ErrorTable.KIND), kind + ": a kind trailer iff needed");
        }
        assertEquals(FailureKind.values().length, answers.size(), "each kind answers HTTP differently");
        // gRPC's own message limit says RESOURCE_EXHAUSTED: without the trailer, "too large" reads as that.
        assertSame(
                Status.Code.RESOURCE_EXHAUSTED,
                ErrorTable.row(FailureKind.TOO_LARGE).grpc());
    }

    @Test
    void anInvalidArgumentNamesItsFieldAsOpenAisParam() {
        StatusRuntimeException s =
                GrpcErrors.toStatus(TypedFailure.invalidArgument("max_tokens", "max_tokens must be > 0, got 0"));
        assertEquals(Status.Code.INVALID_ARGUMENT, s.getStatus().getCode());
        assertEquals("max_tokens", s.getTrailers().get(ErrorTable.PARAM));
        Map<?, ?> error = (Map<?, ?>) ErrorTable.openAiError(s).get("error");
        assertEquals(400, ErrorTable.httpStatus(s));
        assertEquals("max_tokens", error.get("param"));
        assertEquals("max_tokens must be > 0, got 0", error.get("message"));
    }

    @Test
    void aBareIllegalArgumentExceptionIsABugNotTheCallersError() {
        StatusRuntimeException s =
                GrpcErrors.toStatus(new IllegalArgumentException("segment 3 needs a logits array of 65536 floats"));
        assertEquals(Status.Code.INTERNAL, s.getStatus().getCode());
        assertFalse(
                s.getStatus().getDescription().contains("segment"),
                s.getStatus().getDescription());
    }

    @Test
    void internalHidesTheExceptionsTextAndLogsItUnderTheIdItReturns() {
        Exception bug = new IllegalStateException("password=hunter2 in a stack nobody should see");
        StatusRuntimeException s = GrpcErrors.toStatus(new CompletionException(bug));
        assertEquals(Status.Code.INTERNAL, s.getStatus().getCode());
        Matcher m = Pattern.compile("internal error, id ([0-9a-f]{16})")
                .matcher(s.getStatus().getDescription());
        assertTrue(m.matches(), s.getStatus().getDescription());
        assertNull(s.getCause(), "no cause travels with the status");
        Map<?, ?> error = (Map<?, ?>) ErrorTable.openAiError(s).get("error");
        assertEquals(500, ErrorTable.httpStatus(s));
        assertEquals("server_error", error.get("type"));
        assertEquals(s.getStatus().getDescription(), error.get("message"));

        assertEquals(1, logged.list.size());
        ILoggingEvent event = logged.list.getFirst();
        assertEquals(Level.ERROR, event.getLevel());
        assertTrue(event.getFormattedMessage().contains(m.group(1)), event.getFormattedMessage());
        assertSame(
                bug,
                ((ch.qos.logback.classic.spi.ThrowableProxy) event.getThrowableProxy()).getThrowable(),
                "logged with its stack");
    }

    @Test
    void aTypedFailureOfKindInternalIsHiddenToo() {
        StatusRuntimeException s =
                GrpcErrors.toStatus(new TypedFailure(FailureKind.INTERNAL, "weights file /secret/path is malformed"));
        assertEquals(Status.Code.INTERNAL, s.getStatus().getCode());
        assertFalse(s.getStatus().getDescription().contains("/secret/path"));
        assertEquals(1, logged.list.size());
    }

    @Test
    void executorRejectionDeadlineAndCancellationHaveTheirOwnKinds() {
        assertEquals(
                Status.Code.RESOURCE_EXHAUSTED,
                GrpcErrors.toStatus(new RejectedExecutionException("Task x rejected from pool@1f"))
                        .getStatus()
                        .getCode());
        assertEquals(
                Status.Code.DEADLINE_EXCEEDED,
                GrpcErrors.toStatus(new TimeoutException()).getStatus().getCode());
        CompletableFuture<Void> f = new CompletableFuture<>();
        f.cancel(true);
        Throwable cancelled = f.handle((v, e) -> e).join();
        assertEquals(
                Status.Code.CANCELLED,
                GrpcErrors.toStatus(cancelled).getStatus().getCode());
        assertEquals(
                Status.Code.CANCELLED,
                GrpcErrors.toStatus(new CancellationException()).getStatus().getCode());
        assertFalse(GrpcErrors.toStatus(new RejectedExecutionException("Task x rejected from pool@1f"))
                .getStatus()
                .getDescription()
                .contains("pool@"));
        assertTrue(logged.list.isEmpty());
    }

    @Test
    void aStatusFromAnotherServicePassesThroughWithItsParam() {
        Metadata trailers = new Metadata();
        trailers.put(ErrorTable.PARAM, "tokens[3]");
        StatusRuntimeException downstream = Status.INVALID_ARGUMENT
                .withDescription("tokens[3] = 70000 is outside the vocabulary")
                .asRuntimeException(trailers);
        assertSame(downstream, GrpcErrors.toStatus(new CompletionException(downstream)));
        assertEquals(
                "tokens[3]", ((Map<?, ?>) ErrorTable.openAiError(downstream).get("error")).get("param"));
        // Codes no service of ours sends still get an HTTP status.
        assertEquals(400, ErrorTable.httpStatus(Status.OUT_OF_RANGE.asRuntimeException()));
        assertEquals(500, ErrorTable.httpStatus(Status.DATA_LOSS.asRuntimeException()));
    }
}
