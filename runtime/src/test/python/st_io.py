"""Minimal safetensors reader/writer (no `safetensors` package needed).

Format (huggingface/safetensors, see ../../../../../shared/SPECS.md section 2):
8-byte little-endian u64 header length N, N bytes of UTF-8 JSON (right-padded with spaces to a
multiple of 8), then one contiguous little-endian row-major data buffer with no holes.

The writer orders tensors by name (header keys and data both), writes
`"__metadata__": {"format": "pt"}` and pads the header with spaces, like the Python safetensors
package does. Tensors are numpy arrays or torch tensors; scalars should be given as shape [1].
"""
import json
import struct

import numpy as np

_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "U16": np.dtype("<u2"),
    "U32": np.dtype("<u4"),
    "U64": np.dtype("<u8"),
    "BOOL": np.dtype("?"),
}


def _to_numpy(t):
    if hasattr(t, "detach"):  # torch tensor
        t = t.detach().cpu().contiguous().numpy()
    a = np.asarray(t)  # (np.ascontiguousarray would turn a 0-d scalar into shape [1])
    return a if a.flags.c_contiguous else a.copy(order="C")


def _dtype_name(a):
    for name, dt in _DTYPES.items():
        if a.dtype.kind == dt.kind and a.dtype.itemsize == dt.itemsize:
            return name
    raise ValueError("unsupported dtype %s" % a.dtype)


def save_file(tensors, path, metadata=None):
    """tensors: dict name -> array. Writes a safetensors file; returns its size in bytes."""
    meta = {"format": "pt"}
    if metadata:
        meta.update(metadata)
    header = {"__metadata__": meta}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        a = _to_numpy(tensors[name])
        dname = _dtype_name(a)
        raw = a.astype(_DTYPES[dname], copy=False).tobytes(order="C")
        header[name] = {"dtype": dname, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
    return 8 + len(hjson) + offset


def load_file(path):
    """Returns (dict name -> numpy array, metadata dict). Validates offsets."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError("header length %d exceeds file" % n)
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    spans = []
    for name, info in header.items():
        dt = _DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        shape = tuple(info["shape"])
        count = int(np.prod(shape)) if shape else 1
        if e - b != count * dt.itemsize or base + e > len(data):
            raise ValueError("bad offsets for %s" % name)
        out[name] = np.frombuffer(data[base + b:base + e], dtype=dt).reshape(shape).copy()
        spans.append((b, e))
    spans.sort()
    pos = 0
    for b, e in spans:
        if b != pos:
            raise ValueError("hole or overlap in data buffer")
        pos = e
    if base + pos != len(data):
        raise ValueError("data buffer not fully covered")
    return out, meta
