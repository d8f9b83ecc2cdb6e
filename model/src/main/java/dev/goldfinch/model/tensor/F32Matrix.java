package dev.goldfinch.model.tensor;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;

/** float32 weights, stored as they are. */
final class F32Matrix extends PlainMatrix {
    F32Matrix(int rows, int cols, MemorySegment data) {
        super(rows, cols, 4, data);
    }

    static F32Matrix pack(int rows, int cols, Element element) {
        MemorySegment dst = allocate((long) panels(rows) * cols * PANEL * 4);
        F32Matrix m = new F32Matrix(rows, cols, dst);
        for (int r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) {
                dst.set(F32_LE, m.offset(r, j, 4), element.at(r, j));
            }
        }
        return m;
    }

    @Override
    FloatVector vec(long panelStart, int j) {
        return FloatVector.fromMemorySegment(SPECIES, data, panelStart + (long) j * PANEL * 4, ByteOrder.LITTLE_ENDIAN);
    }

    @Override
    float raw(int row, int col) {
        return data.get(F32_LE, offset(row, col, 4));
    }
}
