package dev.goldfinch.error;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

class TypedFailureTest {
    @Test
    void anInvalidArgumentNamesItsField() {
        TypedFailure f = TypedFailure.invalidArgument("max_tokens", "max_tokens must be > 0, got 0");
        assertEquals(FailureKind.INVALID_ARGUMENT, f.kind());
        assertEquals("max_tokens", f.field());
        assertEquals("max_tokens must be > 0, got 0", f.getMessage());
    }

    @Test
    void otherKindsCarryTheirCauseAndNoField() {
        Exception cause = new java.io.IOException("connection reset");
        TypedFailure f = new TypedFailure(FailureKind.UNAVAILABLE, "the cache backend did not answer", cause);
        assertEquals(FailureKind.UNAVAILABLE, f.kind());
        assertNull(f.field());
        assertSame(cause, f.getCause());
    }

    @Test
    void aKindIsRequired() {
        assertThrows(NullPointerException.class, () -> new TypedFailure(null, "no kind"));
        assertThrows(NullPointerException.class, () -> TypedFailure.invalidArgument(null, "no field"));
    }
}
