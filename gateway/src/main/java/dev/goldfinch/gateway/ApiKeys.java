package dev.goldfinch.gateway;

import dev.goldfinch.error.FailureKind;
import dev.goldfinch.error.TypedFailure;
import dev.goldfinch.model.GoldFinchException;
import io.grpc.Context;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Who a caller is: the tenant whose API key it presents as {@code Authorization: Bearer KEY} (HTTP) or
 * {@code authorization} metadata (gRPC). The keys come from a file of {@code TENANT KEY} lines; without one
 * the gateway is open and every caller is the {@link #ANONYMOUS} tenant. Only SHA-256 digests of the keys
 * are held, and a presented key is compared with every one of them in constant time, so neither the
 * answer's timing nor a heap dump gives a key away. No key ever enters a log line or an error.
 *
 * <p>A line may add {@code initial_state=NAME}: the initial state (configured on the prefill service) the tenant's
 * requests start from when they name none. One tenant's lines must agree on it.
 */
public final class ApiKeys {
    /** The tenant of every caller when no keys are configured. */
    public static final String ANONYMOUS = "";

    /** The authenticated tenant of a gRPC call, set by {@link ApiKeyGrpcInterceptor}. */
    public static final Context.Key<String> GRPC_TENANT = Context.key("goldfinch-tenant");

    /** The request attribute holding the authenticated tenant of an HTTP request, set by {@link ApiKeyHttpFilter}. */
    public static final String HTTP_TENANT = "dev.goldfinch.gateway.ApiKeys.tenant";

    /** The request attribute holding the tenant's default initial state, when it has one ({@link ApiKeyHttpFilter}). */
    public static final String HTTP_INITIAL_STATE = "dev.goldfinch.gateway.ApiKeys.initialState";

    /** The tenant's default initial state of a gRPC call, when it has one ({@link ApiKeyGrpcInterceptor}). */
    public static final Context.Key<String> GRPC_INITIAL_STATE = Context.key("goldfinch-initial-state");

    private static final String INITIAL_STATE_OPTION = "initial_state=";

    private static final Pattern TENANT = Pattern.compile("[A-Za-z0-9._-]{1,64}");
    private static final String BEARER = "bearer ";

    private record Entry(String tenant, byte[] keyDigest) {}

    private final List<Entry> entries;
    private final java.util.Map<String, String> initialStates;

    private ApiKeys(List<Entry> entries, java.util.Map<String, String> initialStates) {
        this.entries = entries;
        this.initialStates = initialStates;
    }

    /** No keys: every caller is {@link #ANONYMOUS}. */
    public static ApiKeys open() {
        return new ApiKeys(List.of(), java.util.Map.of());
    }

    /** The initial state {@code tenant}'s requests start from when they name none; null when it has no default. */
    public String defaultInitialState(String tenant) {
        return initialStates.get(tenant);
    }

    /**
     * Reads {@code TENANT KEY} lines; {@code #} starts a comment, blank lines are skipped. A malformed file
     * is an error naming its line, never the key on it.
     */
    public static ApiKeys load(Path file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new GoldFinchException.InvalidInput("cannot read the API keys file " + file + ": "
                    + e.getClass().getSimpleName());
        }
        List<Entry> entries = new ArrayList<>();
        Set<String> digests = new HashSet<>();
        java.util.Map<String, String> initialStates = new java.util.HashMap<>();
        Set<String> tenantsWithoutDefault = new HashSet<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            int hash = line.indexOf('#');
            String content = (hash >= 0 ? line.substring(0, hash) : line).strip();
            if (content.isEmpty()) {
                continue;
            }
            String[] parts = content.split("\\s+");
            String where = "API keys file " + file + " line " + (i + 1) + ": ";
            if (parts.length != 2 && !(parts.length == 3 && parts[2].startsWith(INITIAL_STATE_OPTION))) {
                throw new GoldFinchException.InvalidInput(where + "expected 'TENANT KEY' (two fields) or 'TENANT KEY "
                        + INITIAL_STATE_OPTION + "NAME', found " + parts.length + " fields");
            }
            if (!TENANT.matcher(parts[0]).matches()) {
                throw new GoldFinchException.InvalidInput(
                        where + "a tenant id is 1 to 64 of letters, digits, '.', '_' and '-'");
            }
            byte[] digest = sha256(parts[1]);
            if (!digests.add(java.util.HexFormat.of().formatHex(digest))) {
                throw new GoldFinchException.InvalidInput(where + "this key is already given on an earlier line");
            }
            String initialState = parts.length == 3 ? parts[2].substring(INITIAL_STATE_OPTION.length()) : null;
            if (initialState != null && initialState.isEmpty()) {
                throw new GoldFinchException.InvalidInput(where + INITIAL_STATE_OPTION + " needs a name");
            }
            String earlier = initialStates.get(parts[0]);
            boolean hadNone = tenantsWithoutDefault.contains(parts[0]);
            if ((earlier != null && !earlier.equals(initialState)) || (hadNone && initialState != null)) {
                throw new GoldFinchException.InvalidInput(
                        where + "tenant " + parts[0] + " has another initial_state on an earlier line");
            }
            if (initialState != null) {
                initialStates.put(parts[0], initialState);
            } else {
                tenantsWithoutDefault.add(parts[0]);
            }
            entries.add(new Entry(parts[0], digest));
        }
        if (entries.isEmpty()) {
            throw new GoldFinchException.InvalidInput("API keys file " + file + " holds no 'TENANT KEY' line");
        }
        return new ApiKeys(List.copyOf(entries), java.util.Map.copyOf(initialStates));
    }

    /** Whether the gateway serves anyone (no keys configured). */
    public boolean isOpen() {
        return entries.isEmpty();
    }

    /** How many keys are configured (for the start-up log line; never the keys). */
    public int size() {
        return entries.size();
    }

    /**
     * The tenant an {@code Authorization} header value (may be null) authenticates; UNAUTHENTICATED when
     * it names no configured key. Every configured digest is compared, whichever matches.
     */
    public String authenticate(String authorization) {
        if (isOpen()) {
            return ANONYMOUS;
        }
        if (authorization == null
                || authorization.length() <= BEARER.length()
                || !authorization.regionMatches(true, 0, BEARER, 0, BEARER.length())) {
            throw new TypedFailure(
                    FailureKind.UNAUTHENTICATED,
                    "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.");
        }
        byte[] presented = sha256(authorization.substring(BEARER.length()).strip());
        String tenant = null;
        for (Entry e : entries) {
            if (MessageDigest.isEqual(e.keyDigest(), presented) && tenant == null) {
                tenant = e.tenant();
            }
        }
        if (tenant == null) {
            throw new TypedFailure(FailureKind.UNAUTHENTICATED, "Incorrect API key provided.");
        }
        return tenant;
    }

    private static byte[] sha256(String key) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
