package dev.goldfinch.bench;

import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tensor.Floats;
import dev.goldfinch.model.tensor.Kernels;
import dev.goldfinch.model.tensor.Matrix;
import dev.goldfinch.model.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The matrix kernels on a 2688×768 matrix (L12-D768's channel-mix key), per weight format, for one input
 * (decode: bandwidth-bound) and 64 inputs (prefill: compute-bound), tiled and untiled ({@code
 * reference} is one dot per output: the same bits, slower).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
        value = 1,
        jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class KernelBenchmark {
    @Param({"f32", "bf16", "q8_0"})
    String format;

    @Param({"1", "64"})
    int inputs;

    static final int ROWS = 2688;
    static final int COLS = 768;

    Matrix matrix;
    float[] x;
    float[] y;

    @Setup
    public void setUp() {
        Random random = new Random(1);
        float[] w = new float[ROWS * COLS];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) random.nextGaussian();
        }
        Matrix f32 = Matrix.ofFloats(ROWS, COLS, w);
        matrix = switch (format) {
            case "bf16" -> {
                MemorySegment bf = Arena.ofAuto().allocate(w.length * 2L, 64);
                for (int i = 0; i < w.length; i++) {
                    bf.set(
                            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN),
                            i * 2L,
                            Floats.floatToBf16(w[i]));
                }
                yield Matrix.of(new Tensor("w", DType.BF16, new long[] {ROWS, COLS}, bf));
            }
            case "q8_0" -> Matrix.quantizeQ8(f32);
            default -> f32;
        };
        x = new float[inputs * COLS];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextGaussian();
        }
        y = new float[inputs * ROWS];
    }

    /** The kernel on the calling thread. */
    @Benchmark
    public float[] tiledOneThread() {
        matrix.matmulRows(x, inputs, y, 0, ROWS);
        return y;
    }

    @Benchmark
    public float[] referenceOneThread() {
        matrix.matmulRowsScalarOrder(x, inputs, y, 0, ROWS);
        return y;
    }

    /** The engine's entry point: panels split across the engine's gang of threads. */
    @Benchmark
    public float[] tiledAllCores() {
        Kernels.matmul(matrix, x, inputs, y);
        return y;
    }
}
