package dev.goldfinch.model;

import dev.goldfinch.model.io.SafeTensorsWriter;
import dev.goldfinch.model.io.TorchCheckpoint;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tensor.Matrix;
import dev.goldfinch.model.tensor.Q8Matrix;
import dev.goldfinch.model.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code goldfinch convert}: a released PyTorch checkpoint to {@code model.safetensors} +
 * {@code config.json}. Tensors keep their stored type (bf16 in the releases), so the conversion is
 * bit-exact; the tensor set is validated exactly as a load would, before anything is written.
 */
public final class ModelConverter {
    public static final String WEIGHTS_FILE = "model.safetensors";

    private ModelConverter() {}

    public static ModelConfig convert(Path checkpoint, Path outDir, SafeTensorsWriter.ProgressListener progress)
            throws IOException {
        return convert(checkpoint, outDir, WeightFormat.AS_STORED, progress);
    }

    /**
     * As {@link #convert(Path, Path, SafeTensorsWriter.ProgressListener)}; with {@link WeightFormat#Q8_0} every
     * quantizable matrix is written as Q8_0 — its bytes (I8) and block scales (F16, {@code <name>.q8_0_scale}) — with
     * the same quantizer as a load with {@code --quantize q8_0}, so both give the same model, bit for bit.
     */
    public static ModelConfig convert(
            Path checkpoint, Path outDir, WeightFormat format, SafeTensorsWriter.ProgressListener progress)
            throws IOException {
        try (TorchCheckpoint ckpt = TorchCheckpoint.open(checkpoint);
                Arena arena = Arena.ofConfined()) {
            ModelConfig config = ModelLoader.inferConfig(ckpt.tensors(), checkpoint.toString());
            ModelLoader.validate(config, ckpt.tensors(), checkpoint.toString());
            Files.createDirectories(outDir);
            Map<String, Tensor> out = format == WeightFormat.Q8_0 ? quantized(ckpt.tensors(), arena) : ckpt.tensors();
            Map<String, String> metadata = new LinkedHashMap<>(Map.of(
                    "format",
                    "pt",
                    "source",
                    checkpoint.getFileName().toString(),
                    "architecture",
                    config.architecture().displayName()));
            if (format == WeightFormat.Q8_0) {
                metadata.put("quantization", "q8_0");
            }
            SafeTensorsWriter.write(outDir.resolve(WEIGHTS_FILE), out, metadata, progress);
            Files.writeString(outDir.resolve("config.json"), ModelLoader.configJson(config));
            return config;
        }
    }

    private static Map<String, Tensor> quantized(Map<String, Tensor> tensors, Arena arena) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Tensor t : tensors.values()) {
            long[] shape = t.shape();
            if (!ModelWeights.isQuantizable(t.name(), shape)) {
                out.put(t.name(), t);
                continue;
            }
            int rows = Math.toIntExact(shape[0]);
            int cols = Math.toIntExact(shape[1]);
            int blocks = cols / Q8Matrix.BLOCK;
            MemorySegment bytes = arena.allocate((long) rows * cols);
            MemorySegment scales = arena.allocate((long) rows * blocks * 2);
            float[] row = new float[cols];
            byte[] block = new byte[Q8Matrix.BLOCK];
            for (int r = 0; r < rows; r++) {
                t.copyRow(r, row, 0);
                for (int b = 0; b < blocks; b++) {
                    short scale = Matrix.quantizeBlock(row, b * Q8Matrix.BLOCK, block);
                    scales.set(
                            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN),
                            ((long) r * blocks + b) * 2,
                            scale);
                    MemorySegment.copy(
                            block,
                            0,
                            bytes,
                            ValueLayout.JAVA_BYTE,
                            (long) r * cols + (long) b * Q8Matrix.BLOCK,
                            Q8Matrix.BLOCK);
                }
            }
            out.put(t.name(), new Tensor(t.name(), DType.I8, shape, bytes));
            String scaleName = t.name() + ModelWeights.Q8_SCALE_SUFFIX;
            out.put(scaleName, new Tensor(scaleName, DType.F16, new long[] {rows, blocks}, scales));
        }
        return out;
    }
}
