package dev.goldfinch.model.tensor;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/** bf16 is the top half of an f32: widen the shorts to ints, shift them up 16 bits, reinterpret. */
final class BF16Matrix extends PlainMatrix {
    BF16Matrix(int rows, int cols, MemorySegment data) {
        super(rows, cols, 2, data);
    }

    @Override
    FloatVector vec(long panelStart, int j) {
        ShortVector halves =
                ShortVector.fromMemorySegment(HALVES, data, panelStart + (long) j * PANEL * 2, ByteOrder.LITTLE_ENDIAN);
        return ((IntVector) halves.convertShape(VectorOperators.S2I, INTS, 0))
                .lanewise(VectorOperators.LSHL, 16)
                .reinterpretAsFloats();
    }

    @Override
    float raw(int row, int col) {
        return Floats.bf16ToFloat(data.get(I16_LE, offset(row, col, 2)));
    }
}
