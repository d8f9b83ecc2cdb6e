package dev.goldfinch.gateway;

import dev.goldfinch.error.FailureKind;
import dev.goldfinch.service.ErrorTable;
import dev.goldfinch.service.GrpcErrors;
import io.grpc.StatusRuntimeException;
import jakarta.servlet.RequestDispatcher;
import jakarta.servlet.http.HttpServletRequest;
import java.util.Map;
import org.springframework.boot.webmvc.error.ErrorController;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpStatusCode;
import org.springframework.http.ResponseEntity;
import org.springframework.web.HttpRequestMethodNotSupportedException;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.bind.annotation.RestControllerAdvice;
import org.springframework.web.context.request.ServletWebRequest;
import org.springframework.web.context.request.WebRequest;
import org.springframework.web.servlet.mvc.method.annotation.ResponseEntityExceptionHandler;

/**
 * OpenAI's error object on every route of the public port, in place of Spring's own answers: an unknown path
 * is 404, a known path with another method 405 (with {@code Allow}), a body Spring cannot read 400, anything a
 * controller throws goes through {@link GrpcErrors} and the one {@link ErrorTable} (a bug: 500 naming only the
 * id it was logged under, never a stack trace). What reaches the servlet container's error page ({@code /error})
 * is answered the same way.
 */
final class OpenAiErrors {
    private OpenAiErrors() {}

    /** The kind of a status Spring or the container chose on its own. */
    static FailureKind kindOf(int status) {
        return switch (status) {
            case 401 -> FailureKind.UNAUTHENTICATED;
            case 404 -> FailureKind.NOT_FOUND;
            case 405 -> FailureKind.METHOD_NOT_ALLOWED;
            case 413 -> FailureKind.TOO_LARGE;
            case 429 -> FailureKind.RESOURCE_EXHAUSTED;
            case 503 -> FailureKind.UNAVAILABLE;
            case 504 -> FailureKind.DEADLINE_EXCEEDED;
            default -> status >= 400 && status < 500 ? FailureKind.INVALID_ARGUMENT : FailureKind.INTERNAL;
        };
    }

    static String message(FailureKind kind, String method, String path, Exception cause) {
        return switch (kind) {
            case NOT_FOUND -> "Unknown request URL: " + method + " " + path;
            case METHOD_NOT_ALLOWED ->
                cause instanceof HttpRequestMethodNotSupportedException m && m.getSupportedHttpMethods() != null
                        ? "Method " + method + " is not allowed on " + path + "; it takes "
                                + m.getSupportedHttpMethods()
                        : "Method " + method + " is not allowed on " + path;
            case TOO_LARGE -> "request body is larger than this server accepts";
            default -> cause != null && cause.getMessage() != null ? cause.getMessage() : "bad request";
        };
    }

    static ResponseEntity<Object> answer(FailureKind kind, String message, HttpHeaders headers) {
        ResponseEntity<Map<String, Object>> r = HttpErrors.response(ErrorTable.status(kind, message, null));
        HttpHeaders all = new HttpHeaders();
        if (headers != null) {
            all.addAll(headers);
        }
        all.addAll(r.getHeaders());
        return ResponseEntity.status(r.getStatusCode()).headers(all).body(r.getBody());
    }

    /** What Spring MVC raises before or around a controller, and whatever a controller throws. */
    @RestControllerAdvice
    static final class Advice extends ResponseEntityExceptionHandler {
        @Override
        protected ResponseEntity<Object> handleExceptionInternal(
                Exception ex, Object body, HttpHeaders headers, HttpStatusCode statusCode, WebRequest request) {
            FailureKind kind = kindOf(statusCode.value());
            if (kind == FailureKind.INTERNAL) {
                return answerThrown(ex);
            }
            HttpServletRequest http = ((ServletWebRequest) request).getRequest();
            return answer(kind, message(kind, http.getMethod(), http.getRequestURI(), ex), headers);
        }

        @ExceptionHandler(Exception.class)
        ResponseEntity<Object> anyOther(Exception e) {
            return answerThrown(e);
        }

        private static ResponseEntity<Object> answerThrown(Exception e) {
            StatusRuntimeException status = GrpcErrors.toStatus(e);
            ResponseEntity<Map<String, Object>> r = HttpErrors.response(status);
            return ResponseEntity.status(r.getStatusCode())
                    .headers(r.getHeaders())
                    .body(r.getBody());
        }
    }

    /** The container's error dispatch (an error raised outside Spring MVC, or {@code sendError}). */
    @RestController
    static final class Page implements ErrorController {
        @RequestMapping("/error")
        ResponseEntity<Object> error(HttpServletRequest request) {
            if (!(request.getAttribute(RequestDispatcher.ERROR_STATUS_CODE) instanceof Integer status)) {
                // /error asked for directly: it is no route of this API.
                return answer(
                        FailureKind.NOT_FOUND,
                        message(FailureKind.NOT_FOUND, request.getMethod(), "/error", null),
                        null);
            }
            Object thrown = request.getAttribute(RequestDispatcher.ERROR_EXCEPTION);
            if (thrown instanceof Exception e && (status >= 500 || status < 400)) {
                return Advice.answerThrown(e);
            }
            FailureKind kind = kindOf(status);
            if (kind == FailureKind.INTERNAL) {
                return Advice.answerThrown(new IllegalStateException("HTTP " + status + " from the servlet container"));
            }
            Object uri = request.getAttribute(RequestDispatcher.ERROR_REQUEST_URI);
            String path = uri instanceof String s ? s : request.getRequestURI();
            Object message = request.getAttribute(RequestDispatcher.ERROR_MESSAGE);
            Exception cause = message instanceof String m && !m.isBlank() ? new IllegalStateException(m) : null;
            return answer(kind, message(kind, request.getMethod(), path, cause), null);
        }
    }
}
