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
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A PyTorch {@code torch.save} checkpoint (zip archive: {@code <name>/data.pkl} plus raw storages
 * {@code <name>/data/<key>}), read without Python. The file is memory-mapped and tensors are slices
 * of it. The pickle goes through a restricted unpickler that builds plain data and accepts only the
 * globals a state_dict of tensors needs: anything else is refused before it could mean anything.
 */
public final class TorchCheckpoint implements AutoCloseable {
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final Map<String, DType> STORAGES = Map.of(
            "torch.BFloat16Storage", DType.BF16, "torch.FloatStorage", DType.F32, "torch.HalfStorage", DType.F16);
    private static final String ORDERED_DICT = "collections.OrderedDict";
    private static final String REBUILD_TENSOR = "torch._utils._rebuild_tensor_v2";

    private final Path path;
    private final Arena arena;
    private final Map<String, Tensor> tensors;

    private TorchCheckpoint(Path path, Arena arena, Map<String, Tensor> tensors) {
        this.path = path;
        this.arena = arena;
        this.tensors = tensors;
    }

    public static TorchCheckpoint open(Path path) {
        Arena arena = Arena.ofShared();
        MemorySegment file;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            file = ch.size() == 0 ? arena.allocate(0) : ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
        } catch (IOException e) {
            arena.close();
            throw new GoldFinchException.BadModel("cannot read " + path + ": " + e.getMessage(), e);
        }
        return read(path, arena, file);
    }

    /** Reads a mapped (or, in tests, heap) archive owned by {@code arena}; {@code path} only names it in errors. */
    static TorchCheckpoint read(Path path, Arena arena, MemorySegment file) {
        try {
            Map<String, MemorySegment> entries = readZip(path, file);
            String pickleName = entries.keySet().stream()
                    .filter(n -> n.endsWith("/data.pkl") || n.equals("data.pkl"))
                    .findFirst()
                    .orElseThrow(() -> bad(path, "no data.pkl in the archive (not a torch.save checkpoint)"));
            String prefix = pickleName.substring(0, pickleName.length() - "data.pkl".length());
            byte[] pickle = entries.get(pickleName).toArray(ValueLayout.JAVA_BYTE);
            Object root = new Unpickler(path, pickle, prefix, entries).load();
            if (!(root instanceof PyDict dict)) {
                throw bad(path, "the checkpoint holds a " + describe(root) + ", not a dict of tensors");
            }
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (var e : dict.items.entrySet()) {
                if (!(e.getKey() instanceof String name) || !(e.getValue() instanceof Tensor t)) {
                    throw bad(
                            path,
                            "entry " + describe(e.getKey()) + " is a " + describe(e.getValue())
                                    + ", not a named tensor");
                }
                out.put(name, new Tensor(name, t.dtype(), t.shape(), t.data()));
            }
            return new TorchCheckpoint(path, arena, Collections.unmodifiableMap(out));
        } catch (RuntimeException e) {
            arena.close();
            if (e instanceof GoldFinchException) {
                throw e;
            }
            // A safety net only: every check above names what is wrong; the fuzz test fails on this path.
            throw new GoldFinchException.BadModel(path + ": malformed checkpoint (" + e + ")", e);
        }
    }

    public Path path() {
        return path;
    }

    /** The tensors in the state_dict's order. Valid until {@link #close()}. */
    public Map<String, Tensor> tensors() {
        return tensors;
    }

    @Override
    public void close() {
        arena.close();
    }

    private static GoldFinchException.BadModel bad(Path path, String why) {
        return new GoldFinchException.BadModel(path + ": " + why);
    }

    private static String describe(Object o) {
        return o == null ? "None" : o instanceof PyDict ? "dict" : o.getClass().getSimpleName();
    }

    // ---- zip (stored entries, zip64) ----

    private static Map<String, MemorySegment> readZip(Path path, MemorySegment f) {
        long size = f.byteSize();
        long eocd = -1;
        for (long p = size - 22; p >= Math.max(0, size - 22 - 65535); p--) {
            if (f.get(U32, p) == 0x06054b50) {
                eocd = p;
                break;
            }
        }
        if (eocd < 0) {
            throw bad(path, "no zip end-of-central-directory record (truncated or not a zip archive)");
        }
        long count = Short.toUnsignedLong(f.get(U16, eocd + 10));
        long cdOffset = Integer.toUnsignedLong(f.get(U32, eocd + 16));
        if ((count == 0xffff || cdOffset == 0xffffffffL) && eocd >= 20 && f.get(U32, eocd - 20) == 0x07064b50) {
            long z64 = f.get(U64, eocd - 20 + 8);
            if (!fits(z64, 56, size) || f.get(U32, z64) != 0x06064b50) {
                throw bad(path, "corrupt zip64 end record");
            }
            count = f.get(U64, z64 + 32);
            cdOffset = f.get(U64, z64 + 48);
        }
        Map<String, MemorySegment> entries = new HashMap<>();
        long p = cdOffset;
        for (long i = 0; i < count; i++) {
            if (!fits(p, 46, size) || f.get(U32, p) != 0x02014b50) {
                throw bad(path, "corrupt zip central directory");
            }
            int method = Short.toUnsignedInt(f.get(U16, p + 10));
            long csize = Integer.toUnsignedLong(f.get(U32, p + 20));
            long usize = Integer.toUnsignedLong(f.get(U32, p + 24));
            int nameLen = Short.toUnsignedInt(f.get(U16, p + 28));
            int extraLen = Short.toUnsignedInt(f.get(U16, p + 30));
            int commentLen = Short.toUnsignedInt(f.get(U16, p + 32));
            long local = Integer.toUnsignedLong(f.get(U32, p + 42));
            if (!fits(p, 46L + nameLen + extraLen, size)) {
                throw bad(path, "corrupt zip central directory");
            }
            String name = new String(f.asSlice(p + 46, nameLen).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.UTF_8);
            // zip64 extra field: the 64-bit values replace the 0xffffffff ones, in this order.
            long e = p + 46 + nameLen;
            long end = e + extraLen;
            while (e + 4 <= end) {
                int id = Short.toUnsignedInt(f.get(U16, e));
                int len = Short.toUnsignedInt(f.get(U16, e + 2));
                if (e + 4 + len > end) {
                    throw bad(path, "entry " + name + ": extra field runs past its record");
                }
                if (id == 1) {
                    long q = e + 4;
                    long fieldEnd = q + len;
                    if (usize == 0xffffffffL) {
                        usize = zip64Value(path, f, q, fieldEnd);
                        q += 8;
                    }
                    if (csize == 0xffffffffL) {
                        csize = zip64Value(path, f, q, fieldEnd);
                        q += 8;
                    }
                    if (local == 0xffffffffL) {
                        local = zip64Value(path, f, q, fieldEnd);
                    }
                }
                e += 4 + len;
            }
            if (!fits(local, 30, size) || f.get(U32, local) != 0x04034b50) {
                throw bad(path, "entry " + name + ": bad local header");
            }
            long data = local
                    + 30
                    + Short.toUnsignedInt(f.get(U16, local + 26))
                    + Short.toUnsignedInt(f.get(U16, local + 28));
            if (method != 0) {
                throw bad(
                        path,
                        "entry " + name + " is compressed (method " + method + "); torch.save writes stored entries");
            }
            if (csize != usize || !fits(data, usize, size)) {
                throw bad(path, "entry " + name + " runs past the end of the file (truncated?)");
            }
            entries.put(name, f.asSlice(data, usize));
            p += 46 + nameLen + extraLen + commentLen;
        }
        return entries;
    }

    /** Whether {@code [offset, offset + length)} lies inside {@code [0, size)}, without overflowing. */
    private static boolean fits(long offset, long length, long size) {
        return offset >= 0 && length >= 0 && offset <= size && length <= size - offset;
    }

    private static long zip64Value(Path path, MemorySegment f, long at, long fieldEnd) {
        if (at + 8 > fieldEnd) {
            throw bad(path, "zip64 extra field is shorter than the values it replaces");
        }
        return f.get(U64, at);
    }

    // ---- restricted unpickler ----

    private record Global(String name) {}

    private record StorageRef(DType dtype, MemorySegment bytes, String key) {}

    private static final class PyDict {
        final Map<Object, Object> items = new LinkedHashMap<>();
    }

    private static final Object MARK = new Object();

    private static final class Unpickler {
        private final Path path;
        private final byte[] b;
        private final String prefix;
        private final Map<String, MemorySegment> entries;
        private final List<Object> stack = new ArrayList<>();
        private final Map<Integer, Object> memo = new HashMap<>();
        private int pos;

        Unpickler(Path path, byte[] b, String prefix, Map<String, MemorySegment> entries) {
            this.path = path;
            this.b = b;
            this.prefix = prefix;
            this.entries = entries;
        }

        private int u8() {
            if (pos >= b.length) {
                throw bad(path, "pickle ends early");
            }
            return b[pos++] & 0xff;
        }

        private int u16() {
            return u8() | u8() << 8;
        }

        private int i32() {
            return u8() | u8() << 8 | u8() << 16 | u8() << 24;
        }

        private String text(int n, boolean utf8) {
            if (n < 0 || n > b.length - pos) {
                throw bad(path, "pickle string runs past its end");
            }
            String s = new String(b, pos, n, utf8 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
            pos += n;
            return s;
        }

        private String line() {
            int start = pos;
            while (pos < b.length && b[pos] != '\n') {
                pos++;
            }
            if (pos >= b.length) {
                throw bad(path, "pickle ends inside a GLOBAL name");
            }
            String s = new String(b, start, pos - start, StandardCharsets.UTF_8);
            pos++;
            return s;
        }

        private Object pop() {
            if (stack.isEmpty()) {
                throw bad(path, "pickle stack underflow");
            }
            return stack.removeLast();
        }

        private Object top() {
            if (stack.isEmpty()) {
                throw bad(path, "pickle stack underflow");
            }
            return stack.getLast();
        }

        private List<Object> popToMark() {
            int m = stack.lastIndexOf(MARK);
            if (m < 0) {
                throw bad(path, "pickle MARK missing");
            }
            List<Object> items = new ArrayList<>(stack.subList(m + 1, stack.size()));
            stack.subList(m, stack.size()).clear();
            return items;
        }

        Object load() {
            while (true) {
                int op = u8();
                switch (op) {
                    case 0x80 -> u8(); // PROTO
                    case 0x95 -> pos += 8; // FRAME
                    case '.' -> {
                        return pop();
                    } // STOP
                    case '(' -> stack.add(MARK);
                    case '}' -> stack.add(new PyDict());
                    case ']' -> stack.add(new ArrayList<>());
                    case ')' -> stack.add(List.of());
                    case 't' -> stack.add(popToMark());
                    case 0x85 -> stack.add(Arrays.asList(pop())); // tuples may hold None
                    case 0x86 -> {
                        Object y = pop();
                        Object x = pop();
                        stack.add(Arrays.asList(x, y));
                    }
                    case 0x87 -> {
                        Object z = pop();
                        Object y = pop();
                        Object x = pop();
                        stack.add(Arrays.asList(x, y, z));
                    }
                    case 'J' -> stack.add((long) i32());
                    case 'K' -> stack.add((long) u8());
                    case 'M' -> stack.add((long) u16());
                    case 0x8a -> { // LONG1
                        int n = u8();
                        if (n > 8) {
                            throw bad(path, "pickle integer of " + n + " bytes does not fit 64 bits");
                        }
                        long v = 0;
                        for (int i = 0; i < n; i++) {
                            v |= (long) u8() << (8 * i);
                        }
                        if (n > 0 && n < 8 && (v >> (8 * n - 1) & 1) == 1) {
                            v -= 1L << (8 * n);
                        }
                        stack.add(v);
                    }
                    case 'X' -> stack.add(text(i32(), true));
                    case 0x8c -> stack.add(text(u8(), true));
                    case 'T' -> stack.add(text(i32(), false));
                    case 'U' -> stack.add(text(u8(), false));
                    case 'N' -> stack.add(null);
                    case 0x88 -> stack.add(Boolean.TRUE);
                    case 0x89 -> stack.add(Boolean.FALSE);
                    case 'G' -> {
                        long bits = 0;
                        for (int i = 0; i < 8; i++) bits = bits << 8 | u8();
                        stack.add(Double.longBitsToDouble(bits));
                    }
                    case 'q' -> memo.put(u8(), top());
                    case 'r' -> memo.put(i32(), top());
                    case 0x94 -> memo.put(memo.size(), top());
                    case 'h' -> stack.add(memoGet(u8()));
                    case 'j' -> stack.add(memoGet(i32()));
                    case 'c' -> { // GLOBAL: checked against the allow-list right here
                        String name = line() + "." + line();
                        if (!name.equals(ORDERED_DICT) && !name.equals(REBUILD_TENSOR) && !STORAGES.containsKey(name)) {
                            throw bad(
                                    path,
                                    "refusing to load: the pickle references " + name
                                            + " (only tensors and ordered dicts are allowed; nothing is executed)");
                        }
                        stack.add(new Global(name));
                    }
                    case 'Q' -> stack.add(storage(pop())); // BINPERSID
                    case 'R' -> {
                        Object args = pop();
                        Object fn = pop();
                        stack.add(call(fn, args));
                    }
                    case 'b' -> pop(); // BUILD: state of an OrderedDict (empty) or tensor; nothing to set
                    case 's' -> {
                        Object v = pop();
                        Object k = pop();
                        dict(top()).items.put(key(k), v);
                    }
                    case 'u' -> {
                        List<Object> kv = popToMark();
                        PyDict d = dict(top());
                        if (kv.size() % 2 != 0) {
                            throw bad(path, "odd SETITEMS");
                        }
                        for (int i = 0; i < kv.size(); i += 2) {
                            if (d.items.put(key(kv.get(i)), kv.get(i + 1)) != null) {
                                throw bad(path, "duplicate key " + kv.get(i));
                            }
                        }
                    }
                    case 'a' -> {
                        Object v = pop();
                        list(top()).add(v);
                    }
                    case 'e' -> {
                        List<Object> items = popToMark();
                        list(top()).addAll(items);
                    }
                    default ->
                        throw bad(path, String.format("unsupported pickle opcode 0x%02x at byte %d", op, pos - 1));
                }
            }
        }

        private Object memoGet(int key) {
            if (!memo.containsKey(key)) {
                throw bad(path, "pickle refers to an unknown memo entry " + key);
            }
            return memo.get(key);
        }

        /** Dict keys are names: anything else (a list could even contain itself) has no place in a state_dict. */
        private Object key(Object k) {
            if (k instanceof String) {
                return k;
            }
            throw bad(path, "pickle uses a " + describe(k) + " as a dict key");
        }

        private PyDict dict(Object o) {
            if (o instanceof PyDict d) {
                return d;
            }
            throw bad(path, "pickle sets items on a " + describe(o));
        }

        @SuppressWarnings("unchecked")
        private List<Object> list(Object o) {
            if (o instanceof ArrayList<?> l) {
                return (List<Object>) l;
            }
            throw bad(path, "pickle appends to a " + describe(o));
        }

        /** {@code ('storage', StorageType, key, location, numel)} → the bytes of {@code data/<key>}. */
        private StorageRef storage(Object pid) {
            if (!(pid instanceof List<?> t)
                    || t.size() != 5
                    || !"storage".equals(t.get(0))
                    || !(t.get(1) instanceof Global g)
                    || !(t.get(2) instanceof String key)
                    || !(t.get(4) instanceof Long numel)) {
                throw bad(path, "unsupported persistent id (a " + describe(pid) + ")");
            }
            DType dtype = STORAGES.get(g.name());
            if (dtype == null) {
                throw bad(path, "unsupported storage type " + g.name());
            }
            MemorySegment bytes = entries.get(prefix + "data/" + key);
            if (bytes == null) {
                throw bad(path, "storage " + key + " is missing from the archive");
            }
            if (numel < 0 || numel > bytes.byteSize() / dtype.bytes()) {
                throw bad(
                        path,
                        "storage " + key + " holds " + bytes.byteSize() + " bytes, fewer than its " + numel
                                + " elements");
            }
            return new StorageRef(dtype, bytes, key);
        }

        private Object call(Object fn, Object args) {
            if (!(fn instanceof Global g) || !(args instanceof List<?> a)) {
                throw bad(path, "pickle calls something that is not an allowed global");
            }
            if (g.name().equals(ORDERED_DICT)) {
                return new PyDict();
            }
            if (g.name().equals(REBUILD_TENSOR)) {
                return rebuildTensor(a);
            }
            throw bad(path, "refusing to call " + g.name());
        }

        /** {@code _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)}: a contiguous slice. */
        private Tensor rebuildTensor(List<?> a) {
            if (a.size() < 4
                    || !(a.get(0) instanceof StorageRef s)
                    || !(a.get(1) instanceof Long offset)
                    || !(a.get(2) instanceof List<?> size)
                    || !(a.get(3) instanceof List<?> stride)
                    || size.size() != stride.size()) {
                throw bad(path, "malformed tensor record");
            }
            long[] shape = new long[size.size()];
            long numel;
            try {
                long expectStride = 1;
                for (int i = shape.length - 1; i >= 0; i--) {
                    if (!(size.get(i) instanceof Long d) || d < 0 || !(stride.get(i) instanceof Long st)) {
                        throw bad(path, "malformed tensor shape in storage " + s.key());
                    }
                    shape[i] = d;
                    if (d > 1 && st != expectStride) {
                        throw bad(
                                path,
                                "tensor in storage " + s.key() + " is not contiguous (stride " + st + " in dimension "
                                        + i + " of a " + shape.length + "-d tensor)");
                    }
                    expectStride = Math.multiplyExact(expectStride, d);
                }
                numel = Tensor.numel(shape);
            } catch (ArithmeticException e) {
                throw bad(path, "tensor shape in storage " + s.key() + " overflows");
            }
            long elements = s.bytes().byteSize() / s.dtype().bytes();
            if (offset < 0 || numel > elements || offset > elements - numel) {
                throw bad(
                        path,
                        "tensor in storage " + s.key() + " reaches past the storage's "
                                + s.bytes().byteSize() + " bytes");
            }
            long bytes = numel * s.dtype().bytes();
            return new Tensor(
                    "storage" + s.key(),
                    s.dtype(),
                    shape,
                    s.bytes().asSlice(offset * s.dtype().bytes(), bytes));
        }
    }
}
