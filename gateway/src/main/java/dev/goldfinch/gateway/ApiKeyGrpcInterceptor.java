package dev.goldfinch.gateway;

import dev.goldfinch.error.TypedFailure;
import dev.goldfinch.service.ErrorTable;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthGrpc;

/**
 * Authenticates every gRPC call but health checks by its {@code authorization} metadata before the
 * service sees it: an unknown or missing key closes the call UNAUTHENTICATED, so nothing is tokenized and
 * no other service is called. The tenant travels on in the call's {@link Context} ({@link ApiKeys#GRPC_TENANT}).
 */
public final class ApiKeyGrpcInterceptor implements ServerInterceptor {
    static final Metadata.Key<String> AUTHORIZATION =
            Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

    private final ApiKeys keys;

    public ApiKeyGrpcInterceptor(ApiKeys keys) {
        this.keys = keys;
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(
            ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        if (HealthGrpc.SERVICE_NAME.equals(call.getMethodDescriptor().getServiceName())) {
            return next.startCall(call, headers);
        }
        String tenant;
        try {
            tenant = keys.authenticate(headers.get(AUTHORIZATION));
        } catch (TypedFailure failure) {
            StatusRuntimeException e = ErrorTable.status(failure.kind(), failure.getMessage(), null);
            call.close(e.getStatus(), e.getTrailers());
            return new ServerCall.Listener<>() {};
        }
        Context context = Context.current().withValue(ApiKeys.GRPC_TENANT, tenant);
        String initialState = keys.defaultInitialState(tenant);
        if (initialState != null) {
            context = context.withValue(ApiKeys.GRPC_INITIAL_STATE, initialState);
        }
        return Contexts.interceptCall(context, call, headers, next);
    }
}
