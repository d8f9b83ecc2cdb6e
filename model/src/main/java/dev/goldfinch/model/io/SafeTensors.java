package dev.goldfinch.model.io;

import dev.goldfinch.model.GoldFinchException;
import dev.goldfinch.model.tensor.DType;
import dev.goldfinch.model.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

/**
 * A safetensors file, memory-mapped: tensors are slices of the mapping, nothing is copied to the heap.
 * Format: 8-byte little-endian header length, a JSON header, then raw little-endian data whose offsets
 * the header gives relative to the end of the header. Every offset is checked against the file.
 */
public final class SafeTensors implements AutoCloseable {
    /** Headers beyond this are refused before they are read (the reference implementation uses 100 MB). */
    private static final long MAX_HEADER_BYTES = 100L << 20;

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path path;
    private final Arena arena;
    private final Map<String, Tensor> tensors;
    private final Map<String, String> metadata;

    private SafeTensors(Path path, Arena arena, Map<String, Tensor> tensors, Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    @SuppressWarnings("restricted") // an empty file maps to NULL resized to 0 bytes: nothing is ever read through it
    public static SafeTensors open(Path path) {
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = channel.size();
            MemorySegment file = size == 0
                    ? MemorySegment.NULL.reinterpret(0)
                    : channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            return parse(path, arena, file);
        } catch (IOException e) {
            arena.close();
            throw new GoldFinchException.BadModel("cannot read " + path + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /** Parses a mapped (or, in tests, heap) file; {@code path} only names it in errors. */
    static SafeTensors parse(Path path, Arena arena, MemorySegment file) {
        long size = file.byteSize();
        if (size < 8) {
            throw bad(path, "file is " + size + " bytes, shorter than the 8-byte header length");
        }
        long headerLength = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (headerLength < 2 || headerLength > MAX_HEADER_BYTES || 8 + headerLength > size) {
            throw bad(
                    path,
                    "header length " + headerLength + " does not fit a file of " + size
                            + " bytes (truncated or not safetensors)");
        }
        byte[] headerBytes = file.asSlice(8, headerLength).toArray(ValueLayout.JAVA_BYTE);
        JsonNode header;
        try {
            header = JSON.readTree(new String(headerBytes, StandardCharsets.UTF_8).strip());
        } catch (JacksonException e) {
            throw bad(path, "header is not valid JSON: " + e.getOriginalMessage());
        }
        if (header == null || !header.isObject()) {
            throw bad(path, "header is not a JSON object");
        }
        long dataStart = 8 + headerLength;
        long dataSize = size - dataStart;
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> field : header.properties()) {
            String name = field.getKey();
            JsonNode info = field.getValue();
            if (name.equals("__metadata__")) {
                if (!info.isObject()) {
                    throw bad(path, "__metadata__ is not an object");
                }
                for (Map.Entry<String, JsonNode> e : info.properties()) {
                    if (!e.getValue().isString()) {
                        throw bad(path, "metadata " + e.getKey() + " is not a string");
                    }
                    metadata.put(e.getKey(), e.getValue().asString());
                }
                continue;
            }
            if (!info.isObject() || !info.path("dtype").isString()) {
                throw bad(path, "tensor " + name + " is not an object with a dtype");
            }
            DType dtype = DType.parse(info.path("dtype").asString());
            if (dtype == null) {
                throw bad(path, "tensor " + name + " has unsupported dtype " + info.path("dtype"));
            }
            JsonNode shapeNode = info.path("shape");
            JsonNode offsets = info.path("data_offsets");
            if (!shapeNode.isArray() || !offsets.isArray() || offsets.size() != 2) {
                throw bad(path, "tensor " + name + " lacks shape or data_offsets");
            }
            long[] shape = new long[shapeNode.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = nonNegativeLong(shapeNode.get(i));
                if (shape[i] < 0) {
                    throw bad(path, "tensor " + name + " has a dimension that is not a non-negative integer");
                }
            }
            long begin = nonNegativeLong(offsets.get(0));
            long end = nonNegativeLong(offsets.get(1));
            long expected;
            try {
                expected = Math.multiplyExact(Tensor.numel(shape), dtype.bytes());
            } catch (ArithmeticException e) {
                throw bad(path, "tensor " + name + " shape overflows");
            }
            if (begin < 0 || end < begin || end > dataSize) {
                throw bad(
                        path,
                        "tensor " + name + " data [" + begin + ", " + end + ") lies outside the " + dataSize
                                + " data bytes (truncated file?)");
            }
            if (end - begin != expected) {
                throw bad(
                        path,
                        "tensor " + name + " holds " + (end - begin) + " bytes but shape "
                                + java.util.Arrays.toString(shape) + " of " + dtype + " needs " + expected);
            }
            tensors.put(name, new Tensor(name, dtype, shape, file.asSlice(dataStart + begin, expected)));
        }
        return new SafeTensors(
                path, arena, Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(metadata));
    }

    /** The value of a JSON integer that fits a non-negative long; -1 for anything else (text, 1.5, 2^64, -3). */
    private static long nonNegativeLong(JsonNode n) {
        return n.isIntegralNumber() && n.canConvertToLong() && n.longValue() >= 0 ? n.longValue() : -1;
    }

    private static GoldFinchException.BadModel bad(Path path, String what) {
        return new GoldFinchException.BadModel(path + ": " + what);
    }

    public Path path() {
        return path;
    }

    public Map<String, Tensor> tensors() {
        return tensors;
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    public Tensor get(String name) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new GoldFinchException.BadModel(path + ": missing tensor " + name);
        }
        return t;
    }

    /** Unmaps the file; tensors obtained from it must not be used afterwards. */
    @Override
    public void close() {
        arena.close();
    }

    /** True when the path looks like a safetensors file (for directory scans). */
    public static boolean isSafeTensors(Path p) {
        return Files.isRegularFile(p) && p.getFileName().toString().endsWith(".safetensors");
    }
}
