package dev.goldfinch.gateway;

import dev.goldfinch.error.FailureKind;
import dev.goldfinch.service.ErrorTable;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ReadListener;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletInputStream;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletRequestWrapper;
import jakarta.servlet.http.HttpServletResponse;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import org.springframework.http.MediaType;
import org.springframework.web.filter.OncePerRequestFilter;
import tools.jackson.databind.json.JsonMapper;

/**
 * Refuses a request body larger than {@code goldfinch.gateway.max-request-body} with 413 and OpenAI's error
 * object, before a controller reads it: by its {@code Content-Length} when it announces one, else by reading
 * at most one byte past the limit. Runs after authentication, so an unauthenticated body is never read.
 */
public final class RequestBodyLimitFilter extends OncePerRequestFilter {
    private final long maxBytes;
    private final JsonMapper json;

    public RequestBodyLimitFilter(long maxBytes, JsonMapper json) {
        this.maxBytes = maxBytes;
        this.json = json;
    }

    @Override
    protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
            throws ServletException, IOException {
        if (request.getContentLengthLong() > maxBytes) {
            refuse(response, request.getContentLengthLong());
            return;
        }
        if (request.getContentLengthLong() >= 0) { // the server stops reading at the announced length
            chain.doFilter(request, response);
            return;
        }
        byte[] body;
        try (InputStream in = request.getInputStream()) {
            body = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, maxBytes + 1));
        }
        if (body.length > maxBytes) {
            refuse(response, -1);
            return;
        }
        chain.doFilter(new ReadBody(request, body), response);
    }

    private void refuse(HttpServletResponse response, long announced) throws IOException {
        String message = "request body is "
                + (announced >= 0 ? announced + " bytes, " : "")
                + "more than this server's limit of " + maxBytes + " bytes";
        response.setStatus(ErrorTable.row(FailureKind.TOO_LARGE).http());
        response.setContentType(MediaType.APPLICATION_JSON_VALUE);
        response.setHeader("Connection", "close"); // the rest of the body is not read
        response.getOutputStream()
                .write(json.writeValueAsBytes(ErrorTable.openAiError(FailureKind.TOO_LARGE, message, null)));
    }

    /** A request whose body was already read (within the limit). */
    private static final class ReadBody extends HttpServletRequestWrapper {
        private final byte[] body;

        ReadBody(HttpServletRequest request, byte[] body) {
            super(request);
            this.body = body;
        }

        @Override
        public long getContentLengthLong() {
            return body.length;
        }

        @Override
        public int getContentLength() {
            return body.length;
        }

        @Override
        public ServletInputStream getInputStream() {
            ByteArrayInputStream in = new ByteArrayInputStream(body);
            return new ServletInputStream() {
                @Override
                public int read() {
                    return in.read();
                }

                @Override
                public int read(byte[] b, int off, int len) {
                    return in.read(b, off, len);
                }

                @Override
                public boolean isFinished() {
                    return in.available() == 0;
                }

                @Override
                public boolean isReady() {
                    return true;
                }

                @Override
                public void setReadListener(ReadListener listener) {
                    throw new UnsupportedOperationException("the body is already read");
                }
            };
        }
    }
}
