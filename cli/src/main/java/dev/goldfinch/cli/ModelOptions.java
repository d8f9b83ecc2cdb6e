package dev.goldfinch.cli;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.ModelConfig;
import dev.goldfinch.model.ModelLoader;
import dev.goldfinch.model.ModelShapes;
import dev.goldfinch.model.RandomWeights;
import dev.goldfinch.model.WeightFormat;
import dev.goldfinch.model.state.KvFormat;
import dev.goldfinch.model.tensor.DType;
import java.nio.file.Path;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Option;

/** {@code --model PATH} or {@code --shape NAME [--seed N] [--dtype f32|bf16]}: where every command gets its model. */
final class ModelOptions {
    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static final class Source {
        @Option(
                names = "--model",
                paramLabel = "PATH",
                description =
                        "A .safetensors file (a config.json beside it is checked), a directory holding one, or an rwkv.cpp model file (.bin: FP32, FP16 or Q8_0).")
        Path model;

        @Option(
                names = "--shape",
                paramLabel = "NAME",
                description =
                        "Random weights of a named shape instead: L24-D2048, L12-D768, finch-L12-D768, or layers=..,width=..,head=..,vocab=..[,arch=..].")
        String shape;
    }

    @Option(
            names = "--seed",
            defaultValue = "42",
            description = "Seed of the random weights of --shape (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(
            names = "--dtype",
            defaultValue = "f32",
            description = "Storage of the random weights of --shape: f32 or bf16 (default: ${DEFAULT-VALUE}).")
    String dtype;

    @Option(
            names = "--quantize",
            defaultValue = "none",
            description = "Hold the matrices in memory as: none or q8_0 (default: ${DEFAULT-VALUE}).")
    String quantize;

    @Option(
            names = "--kv-format",
            defaultValue = "f32",
            description =
                    "How live sequences hold their GOLD keys and values: f32, bf16 (half the bytes) or int8 (a quarter,"
                            + " with a scale per head-row) (default: ${DEFAULT-VALUE}).")
    String kvFormat;

    GoldFinchModel load() {
        return loadWeights().kvFormat(KvFormat.parse(kvFormat));
    }

    private GoldFinchModel loadWeights() {
        WeightFormat format = WeightFormat.parse(quantize);
        if (source.model != null) {
            return ModelLoader.load(source.model, format);
        }
        DType type = switch (dtype.toLowerCase(java.util.Locale.ROOT)) {
            case "f32" -> DType.F32;
            case "bf16" -> DType.BF16;
            default -> throw new GoldFinchException.InvalidInput("--dtype must be f32 or bf16, got " + dtype);
        };
        return RandomWeights.model(ModelShapes.parse(source.shape), seed, type, format);
    }

    /** The config alone, without generating weights for a shape. */
    ModelConfig config() {
        if (source.shape != null) {
            return ModelShapes.parse(source.shape);
        }
        try (GoldFinchModel m = load()) {
            return m.config();
        }
    }
}
