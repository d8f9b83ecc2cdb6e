package dev.goldfinch.model.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.fuzz.FuzzRun;
import dev.goldfinch.model.fuzz.Mutator;
import dev.goldfinch.model.tensor.Tensor;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;

/**
 * Weights files from someone else: mutated safetensors and {@code torch.save} archives go through the
 * same parse the loader runs on a mapped file (here a heap segment, so no temp files). Each may only
 * fail with {@link GoldFinchException.BadModel} that the parser raised itself — the reader's safety
 * net, which wraps an unexpected exception into BadModel, counts as a crash. Every tensor accepted
 * lies inside the file.
 */
class ParserFuzzTest {
    private static final Set<Class<? extends Throwable>> TYPED = Set.of(GoldFinchException.BadModel.class);

    @Test
    void safetensorsHeadersParseOrFailTyped() {
        List<byte[]> corpus = FuzzRun.corpus("safetensors");
        var result = FuzzRun.run(
                "safetensors",
                corpus,
                (m, seed) -> m.random().nextBoolean() ? m.mutate(seed) : mutateHeader(m, seed),
                input -> {
                    Arena arena = Arena.ofConfined();
                    MemorySegment file = MemorySegment.ofArray(input);
                    try (SafeTensors st = SafeTensors.parse(Path.of("fuzz.safetensors"), arena, file)) {
                        for (Tensor t : st.tensors().values()) {
                            assertInside(file, t);
                        }
                    } finally {
                        if (arena.scope().isAlive()) {
                            arena.close();
                        }
                    }
                },
                TYPED,
                // the header is copied and parsed into a tree: a small multiple of the input
                input -> 64L * input.length + (1 << 20));
        assertEquals(FuzzRun.validSeeds(result.target()), result.seedsAccepted(), "the valid seeds parse");
    }

    @Test
    void torchCheckpointsReadOrFailTyped() {
        List<byte[]> corpus = FuzzRun.corpus("torch-checkpoint");
        var result = FuzzRun.run(
                "torch-checkpoint",
                corpus,
                (m, seed) -> m.random().nextBoolean() ? m.mutate(seed) : mutateEntries(m, seed),
                input -> {
                    MemorySegment file = MemorySegment.ofArray(input);
                    try (TorchCheckpoint c = TorchCheckpoint.read(Path.of("fuzz.pth"), Arena.ofConfined(), file)) {
                        for (Tensor t : c.tensors().values()) {
                            assertInside(file, t);
                        }
                    } catch (GoldFinchException.BadModel e) {
                        assertEquals(null, e.getCause(), () -> "the safety net caught " + e.getCause());
                        throw e;
                    }
                },
                TYPED,
                input -> 64L * input.length + (1 << 20));
        assertEquals(FuzzRun.validSeeds(result.target()), result.seedsAccepted(), "the valid seeds read");
    }

    /** Mutates the JSON header only and keeps its length prefix right, so the mutation reaches the parser. */
    static byte[] mutateHeader(Mutator m, byte[] file) {
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        long n = file.length >= 8 ? b.getLong(0) : -1;
        if (n < 0 || n > file.length - 8) {
            return m.mutate(file);
        }
        byte[] header = m.mutate(Arrays.copyOfRange(file, 8, 8 + (int) n));
        ByteBuffer out = ByteBuffer.allocate(8 + header.length + file.length - 8 - (int) n)
                .order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(header.length).put(header).put(file, 8 + (int) n, file.length - 8 - (int) n);
        return out.array();
    }

    /** Mutates one entry of the archive (mostly the pickle) and writes a well-formed zip around it. */
    static byte[] mutateEntries(Mutator m, byte[] archive) {
        Map<String, byte[]> entries = new LinkedHashMap<>();
        try (ZipInputStream in = new ZipInputStream(new ByteArrayInputStream(archive))) {
            for (ZipEntry e; (e = in.getNextEntry()) != null; ) {
                entries.put(e.getName(), in.readAllBytes());
            }
        } catch (IOException | RuntimeException e) {
            return m.mutate(archive);
        }
        if (entries.isEmpty()) {
            return m.mutate(archive);
        }
        List<String> names = List.copyOf(entries.keySet());
        String victim = m.random().nextInt(4) != 0
                ? names.stream().filter(n -> n.endsWith("data.pkl")).findFirst().orElse(names.getFirst())
                : names.get(m.random().nextInt(names.size()));
        entries.put(victim, m.mutate(entries.get(victim)));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (ZipOutputStream z = new ZipOutputStream(out)) {
            for (var e : entries.entrySet()) {
                ZipEntry ze = new ZipEntry(e.getKey());
                ze.setMethod(ZipEntry.STORED);
                ze.setSize(e.getValue().length);
                CRC32 crc = new CRC32();
                crc.update(e.getValue());
                ze.setCrc(crc.getValue());
                z.putNextEntry(ze);
                z.write(e.getValue());
                z.closeEntry();
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    private static void assertInside(MemorySegment file, Tensor t) {
        long offset = t.data().address() - file.address();
        long bytes = Math.multiplyExact(t.numel(), t.dtype().bytes());
        assertTrue(
                offset >= 0 && bytes == t.data().byteSize() && offset + bytes <= file.byteSize(),
                t.name() + " at " + offset + " + " + bytes + " outside " + file.byteSize());
    }
}
