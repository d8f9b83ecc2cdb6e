package dev.goldfinch.model;

import dev.goldfinch.model.io.SafeTensorsWriter;
import dev.goldfinch.model.io.TorchCheckpoint;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * {@code goldfinch convert}: a released PyTorch checkpoint to {@code model.safetensors} +
 * {@code config.json}. Tensors keep their stored type (bf16 in the releases), so the conversion is
 * bit-exact; the tensor set is validated exactly as a load would, before anything is written.
 */
public final class ModelConverter {
    public static final String WEIGHTS_FILE = "model.safetensors";

    private ModelConverter() {
    }

    public static ModelConfig convert(Path checkpoint, Path outDir, SafeTensorsWriter.ProgressListener progress) throws IOException {
        try (TorchCheckpoint ckpt = TorchCheckpoint.open(checkpoint)) {
            ModelConfig config = ModelLoader.inferConfig(ckpt.tensors(), checkpoint.toString());
            ModelLoader.validate(config, ckpt.tensors(), checkpoint.toString());
            Files.createDirectories(outDir);
            SafeTensorsWriter.write(outDir.resolve(WEIGHTS_FILE), ckpt.tensors(),
                    Map.of("format", "pt", "source", checkpoint.getFileName().toString(), "architecture", config.architecture().displayName()),
                    progress);
            Files.writeString(outDir.resolve("config.json"), ModelLoader.configJson(config));
            return config;
        }
    }
}
