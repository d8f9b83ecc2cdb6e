package dev.goldfinch.gateway;

import dev.goldfinch.error.FailureKind;
import dev.goldfinch.service.ErrorTable;
import io.grpc.StatusRuntimeException;
import java.util.Map;
import org.springframework.http.HttpHeaders;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;

/**
 * A failure as the HTTP answer every route gives: the status and OpenAI's error object from the one
 * {@link ErrorTable}, with {@code Retry-After} where waiting is the remedy (429, 503), as OpenAI's SDKs read it.
 */
final class HttpErrors {
    /** Seconds a client should wait before retrying a full or unavailable server. */
    static final String RETRY_AFTER_SECONDS = "1";

    private HttpErrors() {}

    static ResponseEntity<Map<String, Object>> response(StatusRuntimeException e) {
        FailureKind kind = ErrorTable.kindOf(e);
        ResponseEntity.BodyBuilder b =
                ResponseEntity.status(ErrorTable.row(kind).http()).contentType(MediaType.APPLICATION_JSON);
        if (kind == FailureKind.RESOURCE_EXHAUSTED || kind == FailureKind.UNAVAILABLE) {
            b.header(HttpHeaders.RETRY_AFTER, RETRY_AFTER_SECONDS);
        }
        return b.body(ErrorTable.openAiError(e));
    }
}
