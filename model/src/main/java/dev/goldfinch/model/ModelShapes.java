package dev.goldfinch.model;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Named model shapes for random-weight models (tests, benchmarks, demos). {@code L24-D2048} is the
 * released 1.45B GoldFinch, {@code L12-D768} the 187M one; an architecture prefix
 * ({@code finch-L12-D768}, {@code rwkv7-L12-D768}, {@code rwkv5-L24-D2048} for 5.2) picks another family; {@code layers=..,width=..,head=..,vocab=..[,arch=..]}
 * spells a custom one.
 */
public final class ModelShapes {
    private static final Pattern NAMED = Pattern.compile(
            "(?:(goldfinch|finchc2|finch|rwkv6|rwkv5\\.1|rwkv5\\.2|rwkv5|rwkv7)-)?L(\\d+)-D(\\d+)",
            Pattern.CASE_INSENSITIVE);

    private ModelShapes() {}

    public static ModelConfig parse(String shape) {
        String s = shape.strip();
        Matcher m = NAMED.matcher(s);
        if (m.matches()) {
            Architecture arch = m.group(1) == null ? Architecture.GOLDFINCH : Architecture.parse(m.group(1));
            return build(arch, Integer.parseInt(m.group(2)), Integer.parseInt(m.group(3)), 64, 65536);
        }
        if (s.contains("=")) {
            Map<String, String> kv = new LinkedHashMap<>();
            for (String part : s.split(",")) {
                String[] p = part.split("=", 2);
                if (p.length != 2) {
                    throw bad(shape, "'" + part + "' is not key=value");
                }
                kv.put(p[0].strip().toLowerCase(Locale.ROOT), p[1].strip());
            }
            Architecture arch = Architecture.parse(kv.getOrDefault("arch", "goldfinch"));
            int layers = number(kv, "layers", shape);
            int width = number(kv, "width", shape);
            int head = kv.containsKey("head") ? number(kv, "head", shape) : 64;
            int vocab = kv.containsKey("vocab") ? number(kv, "vocab", shape) : 65536;
            kv.keySet().removeAll(java.util.Set.of("arch", "layers", "width", "head", "vocab"));
            if (!kv.isEmpty()) {
                throw bad(shape, "unknown keys " + kv.keySet() + " (layers, width, head, vocab, arch)");
            }
            return build(arch, layers, width, head, vocab);
        }
        throw bad(
                shape,
                "expected a name like L24-D2048, L12-D768, finch-L12-D768, or layers=24,width=2048,head=64,vocab=65536");
    }

    private static ModelConfig build(Architecture arch, int layers, int width, int head, int vocab) {
        if (layers <= 0
                || width <= 0
                || head <= 0
                || vocab <= 0
                || width % head != 0
                || (arch.hasGold() && layers < 2)
                || (arch.hasGold() && width % 16 != 0)) {
            throw new GoldFinchException.InvalidInput("invalid shape: layers=" + layers + " width=" + width + " head="
                    + head + " vocab=" + vocab + " (width must be a multiple of head"
                    + (arch.hasGold() ? " and of 16, layers ≥ 2" : "") + ")");
        }
        try {
            return ModelConfig.standard(arch, layers, width, head, vocab);
        } catch (GoldFinchException.BadModel e) {
            throw new GoldFinchException.InvalidInput("invalid shape: " + e.getMessage());
        }
    }

    private static int number(Map<String, String> kv, String key, String shape) {
        String v = kv.get(key);
        if (v == null) {
            throw bad(shape, "missing " + key + "=");
        }
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw bad(shape, key + "=" + v + " is not a number");
        }
    }

    private static GoldFinchException.InvalidInput bad(String shape, String why) {
        return new GoldFinchException.InvalidInput("unknown shape '" + shape + "': " + why);
    }
}
