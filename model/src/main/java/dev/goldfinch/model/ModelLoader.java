package dev.goldfinch.model;

import dev.goldfinch.model.io.RwkvCppFile;
import dev.goldfinch.model.io.SafeTensors;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tensor.Q8Matrix;
import dev.goldfinch.model.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

/**
 * Loads a model from safetensors, or from rwkv.cpp's model file ({@link RwkvCppFile}). The released checkpoints carry no config, so every size is read
 * off the tensor shapes; the full expected tensor set is then derived from that config and compared
 * name by name, so a missing, extra or mis-shaped tensor is an error that names it. A
 * {@code config.json} beside the weights is optional and, when present, must agree.
 */
public final class ModelLoader {
    private static final ObjectMapper JSON = new ObjectMapper();

    private ModelLoader() {}

    /** {@code path} is a {@code .safetensors} file, a directory holding exactly one, or an rwkv.cpp {@code .bin}. */
    public static GoldFinchModel load(Path path) {
        return load(path, WeightFormat.AS_STORED);
    }

    /** Loads and, for {@link WeightFormat#Q8_0}, quantizes the matrices in memory (the file is untouched). */
    public static GoldFinchModel load(Path path, WeightFormat format) {
        Path file = resolve(path);
        if (RwkvCppFile.isRwkvCpp(file) || file.getFileName().toString().endsWith(".bin")) {
            return loadRwkvCpp(file, format);
        }
        // The weights copy what they keep (packed for the kernels), so the mapped file is closed once they are built.
        try (SafeTensors st = SafeTensors.open(file)) {
            ModelConfig config = inferConfig(st.tensors(), file.toString());
            validate(config, st.tensors(), file.toString());
            Path configJson = file.resolveSibling("config.json");
            if (Files.isRegularFile(configJson)) {
                checkConfigJson(config, configJson);
            }
            return new GoldFinchModel(new ModelWeights(config, st.tensors(), format));
        }
    }

    /** rwkv.cpp's file, read back into RWKV-LM's tensors, then inferred and checked as a safetensors file is. */
    private static GoldFinchModel loadRwkvCpp(Path file, WeightFormat format) {
        try (RwkvCppFile bin = RwkvCppFile.open(file)) {
            ModelConfig config = inferConfig(bin.tensors(), file.toString());
            Map<String, Tensor> tensors = RwkvCppFile.conform(bin.tensors(), config.expectedTensors());
            validate(config, tensors, file.toString());
            return new GoldFinchModel(new ModelWeights(config, tensors, format));
        }
    }

    static Path resolve(Path path) {
        if (Files.isDirectory(path)) {
            try (Stream<Path> files = Files.list(path)) {
                List<Path> found =
                        files.filter(SafeTensors::isSafeTensors).sorted().toList();
                if (found.size() != 1) {
                    throw new GoldFinchException.BadModel(
                            path + ": expected one .safetensors file, found " + found.size());
                }
                return found.getFirst();
            } catch (IOException e) {
                throw new GoldFinchException.BadModel("cannot list " + path + ": " + e.getMessage(), e);
            }
        }
        if (!Files.isRegularFile(path)) {
            throw new GoldFinchException.BadModel(path + ": no such model file");
        }
        return path;
    }

    /** Reads the architecture and every size from tensor names and shapes. */
    public static ModelConfig inferConfig(Map<String, Tensor> t, String source) {
        long[] emb = shape(t, TensorNames.EMB, 2, source);
        int vocab = (int) emb[0];
        int embd = (int) emb[1];
        int nLayer = 0;
        while (t.containsKey(new TensorNames(nLayer).ln1Weight())) {
            nLayer++;
        }
        if (nLayer == 0) {
            throw new GoldFinchException.BadModel(
                    source + ": missing tensor " + new TensorNames(0).ln1Weight() + " (no layers found)");
        }
        TensorNames first = new TensorNames(0);
        int ffnWidth = (int) shape(t, first.ffn(TensorNames.KEY), 2, source)[0];
        if (t.containsKey(first.att(TensorNames.W0))) {
            return gooseConfig(t, source, nLayer, embd, ffnWidth, vocab);
        }
        if (t.containsKey(first.att(TensorNames.MIX_K))) {
            return eagleConfig(t, source, nLayer, embd, ffnWidth, vocab);
        }
        int firstGold = nLayer;
        boolean plainFinch = false;
        for (int l = 0; l < nLayer; l++) {
            TensorNames n = new TensorNames(l);
            boolean gold = t.containsKey(n.att(TensorNames.QUERY));
            if (gold) {
                firstGold = Math.min(firstGold, l);
            } else if (firstGold < nLayer) {
                throw new GoldFinchException.BadModel(source + ": layer " + l + " is recurrent but follows GOLD layer "
                        + firstGold + " (missing tensor " + n.att(TensorNames.QUERY) + "?)");
            } else if (l == 0) {
                plainFinch = t.containsKey(n.att(TensorNames.GATE));
            }
        }
        Architecture arch = firstGold == 0
                ? failArch(source)
                : firstGold < nLayer ? Architecture.GOLDFINCH : plainFinch ? Architecture.FINCH : Architecture.FINCH_C2;
        if (arch == Architecture.GOLDFINCH && plainFinch) {
            throw new GoldFinchException.BadModel(
                    source + ": GOLD layers on top of plain Finch layers are not a released architecture");
        }
        int headSize = (int) shape(t, first.att(TensorNames.BONUS), 2, source)[1];
        int ffn = ffnWidth;
        int maaRank = (int) shape(t, first.att(TensorNames.MAA_W1), 2, source)[1] / 5;
        int decayRank = (int) shape(t, first.att(TensorNames.DECAY_W1), 2, source)[1];
        int valueRank =
                arch == Architecture.FINCH ? 64 : (int) shape(t, first.att(TensorNames.VALUE2_W1), 2, source)[1];
        int qRank = 32, kvRank = 32, keyRank = 64, valRank = 64, compressed = 0;
        if (arch.hasGold()) {
            TensorNames g = new TensorNames(firstGold);
            qRank = (int) shape(t, g.att(TensorNames.Q_W1), 2, source)[1];
            kvRank = (int) shape(t, g.att(TensorNames.KV_W1), 2, source)[1] / 2;
            keyRank = (int) shape(t, g.att(TensorNames.KEY_W1), 2, source)[1];
            valRank = (int) shape(t, g.att(TensorNames.VALUE_W1), 2, source)[1];
            compressed = (int) shape(t, TensorNames.KV_CACHE_A, 2, source)[0];
        }
        return new ModelConfig(
                arch,
                nLayer,
                embd,
                ffn,
                headSize,
                vocab,
                firstGold,
                compressed,
                maaRank,
                decayRank,
                valueRank,
                qRank,
                kvRank,
                keyRank,
                valRank,
                0,
                0);
    }

    /**
     * RWKV-5: a time mix with static mixes ({@code time_mix_k}); 5.1 has {@code time_first} and a decay per head,
     * 5.2 {@code time_faaaa} and a decay per channel. The head count is the decay's first dimension.
     */
    private static ModelConfig eagleConfig(
            Map<String, Tensor> t, String source, int nLayer, int embd, int ffn, int vocab) {
        TensorNames first = new TensorNames(0);
        boolean v51 = t.containsKey(first.att(TensorNames.FIRST));
        long[] decay = shape(t, first.att(TensorNames.DECAY), v51 ? 1 : 2, source);
        int heads = (int) decay[0];
        if (heads <= 0 || embd % heads != 0) {
            throw new GoldFinchException.BadModel(source + ": tensor " + first.att(TensorNames.DECAY) + " has shape "
                    + Arrays.toString(decay) + ", whose " + heads + " heads do not divide the width " + embd);
        }
        Architecture arch = v51 ? Architecture.RWKV5_1 : Architecture.RWKV5_2;
        return new ModelConfig(arch, nLayer, embd, ffn, embd / heads, vocab, nLayer, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    }

    /** RWKV-7: {@code w0} in the time mix; the head size is {@code r_k}'s second dimension, the LoRA ranks their widths. */
    private static ModelConfig gooseConfig(
            Map<String, Tensor> t, String source, int nLayer, int embd, int ffn, int vocab) {
        TensorNames first = new TensorNames(0);
        int headSize = (int) shape(t, first.att(TensorNames.R_K), 2, source)[1];
        int decayRank = (int) shape(t, first.att(TensorNames.W1), 2, source)[1];
        int aRank = (int) shape(t, first.att(TensorNames.A1), 2, source)[1];
        int gateRank = (int) shape(t, first.att(TensorNames.G1), 2, source)[1];
        // Layer 0's value is the residual the others mix in, so the value LoRA starts at layer 1.
        int valueRank = nLayer > 1 ? (int) shape(t, new TensorNames(1).att(TensorNames.V1), 2, source)[1] : 32;
        if (headSize <= 0 || embd % headSize != 0) {
            throw new GoldFinchException.BadModel(source + ": tensor " + first.att(TensorNames.R_K)
                    + " gives head size " + headSize + ", which does not divide the width " + embd);
        }
        return new ModelConfig(
                Architecture.RWKV7,
                nLayer,
                embd,
                ffn,
                headSize,
                vocab,
                nLayer,
                0,
                0,
                decayRank,
                valueRank,
                0,
                0,
                0,
                0,
                aRank,
                gateRank);
    }

    private static Architecture failArch(String source) {
        throw new GoldFinchException.BadModel(
                source + ": layer 0 is a GOLD layer; a model needs recurrent layers below GOLD");
    }

    private static long[] shape(Map<String, Tensor> t, String name, int rank, String source) {
        Tensor tensor = t.get(name);
        if (tensor == null) {
            throw new GoldFinchException.BadModel(source + ": missing tensor " + name);
        }
        long[] s = tensor.shape();
        if (s.length != rank) {
            throw new GoldFinchException.BadModel(source + ": tensor " + name + " has shape " + Arrays.toString(s)
                    + ", expected " + rank + " dimensions");
        }
        return s;
    }

    /** Every expected tensor present with its exact shape and a float type; nothing unexpected. */
    public static void validate(ModelConfig config, Map<String, Tensor> tensors, String source) {
        Map<String, long[]> expected = config.expectedTensors();
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            Tensor t = tensors.get(e.getKey());
            if (t == null) {
                throw new GoldFinchException.BadModel(source + ": missing tensor " + e.getKey() + " (expected shape "
                        + Arrays.toString(e.getValue()) + ")");
            }
            if (!Arrays.equals(t.shape(), e.getValue())) {
                throw new GoldFinchException.BadModel(source + ": tensor " + e.getKey() + " has shape "
                        + t.shapeString() + ", expected " + Arrays.toString(e.getValue()));
            }
            switch (t.dtype()) {
                case F32, BF16, F16 -> {}
                case I8 -> {
                    // Q8_0 as written by `convert --quantize q8_0`: the bytes, and F16 scales beside them.
                    Tensor scales = tensors.get(e.getKey() + ModelWeights.Q8_SCALE_SUFFIX);
                    long[] s = t.shape();
                    if (!ModelWeights.isQuantizable(e.getKey(), s)
                            || scales == null
                            || scales.dtype() != DType.F16
                            || !Arrays.equals(scales.shape(), new long[] {s[0], s[1] / Q8Matrix.BLOCK})) {
                        throw new GoldFinchException.BadModel(source + ": tensor " + e.getKey()
                                + " is I8 (Q8_0) without F16 scales " + e.getKey() + ModelWeights.Q8_SCALE_SUFFIX
                                + " of shape [" + s[0] + ", " + s[1] / Q8Matrix.BLOCK + "]");
                    }
                }
                default ->
                    throw new GoldFinchException.BadModel(source + ": tensor " + e.getKey() + " has type " + t.dtype()
                            + " (F32, BF16, F16, or I8 with Q8_0 scales expected)");
            }
        }
        for (String name : tensors.keySet()) {
            String scaled = name.endsWith(ModelWeights.Q8_SCALE_SUFFIX)
                    ? name.substring(0, name.length() - ModelWeights.Q8_SCALE_SUFFIX.length())
                    : null;
            boolean scaleOfQ8 = scaled != null
                    && tensors.containsKey(scaled)
                    && tensors.get(scaled).dtype() == DType.I8;
            if (!expected.containsKey(name) && !scaleOfQ8) {
                throw new GoldFinchException.BadModel(source + ": unexpected tensor " + name + " for a "
                        + config.architecture().displayName() + " model of " + config.nLayer() + " layers");
            }
        }
    }

    /** The reference's config.json field names; only the fields present are compared. */
    static void checkConfigJson(ModelConfig config, Path file) {
        JsonNode json;
        try {
            json = JSON.readTree(file.toFile());
        } catch (JacksonException e) {
            throw new GoldFinchException.BadModel(file + ": not valid JSON: " + e.getOriginalMessage());
        }
        agree(file, json, "n_layer", config.nLayer());
        agree(file, json, "n_embd", config.nEmbd());
        agree(file, json, "dim_att", config.dimAtt());
        agree(file, json, "dim_ffn", config.dimFfn());
        agree(file, json, "head_size", config.headSize());
        agree(file, json, "vocab_size", config.vocabSize());
        if (json.has("tmix")
                && !json.get("tmix").asString().equals(config.architecture().tmix())) {
            throw disagree(
                    file,
                    "tmix",
                    json.get("tmix").asString(),
                    config.architecture().tmix());
        }
        String tmix2 = json.path("tmix2").asString("");
        if (json.has("tmix2") && !tmix2.equals(config.architecture().tmix2())) {
            throw disagree(file, "tmix2", tmix2, config.architecture().tmix2());
        }
        if (config.architecture().hasGold()) {
            agree(file, json, "gold_first_layer", config.finchLayers());
            agree(file, json, "compressed_kcache_dim", config.compressedDim());
            if (json.has("inv_other_layer_ratio")) {
                int r = json.get("inv_other_layer_ratio").asInt();
                int finch = r > 0 ? (int) (config.nLayer() * (r - 1) / (double) r) : -1;
                if (finch != config.finchLayers()) {
                    throw disagree(
                            file,
                            "inv_other_layer_ratio",
                            r + " (" + finch + " Finch layers)",
                            config.finchLayers() + " Finch layers");
                }
            }
        }
    }

    private static void agree(Path file, JsonNode json, String field, int actual) {
        if (json.has(field) && !json.get(field).isNull() && json.get(field).asLong() != actual) {
            throw disagree(file, field, json.get(field).asString(), String.valueOf(actual));
        }
    }

    private static GoldFinchException.BadModel disagree(Path file, String field, String said, String actual) {
        return new GoldFinchException.BadModel(
                file + " says " + field + "=" + said + " but the weights have " + actual);
    }

    /** The config.json written next to converted weights, in the reference's field names. */
    public static String configJson(ModelConfig c) {
        var node = JSON.createObjectNode();
        node.put("tmix", c.architecture().tmix());
        node.put("tmix2", c.architecture().tmix2());
        node.put(
                "cmix",
                c.architecture().isEagle() || c.architecture() == Architecture.RWKV7
                        ? c.architecture().tmix()
                        : "x060");
        node.put("n_layer", c.nLayer());
        node.put("n_embd", c.nEmbd());
        node.put("dim_att", c.dimAtt());
        node.put("dim_ffn", c.dimFfn());
        node.put("head_size", c.headSize());
        node.put("vocab_size", c.vocabSize());
        if (c.architecture().hasGold()) {
            node.put("gold_first_layer", c.finchLayers());
            node.put("compressed_kcache_dim", c.compressedDim());
        }
        return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(node);
    }
}
