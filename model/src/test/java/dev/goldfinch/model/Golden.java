package dev.goldfinch.model;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where the golden test vectors are. The project's own tiny models ({@code goldfinch/}, {@code finch/})
 * are test resources; other projects' files (rwkv.cpp's tiny models, the World vocabulary) are read
 * from {@code ../shared/golden} and their tests are skipped, saying why, where it is absent.
 */
public final class Golden {
    private Golden() {
    }

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
        assumeTrue(Files.isDirectory(p), "shared golden data not found at " + p.toAbsolutePath()
                + " (clone the project beside its shared/ folder to run this test)");
        return p;
    }

    /** The RWKV World vocabulary, which is not ours to ship. */
    public static Path worldVocab() {
        return shared("tokenizer").resolve("rwkv_vocab_v20230424.txt");
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
