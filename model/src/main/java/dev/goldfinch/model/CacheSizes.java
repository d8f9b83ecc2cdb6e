package dev.goldfinch.model;

/**
 * What a sequence's cache costs (spec §5): a fixed recurrent part, and per token its id plus one
 * compressed key; next to what a transformer of the same width and depth stores per token (K and V
 * in every layer). 16-bit floats and int32 ids unless named f32.
 */
public record CacheSizes(
        long fixedBytes,
        long bytesPerToken,
        long fixedBytesF32,
        long bytesPerTokenF32,
        long transformerKvBytesPerToken) {
    public static final int ID_BYTES = 4;

    public static CacheSizes of(ModelConfig c) {
        long fixedValues = (long) c.finchLayers() * (2L * c.nEmbd() + (long) c.nHead() * c.headSize() * c.headSize())
                + (long) c.goldLayers() * 2L * c.nEmbd();
        return new CacheSizes(
                fixedValues * 2,
                ID_BYTES + 2L * c.compressedDim(),
                fixedValues * 4,
                ID_BYTES + 4L * c.compressedDim(),
                2L * c.nEmbd() * c.nLayer() * 2);
    }

    /** Transformer KV bytes per token over ours; the paper's 756–2550× claim. */
    public double compressionRatio() {
        return (double) transformerKvBytesPerToken / bytesPerToken;
    }
}
