package dev.goldfinch.service;

import dev.goldfinch.model.GoldFinchModel;
import dev.goldfinch.model.WeightFormat;
import dev.goldfinch.model.state.KvFormat;
import java.nio.file.Path;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * {@code goldfinch.model.*}: which model a prefill or decode replica serves. Exactly one of {@code path}
 * (safetensors file or directory) and {@code shape} (random weights of a named shape, seeded by
 * {@code seed}, stored as {@code dtype}) is set. Every replica of a mesh must serve the same model: the
 * fingerprint in every cache key makes a mismatch a miss, never a wrong answer.
 *
 * @param name            the model id clients name (OpenAI's {@code model})
 * @param quantize        {@code none} or {@code q8_0}: how the matrices are held in memory
 * @param maxPromptTokens longest prompt accepted (tokens)
 * @param maxTokensCap    largest {@code max_tokens} accepted
 * @param kvFormat        how live sequences hold their GOLD keys and values: {@code f32} (default), {@code bf16}
 *                        or {@code int8} (see {@link KvFormat})
 */
@ConfigurationProperties("goldfinch.model")
public record ModelProperties(
        String name,
        String path,
        String shape,
        Long seed,
        String dtype,
        String quantize,
        Integer maxPromptTokens,
        Integer maxTokensCap,
        String kvFormat) {
    public ModelProperties {
        name = name == null || name.isBlank() ? "goldfinch" : name;
        seed = seed == null ? 42L : seed;
        dtype = dtype == null ? "f32" : dtype;
        maxPromptTokens = maxPromptTokens == null ? 16384 : maxPromptTokens;
        maxTokensCap = maxTokensCap == null ? 4096 : maxTokensCap;
        kvFormat = KvFormat.parse(kvFormat).label();
    }

    /** The model, holding live K/V in {@link #kvFormat}. */
    public GoldFinchModel load() {
        return source().load().kvFormat(KvFormat.parse(kvFormat));
    }

    public ModelSource source() {
        return new ModelSource(
                path == null || path.isBlank() ? null : Path.of(path),
                shape,
                seed,
                dtype,
                WeightFormat.parse(quantize));
    }
}
