"""Writes the safetensors and .pth seeds of the fuzz corpus from the golden weights (no torch needed).

Run from model/: python3 src/test/resources/fuzz/make_seeds.py
The .pth seed is pickled the way torch.save does it (protocol 2, persistent ids for storages, memo
entries for every object) with stand-ins registered under torch's module names.
"""
import collections
import json
import pickle
import struct
import sys
import types
import zipfile

GOLDEN = "src/test/resources/golden/goldfinch"
OUT = "src/test/resources/fuzz"


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    return header, data


def small_tensors(header, data, count):
    picked = sorted(header.items(), key=lambda kv: (kv[1]["data_offsets"][1] - kv[1]["data_offsets"][0], kv[0]))
    out = []
    for name, info in picked[:count]:
        b, e = info["data_offsets"]
        out.append((name, info["dtype"], info["shape"], data[b:e]))
    return out


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def fake_torch():
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    storages = {}
    for name in ("BFloat16Storage", "FloatStorage", "HalfStorage"):
        storages[name] = type(name, (), {"__module__": "torch"})
        setattr(torch, name, storages[name])
    torch._utils = utils
    sys.modules["torch"] = torch
    sys.modules["torch._utils"] = utils
    return utils, storages


class Storage:
    def __init__(self, kind, key, numel):
        self.kind, self.key, self.numel = kind, key, numel


class Tensor:
    def __init__(self, storage, shape, rebuild):
        self.storage, self.shape, self.rebuild = storage, shape, rebuild

    def __reduce_ex__(self, protocol):
        stride, s = [], 1
        for d in reversed(self.shape):
            stride.insert(0, s)
            s *= d
        return (self.rebuild, (self.storage, 0, tuple(self.shape), tuple(stride), False, collections.OrderedDict()))


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.kind, obj.key, "cpu", obj.numel)
        return None


def write_pth(path, tensors):
    utils, storages = fake_torch()
    kinds = {"BF16": (storages["BFloat16Storage"], 2), "F32": (storages["FloatStorage"], 4), "F16": (storages["HalfStorage"], 2)}
    state, raws = collections.OrderedDict(), []
    for i, (name, dtype, shape, raw) in enumerate(tensors):
        kind, size = kinds[dtype]
        state[name] = Tensor(Storage(kind, str(i), len(raw) // size), shape, utils._rebuild_tensor_v2)
        raws.append((str(i), raw))
    import io
    buf = io.BytesIO()
    TorchPickler(buf, protocol=2).dump(state)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("seed/data.pkl", buf.getvalue())
        z.writestr("seed/byteorder", "little")
        for key, raw in raws:
            z.writestr("seed/data/" + key, raw)
        z.writestr("seed/version", "3\n")


def main():
    header, data = read_safetensors(GOLDEN + "/weights.safetensors")
    tensors = small_tensors(header, data, 4)
    write_safetensors(OUT + "/safetensors/small-f32.safetensors", tensors, {"format": "pt", "seed": "golden"})
    pth_header, pth_data = read_safetensors(GOLDEN + "/outputs.safetensors")
    write_safetensors(OUT + "/safetensors/two-outputs.safetensors", small_tensors(pth_header, pth_data, 2), {})
    bf16 = [(n, "BF16", s, b"".join(r[i + 2:i + 4] for i in range(0, len(r), 4))) for n, _, s, r in tensors[:2]]
    write_pth(OUT + "/torch-checkpoint/small-bf16.pth", bf16)
    write_pth(OUT + "/torch-checkpoint/mixed.pth", bf16[:1] + tensors[2:3])


main()


# Inputs that once crashed a reader (each named for the check that now rejects it); they must fail typed.
def stored_zip(path, entries):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            z.writestr(name, data)


def rejects():
    pth = OUT + "/torch-checkpoint/"
    stored_zip(pth + "reject-global-without-newline.pth", [("a/data.pkl", b"\x80\x02ctorch")])
    stored_zip(pth + "reject-unicode-length-overflow.pth", [("a/data.pkl", b"\x80\x02NX\xff\xff\xff\x7f" + b"x" * 8)])
    stored_zip(pth + "reject-memo-of-empty-stack.pth", [("a/data.pkl", b"\x80\x02q\x00.")])
    # a list appended to itself, then used as a dict key: hashing it never ends
    stored_zip(pth + "reject-self-containing-list-key.pth", [("a/data.pkl", b"\x80\x02}q\x00]q\x01h\x01aNs.")])
    # a storage of 2^62 bf16 elements whose byte count overflows, and a tensor spanning it
    big = b"\x8a\x08" + struct.pack("<q", 1 << 62)
    pickle_bytes = (b"\x80\x02ccollections\nOrderedDict\n)R(\x8c\x01wctorch._utils\n_rebuild_tensor_v2\n"
                    b"((\x8c\x07storagectorch\nBFloat16Storage\n\x8c\x010\x8c\x03cpu" + big + b"tQK\x00(" + big
                    + b"t(K\x01t\x89NtRu.")
    stored_zip(pth + "reject-storage-size-overflow.pth", [("a/data.pkl", pickle_bytes), ("a/data/0", b"\x00" * 16)])
    # zip64 end record claimed at an offset that overflows when the record's size is added
    eocd64_locator = struct.pack("<IIQI", 0x07064B50, 0, (1 << 63) - 16, 1)
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0, 0xFFFFFFFF, 0)
    with open(pth + "reject-zip64-record-offset-overflow.pth", "wb") as f:
        f.write(eocd64_locator + eocd)

    st = OUT + "/safetensors/"
    for name, header in (
        ("reject-metadata-not-a-string", {"__metadata__": {"format": ["pt"]}}),
        ("reject-offset-beyond-64-bits", {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 1 << 64]}}),
        ("reject-dtype-not-a-string", {"w": {"dtype": [], "shape": [1], "data_offsets": [0, 4]}}),
        ("reject-shape-overflow", {"w": {"dtype": "F32", "shape": [1 << 62, 4], "data_offsets": [0, 0]}}),
    ):
        text = json.dumps(header).encode()
        with open(st + name + ".safetensors", "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + b"\x00" * 4)


rejects()
