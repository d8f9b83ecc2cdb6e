package dev.goldfinch.gateway;

import dev.goldfinch.error.TypedFailure;
import dev.goldfinch.service.ErrorTable;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import org.springframework.http.HttpHeaders;
import org.springframework.http.MediaType;
import org.springframework.web.filter.OncePerRequestFilter;
import tools.jackson.databind.json.JsonMapper;

/**
 * Authenticates every HTTP request but {@code /health}, {@code /metrics} and the playground page by its {@code Authorization: Bearer KEY} header before any
 * controller runs: an unknown or missing key is answered 401 with OpenAI's error object. The tenant
 * travels on as the request attribute {@link ApiKeys#HTTP_TENANT}.
 */
public final class ApiKeyHttpFilter extends OncePerRequestFilter {
    /** What a load balancer and a Prometheus scraper read without a key (PublicEndpoints; no secret is in them). */
    static final java.util.Set<String> OPEN_PATHS = java.util.Set.of(
            "/health", "/metrics", "/", "/index.html"); // the playground page: its calls carry the key typed into it

    private final ApiKeys keys;
    private final JsonMapper json;

    public ApiKeyHttpFilter(ApiKeys keys, JsonMapper json) {
        this.keys = keys;
        this.json = json;
    }

    @Override
    protected boolean shouldNotFilter(HttpServletRequest request) {
        String path = request.getRequestURI().substring(request.getContextPath().length());
        return OPEN_PATHS.contains(path);
    }

    @Override
    protected void doFilterInternal(HttpServletRequest request, HttpServletResponse response, FilterChain chain)
            throws ServletException, IOException {
        String tenant;
        try {
            tenant = keys.authenticate(request.getHeader(HttpHeaders.AUTHORIZATION));
        } catch (TypedFailure failure) {
            var error = ErrorTable.status(failure.kind(), failure.getMessage(), null);
            response.setStatus(ErrorTable.httpStatus(error));
            response.setHeader(HttpHeaders.WWW_AUTHENTICATE, "Bearer");
            response.setContentType(MediaType.APPLICATION_JSON_VALUE);
            response.getOutputStream().write(json.writeValueAsBytes(ErrorTable.openAiError(error)));
            return;
        }
        request.setAttribute(ApiKeys.HTTP_TENANT, tenant);
        String initialState = keys.defaultInitialState(tenant);
        if (initialState != null) {
            request.setAttribute(ApiKeys.HTTP_INITIAL_STATE, initialState);
        }
        chain.doFilter(request, response);
    }
}
