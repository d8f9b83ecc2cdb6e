package dev.goldfinch.model.io;

import dev.goldfinch.model.GoldFinchException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** NumPy {@code .npy} files (version 1.0, C order): float32 writing, float32/float64/int64 reading. */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    private static final Pattern DESCR = Pattern.compile("'descr':\\s*'([^']+)'");
    private static final Pattern SHAPE = Pattern.compile("'shape':\\s*\\(([^)]*)\\)");
    private static final Pattern FORTRAN = Pattern.compile("'fortran_order':\\s*(True|False)");

    private Npy() {}

    /** A loaded array: its shape and its values widened to double (exact for float32 and int up to 2^53). */
    public record Array(int[] shape, double[] values) {
        public float[] toFloats() {
            float[] f = new float[values.length];
            for (int i = 0; i < f.length; i++) {
                f[i] = (float) values[i];
            }
            return f;
        }

        public int[] toInts() {
            return Arrays.stream(values).mapToInt(v -> (int) v).toArray();
        }
    }

    public static void writeFloat32(Path path, int[] shape, float[] data) throws IOException {
        long n = 1;
        for (int d : shape) {
            n *= d;
        }
        if (n != data.length) {
            throw new IllegalArgumentException(
                    "shape " + Arrays.toString(shape) + " needs " + n + " values, got " + data.length);
        }
        StringBuilder dims = new StringBuilder();
        for (int d : shape) {
            dims.append(d).append(", ");
        }
        String dimText = shape.length == 1 ? shape[0] + "," : dims.substring(0, Math.max(0, dims.length() - 2));
        String dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dimText + "), }";
        int unpadded = MAGIC.length + 2 + 2 + dict.length() + 1;
        int pad = (64 - unpadded % 64) % 64;
        String header = dict + " ".repeat(pad) + "\n";
        ByteBuffer buf = ByteBuffer.allocate(MAGIC.length + 4 + header.length() + data.length * 4)
                .order(ByteOrder.LITTLE_ENDIAN);
        buf.put(MAGIC).put((byte) 1).put((byte) 0).putShort((short) header.length());
        buf.put(header.getBytes(StandardCharsets.US_ASCII));
        buf.asFloatBuffer().put(data);
        Files.write(path, buf.array());
    }

    public static Array read(Path path) throws IOException {
        byte[] all = Files.readAllBytes(path);
        ByteBuffer buf = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        if (all.length < 10 || !Arrays.equals(Arrays.copyOf(all, 6), MAGIC)) {
            throw new GoldFinchException.InvalidInput(path + ": not a .npy file");
        }
        int major = all[6];
        buf.position(8);
        int headerLength = major == 1 ? Short.toUnsignedInt(buf.getShort()) : buf.getInt();
        String header = new String(all, buf.position(), headerLength, StandardCharsets.ISO_8859_1);
        buf.position(buf.position() + headerLength);
        Matcher descr = DESCR.matcher(header);
        Matcher shapeM = SHAPE.matcher(header);
        Matcher fortran = FORTRAN.matcher(header);
        if (!descr.find()
                || !shapeM.find()
                || (fortran.find() && fortran.group(1).equals("True"))) {
            throw new GoldFinchException.InvalidInput(path + ": unsupported .npy header " + header.strip());
        }
        int[] shape = Arrays.stream(shapeM.group(1).split(","))
                .map(String::strip)
                .filter(s -> !s.isEmpty())
                .mapToInt(Integer::parseInt)
                .toArray();
        int n = Arrays.stream(shape).reduce(1, (a, b) -> a * b);
        double[] values = new double[n];
        switch (descr.group(1)) {
            case "<f4" -> {
                for (int i = 0; i < n; i++) values[i] = buf.getFloat();
            }
            case "<f8" -> {
                for (int i = 0; i < n; i++) values[i] = buf.getDouble();
            }
            case "<i8" -> {
                for (int i = 0; i < n; i++) values[i] = buf.getLong();
            }
            case "<i4" -> {
                for (int i = 0; i < n; i++) values[i] = buf.getInt();
            }
            default -> throw new GoldFinchException.InvalidInput(path + ": unsupported dtype " + descr.group(1));
        }
        return new Array(shape, values);
    }
}
