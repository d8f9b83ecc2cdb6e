package dev.goldfinch.gateway;

import dev.goldfinch.error.TypedFailure;
import jakarta.servlet.http.HttpServletRequest;
import java.util.regex.Pattern;
import org.springframework.web.context.request.RequestContextHolder;
import org.springframework.web.context.request.ServletRequestAttributes;

/**
 * A request's id in every service's logs (and its trace's baggage): the client's own when it sends one
 * ({@value #HEADER} over HTTP, {@code request_id} over gRPC), else the id of the response.
 */
final class RequestIds {
    static final String HEADER = "X-Request-Id";
    /** What fits a log line and a baggage header unescaped. */
    private static final Pattern VALID = Pattern.compile("[A-Za-z0-9._:/-]{1,128}");

    private RequestIds() {}

    /** {@code clientId} if given (INVALID_ARGUMENT naming {@code field} when malformed), else {@code ownId}. */
    static String choose(String clientId, String field, String ownId) {
        if (clientId == null || clientId.isEmpty()) {
            return ownId;
        }
        if (!VALID.matcher(clientId).matches()) {
            throw TypedFailure.invalidArgument(
                    field, field + " must be 1 to 128 characters of letters, digits and . _ : / -");
        }
        return clientId;
    }

    /** For the HTTP request being served on this thread: its {@value #HEADER}, else {@code ownId}. */
    static String ofHttpRequest(String ownId) {
        HttpServletRequest request = RequestContextHolder.getRequestAttributes() instanceof ServletRequestAttributes a
                ? a.getRequest()
                : null;
        return choose(request == null ? null : request.getHeader(HEADER), HEADER, ownId);
    }
}
