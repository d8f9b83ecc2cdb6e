package dev.goldfinch.model.state;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.ModelConfig;
import dev.goldfinch.model.io.SafeTensors;
import dev.goldfinch.model.io.TorchCheckpoint;
import dev.goldfinch.model.tensor.Tensor;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Initial states a request may start from instead of the zero state: a state-tuning file (RWKV's
 * {@code blocks.N.att.time_state} tensors, {@code .pth} or {@code .safetensors}) or a state saved in the
 * {@link StateCodec} format (as {@code goldfinch state save} writes one).
 *
 * <p>A {@code time_state} tensor sets only the WKV state of its layer's time-mix; both token shifts stay zero, as
 * in the trainer that produced it. It is stored {@code [head][value][key]} (RWKV-LM's kernels; the rwkv pip package
 * transposes it on load), so it is transposed into this engine's {@code [head][key][value]}. A saved state of a
 * GoldFinch model keeps its tokens and the compressed key of each (the GOLD layers attend over them); one of a pure
 * recurrent model keeps only the recurrent state, at position 0.
 */
public final class InitialStates {
    private static final Pattern TIME_STATE = Pattern.compile("blocks\\.(\\d+)\\.att\\.time_state");
    private static final byte[] CODEC_MAGIC = {'G', 'F', 'S', 'T'};

    private InitialStates() {}

    /** Reads {@code file}: a serialized state (by its magic), a {@code .safetensors} file, or else a {@code .pth}. */
    public static SequenceState load(Path file, ModelConfig config, long modelFingerprint) {
        if (!Files.isRegularFile(file)) {
            throw new GoldFinchException.BadModel("initial state file " + file + " does not exist");
        }
        try {
            if (startsWithCodecMagic(file)) {
                return StateCodec.decode(Files.readAllBytes(file), config, modelFingerprint);
            }
        } catch (IOException e) {
            throw new GoldFinchException.BadModel("cannot read initial state file " + file + ": " + e.getMessage(), e);
        }
        if (SafeTensors.isSafeTensors(file)) {
            try (SafeTensors st = SafeTensors.open(file)) {
                return fromTimeState(st.tensors(), config, modelFingerprint, file.toString());
            }
        }
        try (TorchCheckpoint pth = TorchCheckpoint.open(file)) {
            return fromTimeState(pth.tensors(), config, modelFingerprint, file.toString());
        }
    }

    private static boolean startsWithCodecMagic(Path file) throws IOException {
        try (InputStream in = Files.newInputStream(file)) {
            return Arrays.equals(in.readNBytes(CODEC_MAGIC.length), CODEC_MAGIC);
        }
    }

    /**
     * The state whose recurrent layer {@code N}'s WKV matrix is {@code blocks.N.att.time_state} ({@code [H, N, N]});
     * every recurrent layer needs one, and no other layer may have one. Other tensors are ignored (a state-tuning
     * checkpoint may carry the whole model).
     */
    public static SequenceState fromTimeState(
            Map<String, Tensor> tensors, ModelConfig config, long modelFingerprint, String source) {
        int heads = config.nHead();
        int n = config.headSize();
        TreeSet<Integer> layers = new TreeSet<>();
        for (String name : tensors.keySet()) {
            Matcher m = TIME_STATE.matcher(name);
            if (m.matches()) {
                layers.add(Integer.parseInt(m.group(1)));
            }
        }
        if (layers.isEmpty()) {
            throw new GoldFinchException.BadModel(source
                    + " holds no blocks.N.att.time_state tensor (neither a state-tuning file nor a saved state)");
        }
        SequenceState state = new SequenceState(config, modelFingerprint);
        for (int layer : layers) {
            if (layer >= config.finchLayers()) {
                throw new GoldFinchException.BadModel(source + ": blocks." + layer + ".att.time_state, but "
                        + (layer < config.nLayer()
                                ? "layer " + layer + " is a GOLD layer without a WKV state"
                                : "the model has " + config.nLayer() + " layers"));
            }
        }
        for (int layer = 0; layer < config.finchLayers(); layer++) {
            String name = "blocks." + layer + ".att.time_state";
            Tensor t = tensors.get(name);
            if (t == null) {
                throw new GoldFinchException.BadModel(source + " lacks " + name + " (every recurrent layer needs one)");
            }
            long[] shape = t.shape();
            if (!Arrays.equals(shape, new long[] {heads, n, n})) {
                throw new GoldFinchException.BadModel(source + ": " + name + " has shape " + t.shapeString()
                        + ", expected [" + heads + ", " + n + ", " + n + "] (heads, head size, head size)");
            }
            float[] values = t.toFloats();
            float[] wkv = state.wkv(layer);
            for (int h = 0; h < heads; h++) {
                int base = h * n * n;
                for (int value = 0; value < n; value++) {
                    for (int key = 0; key < n; key++) {
                        wkv[base + key * n + value] = values[base + value * n + key];
                    }
                }
            }
        }
        return state;
    }

    /**
     * What {@code goldfinch state save} writes for {@code prefilled}: the whole state for a model with GOLD layers
     * (their compressed keys are part of it), else the recurrent state alone at position 0.
     */
    public static byte[] encodeForSaving(SequenceState prefilled) {
        return StateCodec.encode(recurrentOnlyIfPossible(prefilled), StateCodec.FloatType.F32, 0);
    }

    /** {@code s} itself when its model has GOLD layers; else a copy of its recurrent state with no positions. */
    public static SequenceState recurrentOnlyIfPossible(SequenceState s) {
        ModelConfig c = s.config();
        if (c.compressedDim() > 0) {
            return s;
        }
        SequenceState r = new SequenceState(c, s.modelFingerprint());
        for (int l = 0; l < c.nLayer(); l++) {
            System.arraycopy(s.attShift(l), 0, r.attShift(l), 0, c.nEmbd());
            System.arraycopy(s.ffnShift(l), 0, r.ffnShift(l), 0, c.nEmbd());
        }
        for (int l = 0; l < c.finchLayers(); l++) {
            System.arraycopy(s.wkv(l), 0, r.wkv(l), 0, s.wkv(l).length);
        }
        return r;
    }
}
