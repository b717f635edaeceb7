#!/usr/bin/env python3
"""Independent safetensors writer for SafetensorsWriterGoldenTest.

Writes quant/src/test/resources/safetensors/writer-golden.safetensors with struct + json only, following the
format as the safetensors spec and the Rust crate's `prepare` (safetensors/src/tensor.rs) define it:
  8-byte little-endian u64 N, N bytes of compact UTF-8 JSON padded with spaces to a multiple of 8, then the data;
  tensors sorted by dtype descending in the crate's enum order, then by name (UTF-8 bytes);
  "__metadata__" first, keys sorted by UTF-8 bytes (qlora4j's documented choice: the crate's HashMap has no order).
torch is used only to round floats to F16/BF16 (round to nearest even), the conversions qlora4j must match.

Run from the repository root:  /usr/bin/python3 quant/src/test/python/write_safetensors_fixture.py
The Java test adds the same tensors (keep TENSORS in sync with SafetensorsWriterGoldenTest) and compares bytes.
"""
import json
import os
import struct

import torch

# The Rust crate's Dtype enum, in declaration order (increasing alignment).
DTYPE_ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16",
               "I32", "U32", "F32", "F64", "I64", "U64"]


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def half(values, dtype):
    return torch.tensor(values, dtype=torch.float32).to(dtype).view(torch.int16).numpy().astype("<i2").tobytes()


TENSORS = [  # (name, dtype, shape, little-endian bytes)
    ("zeta.f32", "F32", [2, 3], f32([i * 0.25 - 0.5 for i in range(6)])),
    ("alpha.f32", "F32", [3], f32([1.5, -2.0, 3.1415927])),
    ("empty", "F32", [0], b""),
    ("naïve \"quote\"\t\u0001\\", "F32", [1], f32([42.0])),
    ("mid.bf16", "BF16", [5], half([0.1, 1.0 / 3.0, -2.7182817, 65504.0, 1e-3], torch.bfloat16)),
    ("mid.f16", "F16", [2, 2], half([0.1, -1.0 / 3.0, 1024.5, 6.1e-5], torch.float16)),
    ("ids", "I64", [4], struct.pack("<4q", 1, -2, 1 << 40, -(1 << 62))),
    ("counts", "I32", [3], struct.pack("<3i", 7, -8, 2147483647)),
    ("scalar", "F64", [], struct.pack("<d", 2.5)),
    ("mask", "BOOL", [4], bytes([1, 0, 0, 1])),
    ("bytes", "U8", [3], bytes([0, 128, 255])),
    ("i8", "I8", [2], struct.pack("<2b", -1, 5)),
    ("i16", "I16", [1], struct.pack("<h", -300)),
    ("u16", "U16", [2], struct.pack("<2H", 1, 65535)),
    ("u32", "U32", [1], struct.pack("<I", 4000000000)),
    ("u64", "U64", [1], struct.pack("<Q", (1 << 64) - 1)),
    ("f8.e5m2", "F8_E5M2", [2], bytes([0x3C, 0xBC])),
    ("f8.e4m3", "F8_E4M3", [2], bytes([0x38, 0xB8])),
]
METADATA = {"format": "pt", "author": "qlora4j test"}


def main():
    ordered = sorted(TENSORS, key=lambda t: (-DTYPE_ORDER.index(t[1]), t[0].encode("utf-8")))
    header = {}
    if METADATA:
        header["__metadata__"] = {k: METADATA[k] for k in sorted(METADATA, key=lambda k: k.encode("utf-8"))}
    offset = 0
    for name, dtype, shape, data in ordered:
        n = 1
        for d in shape:
            n *= d
        assert len(data) == n * {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
                                  "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}[dtype], name
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    out = os.path.join(os.path.dirname(__file__), "..", "resources", "safetensors", "writer-golden.safetensors")
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, data in ordered:
            f.write(data)
    print(os.path.normpath(out), 8 + len(text) + offset, "bytes")


if __name__ == "__main__":
    main()
