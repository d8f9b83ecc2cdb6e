package dev.goldfinch.model.io;

import dev.goldfinch.model.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.TreeMap;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.node.ObjectNode;

/**
 * Writes standard safetensors: keys sorted, header space-padded to a multiple of 8, data streamed
 * from each tensor's memory in bounded chunks (a 3 GB model never sits on the heap). The file is
 * written beside its destination and moved into place, so a crash never leaves half a model.
 */
public final class SafeTensorsWriter {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long CHUNK = 8L << 20;

    /** Bytes written so far out of the total; called from the writing thread. */
    @FunctionalInterface
    public interface ProgressListener {
        void progress(long bytesDone, long bytesTotal);
    }

    private SafeTensorsWriter() {}

    public static void write(
            Path out, Map<String, Tensor> tensors, Map<String, String> metadata, ProgressListener progress)
            throws IOException {
        Map<String, Tensor> sorted = new TreeMap<>(tensors);
        ObjectNode header = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            new TreeMap<>(metadata).forEach(meta::put);
        }
        long offset = 0;
        for (Tensor t : sorted.values()) {
            ObjectNode info = header.putObject(t.name());
            info.put("dtype", t.dtype().name());
            var shape = info.putArray("shape");
            for (long d : t.shape()) {
                shape.add(d);
            }
            long size = t.data().byteSize();
            info.putArray("data_offsets").add(offset).add(offset + size);
            offset += size;
        }
        byte[] json = JSON.writeValueAsBytes(header);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        head.flip();
        long total = offset;
        Path tmp = out.resolveSibling(out.getFileName() + ".partial");
        try (FileChannel ch = FileChannel.open(
                tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
            writeFully(ch, head);
            long done = 0;
            // One bounded staging buffer: works for mapped, off-heap and heap tensors of any element type.
            byte[] staging = new byte[(int) Math.min(CHUNK, Math.max(1, total))];
            MemorySegment stagingSegment = MemorySegment.ofArray(staging);
            for (Tensor t : sorted.values()) {
                long size = t.data().byteSize();
                for (long pos = 0; pos < size; pos += staging.length) {
                    int n = (int) Math.min(staging.length, size - pos);
                    MemorySegment.copy(t.data(), pos, stagingSegment, 0, n);
                    writeFully(ch, ByteBuffer.wrap(staging, 0, n));
                    done += n;
                    progress.progress(done, total);
                }
            }
            ch.force(true);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }
}
