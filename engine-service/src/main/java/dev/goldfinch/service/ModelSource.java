package dev.goldfinch.service;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.ModelLoader;
import dev.goldfinch.model.ModelShapes;
import dev.goldfinch.model.RandomWeights;
import dev.goldfinch.model.WeightFormat;
import dev.goldfinch.model.tensor.DType;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Where a model comes from: a file, or random weights of a shape. {@link #load()} keeps one instance per
 * source in the JVM, so services that share a JVM ({@code goldfinch serve}, the end-to-end tests) share
 * the weights instead of holding one copy per replica. Models stay loaded for the JVM's life.
 */
public record ModelSource(Path path, String shape, long seed, String dtype, WeightFormat format) {
    private static final Map<ModelSource, GoldFinchModel> LOADED = new ConcurrentHashMap<>();

    public ModelSource {
        if ((path == null) == (shape == null || shape.isBlank())) {
            throw new GoldFinchException.InvalidInput(
                    "set exactly one of goldfinch.model.path and goldfinch.model.shape");
        }
    }

    public GoldFinchModel load() {
        return LOADED.computeIfAbsent(this, ModelSource::open);
    }

    private GoldFinchModel open() {
        if (path != null) {
            return ModelLoader.load(path, format);
        }
        DType type = switch (dtype.toLowerCase(Locale.ROOT)) {
            case "f32" -> DType.F32;
            case "bf16" -> DType.BF16;
            default -> throw new GoldFinchException.InvalidInput("dtype must be f32 or bf16, got " + dtype);
        };
        return RandomWeights.model(ModelShapes.parse(shape), seed, type, format);
    }
}
