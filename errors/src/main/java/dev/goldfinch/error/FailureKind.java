package dev.goldfinch.error;

/**
 * What went wrong, from the caller's side: the one vocabulary every module's failures are sorted into.
 * The services map each kind to a gRPC status, an HTTP status and an OpenAI error object in one table
 * ({@code dev.goldfinch.service.ErrorTable}).
 */
public enum FailureKind {
    /** The request is wrong: a field out of range, missing or malformed. The caller must change it. */
    INVALID_ARGUMENT,
    /** The caller did not prove who it is: no API key, or one the server does not know. */
    UNAUTHENTICATED,
    /** What the request names does not exist (any more): an evicted cache entry. */
    NOT_FOUND,
    /** The model a request names is not one this server serves (OpenAI's {@code model_not_found}). */
    MODEL_NOT_FOUND,
    /** The route exists but not with this method (HTTP 405). */
    METHOD_NOT_ALLOWED,
    /** Intact, but made for another model or format version (gRPC FAILED_PRECONDITION). */
    MODEL_MISMATCH,
    /** The server is at a limit (queue, concurrent sequences): retry later. */
    RESOURCE_EXHAUSTED,
    /** The request or message is larger than the server accepts (HTTP 413): the caller must send less. */
    TOO_LARGE,
    /** A service this one needs is down or unreachable: retry, perhaps elsewhere. */
    UNAVAILABLE,
    /** The request's deadline passed before it finished. */
    DEADLINE_EXCEEDED,
    /** The caller went away or cancelled. */
    CANCELLED,
    /** A bug or a broken deployment: never the caller's fault, and its details stay in the server's log. */
    INTERNAL
}
