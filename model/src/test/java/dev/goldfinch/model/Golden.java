package dev.goldfinch.model;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tensor.Tensor;
import java.lang.foreign.ValueLayout;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Where the golden test vectors are. The project's own tiny models ({@code goldfinch/}, {@code finch/})
 * are test resources; other projects' test data (rwkv.cpp's tiny models, tokenizer cases) are read
 * from {@code ../shared/golden} and their tests are skipped, saying why, where it is absent.
 */
public final class Golden {
    private Golden() {}

    /** A folder of the project's own golden data, shipped as test resources. */
    public static Path resource(String folder) {
        URL url = Golden.class.getResource("/golden/" + folder);
        if (url == null) {
            throw new IllegalStateException("test resource /golden/" + folder + " is missing");
        }
        try {
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A folder under ../shared/golden; skips the calling test when it is not there. */
    public static Path shared(String folder) {
        String dir = System.getProperty("goldfinch.shared.dir", "../shared");
        Path p = Path.of(dir, "golden", folder);
        assumeTrue(
                Files.isDirectory(p),
                "shared golden data not found at " + p.toAbsolutePath()
                        + " (clone the project beside its shared/ folder to run this test)");
        return p;
    }

    /** Relative tolerance on hidden states and states (golden README): 1e-4 of the value, at least 1e-4. */
    public static final float STATE_TOLERANCE = 1e-4f;

    /** Every element within {@link #STATE_TOLERANCE} of the reference, relative to its magnitude (at least 1). */
    public static void assertClose(float[] want, float[] got, String what) {
        if (want.length != got.length) {
            throw new AssertionError(what + ": " + got.length + " values, the reference has " + want.length);
        }
        for (int i = 0; i < want.length; i++) {
            float tol = STATE_TOLERANCE * Math.max(1f, Math.abs(want[i]));
            if (!(Math.abs(want[i] - got[i]) <= tol)) {
                throw new AssertionError(what + " diverged at [" + i + "]: " + got[i] + " vs reference " + want[i]);
            }
        }
    }

    /** Token ids stored as I64 (the reference's {@code tokens}, {@code input_tokens_cache}). */
    public static int[] ids(Tensor t) {
        if (t.dtype() != DType.I64) {
            throw new IllegalStateException(t.name() + " is " + t.dtype() + ", not I64");
        }
        long[] ids = t.data().toArray(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
        return Arrays.stream(ids).mapToInt(Math::toIntExact).toArray();
    }

    /** A WKV state ({@code [h][key j][value i]}) in the reference tensors' layout, {@code [h][value i][key j]}. */
    public static float[] wkvInReferenceLayout(float[] wkv, int heads, int headSize) {
        float[] out = new float[wkv.length];
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < headSize; j++) {
                for (int i = 0; i < headSize; i++) {
                    out[(h * headSize + i) * headSize + j] = wkv[(h * headSize + j) * headSize + i];
                }
            }
        }
        return out;
    }

    public static float maxAbsDiff(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new AssertionError("length " + a.length + " != " + b.length);
        }
        float m = 0;
        for (int i = 0; i < a.length; i++) {
            float d = Math.abs(a[i] - b[i]);
            if (!(d <= m)) {
                m = Float.isNaN(d) ? Float.POSITIVE_INFINITY : d;
            }
        }
        return m;
    }
}
