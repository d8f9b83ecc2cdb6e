package dev.goldfinch.gateway;

/**
 * The test vocabulary ({@code test-vocab.txt}): every byte b as token b + 1, then a few longer pieces, so
 * that fakes can send text split across tokens at chosen places.
 */
final class TestVocab {
    static final int HELLO = 257;
    static final int WORLD = 258; // " world"
    static final int NEWLINES = 259; // "\n\n"
    static final int USER = 260;
    static final int COLON = 261;
    static final int XX_S = 262; // "xxS"
    static final int T = 263;
    static final int OP_YY = 264; // "OPyy"
    static final int MORE = 265; // " more"

    private TestVocab() {}

    /** The token of one byte. */
    static int ofByte(int b) {
        return (b & 0xff) + 1;
    }
}
