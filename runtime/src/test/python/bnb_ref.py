"""Independent Python re-implementation of the bitsandbytes codecs used by QLoRA.

Written from ../shared/SPECS.md section 1 (bitsandbytes functional.py / csrc/kernels.cu), not from
the Java code. All arithmetic is float32, in the order the CUDA kernels use:

NF4 (quantize_4bit, quant_type="nf4", blocksize 64):
  absmax[b] = max |x| over block b (a last partial block has its own absmax)
  inv       = 1.0f / absmax[b]                      (float32 reciprocal)
  scaled    = x * inv                                (float32 multiply)
  code      = number of float32 NF4 midpoints strictly below `scaled`
              (= dQuantizeNF4's decision tree: `x > threshold` goes up, so a tie goes to the lower
              code; NaN - from an all-zero block, 0 * inf - gives code 0)
  packed    = element 2i in the HIGH nibble, 2i+1 in the LOW nibble, odd count zero-padded
  deq       = NF4[code] * absmax[b]                  (float32)

Double quantization (compress_statistics=True):
  offset        = mean(absmax)                       (torch float32 mean)
  nested_absmax = per 256-block max |absmax - offset|
  qabsmax       = dQuantize(dynamic_map, (absmax - offset) * (1.0f / nested_absmax))  (uint8)
  absmax'       = dynamic_map[qabsmax] * nested_absmax + offset   (float32, used for dequant)

dQuantize is the CUDA binary search (reproduced literally below): nearest code, with a tie on an
exact float32 midpoint resolved by the search path. `nearest_code_8bit` is a plain nearest-code
version; the generator asserts both agree on every value it quantizes (i.e. no ties occur).

LLM.int8 (Linear8bitLt, row-wise):
  SCB = max |W[o, :]| (float32), CB = round_half_even(W * (127.0f / SCB)) as int8
  deq = (CB * SCB) * 7.874015718698502e-3f   (bnb int8_vectorwise_dequant: multiply by fl32(1/127))
"""
import math
import os

import numpy as np
import torch

NF4_CODE = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0], dtype=np.float32)

NF4_MID = np.array([
    -0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544,
    -0.23460740596055984, -0.13791173323988914, -0.045525018125772476, 0.03979014977812767,
    0.1202552504837513, 0.2035212516784668, 0.2920137718319893, 0.3893125355243683,
    0.5016634166240692, 0.6427869200706482, 0.8614784181118011], dtype=np.float32)

INT8_INV127 = np.float32(7.874015718698502e-3)


def create_dynamic_map_signed():
    """bitsandbytes create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), with
    torch float32 linspace exactly as the library computes it. Returns float32 [256]."""
    data = []
    max_exponent_bits = 7
    for i in range(max_exponent_bits):
        fraction_items = int(2 ** i + 1)
        boundaries = torch.linspace(0.1, 1, fraction_items)  # float32
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    assert len(data) == 256
    data.sort()
    return torch.tensor(data).numpy().astype(np.float32)


DYNAMIC_MAP = create_dynamic_map_signed()


def check_dynamic_map_against_specs(specs_path):
    """Compare DYNAMIC_MAP with the hex table in SPECS.md (if the file is present)."""
    if not os.path.exists(specs_path):
        return None
    text = open(specs_path, encoding="utf-8").read()
    start = text.index("as IEEE-754 hex, ascending")
    block = text[text.index("```", start) + 3:]
    block = block[:block.index("```")]
    words = block.split()
    assert len(words) == 256, len(words)
    expected = np.array([int(w, 16) for w in words], dtype=np.uint32)
    got = DYNAMIC_MAP.view(np.uint32)
    bad = np.nonzero(expected != got)[0]
    if len(bad):
        raise AssertionError("dynamic map differs from SPECS at %s" % bad.tolist())
    return True


# ----------------------------------------------------------------------------------------- NF4

def _blocks(x, blocksize):
    n = x.size
    nb = (n + blocksize - 1) // blocksize
    padded = np.zeros(nb * blocksize, dtype=np.float32)
    padded[:n] = x
    return padded.reshape(nb, blocksize), nb


def quantize_nf4_raw(x, blocksize=64):
    """x: float32 array (any shape, flattened row-major). Returns (codes uint8 [n], absmax f32 [nb])."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    n = x.size
    xb, nb = _blocks(x, blocksize)
    absmax = np.abs(xb).max(axis=1).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = (np.float32(1.0) / absmax).astype(np.float32)
        scaled = (xb * inv[:, None]).astype(np.float32).reshape(-1)[:n]
    scaled = np.clip(scaled, np.float32(-1), np.float32(1))  # NaN stays NaN
    codes = (scaled[:, None] > NF4_MID[None, :]).sum(axis=1).astype(np.uint8)
    return codes, absmax


def pack_nibbles(codes):
    c = np.asarray(codes, dtype=np.uint8).reshape(-1)
    if c.size % 2:
        c = np.concatenate([c, np.zeros(1, np.uint8)])
    return ((c[0::2] << 4) | c[1::2]).astype(np.uint8)


def unpack_nibbles(packed, n):
    p = np.asarray(packed, dtype=np.uint8).reshape(-1)
    out = np.empty(p.size * 2, dtype=np.uint8)
    out[0::2] = p >> 4
    out[1::2] = p & 0x0F
    return out[:n]


def dequantize_nf4_raw(codes, absmax, blocksize=64):
    codes = np.asarray(codes).reshape(-1)
    blk = np.arange(codes.size) // blocksize
    return (NF4_CODE[codes] * absmax[blk]).astype(np.float32)


# ------------------------------------------------------------------------- blockwise 8-bit (DQ)

def dquantize_cuda(code, x):
    """Vectorised literal port of csrc/kernels.cu dQuantize<0> (binary search). x: float32 array."""
    x = np.asarray(x, dtype=np.float32)
    pivot = np.full(x.shape, 127, dtype=np.int64)
    upper_pivot = np.full(x.shape, 255, dtype=np.int64)
    lower_pivot = np.zeros(x.shape, dtype=np.int64)
    lower = np.full(x.shape, -1.0, dtype=np.float32)
    upper = np.full(x.shape, 1.0, dtype=np.float32)
    val = code[pivot]
    i = 64
    while i > 0:
        gt = x > val
        lower_pivot = np.where(gt, pivot, lower_pivot)
        lower = np.where(gt, val, lower)
        upper_pivot = np.where(gt, upper_pivot, pivot)
        upper = np.where(gt, upper, val)
        pivot = np.where(gt, pivot + i, pivot - i)
        val = code[pivot]
        i >>= 1
    upper = np.where(upper_pivot == 255, code[255], upper).astype(np.float32)
    lower = np.where(lower_pivot == 0, code[0], lower).astype(np.float32)
    gt = x > val
    mid_up = ((upper + val) * np.float32(0.5)).astype(np.float32)
    mid_lo = ((lower + val) * np.float32(0.5)).astype(np.float32)
    res = np.where(gt, np.where(x > mid_up, upper_pivot, pivot), np.where(x < mid_lo, lower_pivot, pivot))
    return res.astype(np.uint8)


def nearest_code_8bit(code, x):
    d = np.abs(x.astype(np.float64)[:, None] - code.astype(np.float64)[None, :])
    return d.argmin(axis=1).astype(np.uint8)


def quantize_blockwise_8bit(x, blocksize=256, code=DYNAMIC_MAP):
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    n = x.size
    xb, nb = _blocks(x, blocksize)
    absmax = np.abs(xb).max(axis=1).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = (np.float32(1.0) / absmax).astype(np.float32)
        scaled = (xb * inv[:, None]).astype(np.float32).reshape(-1)[:n]
    q = dquantize_cuda(code, scaled)
    q2 = nearest_code_8bit(code, scaled)
    if not np.array_equal(q, q2):
        raise AssertionError("8-bit tie: CUDA search and nearest code disagree at %s"
                             % np.nonzero(q != q2)[0][:10].tolist())
    return q, absmax


def dequantize_blockwise_8bit(q, absmax, blocksize=256, code=DYNAMIC_MAP):
    q = np.asarray(q).reshape(-1)
    blk = np.arange(q.size) // blocksize
    return (code[q] * absmax[blk]).astype(np.float32)


class NF4State:
    """The result of quantize_4bit(nf4, blocksize=64, compress_statistics=True) for one tensor."""

    def __init__(self, w, blocksize=64, nested_blocksize=256):
        w = np.ascontiguousarray(w, dtype=np.float32)
        self.shape = list(w.shape)
        self.n = w.size
        self.blocksize = blocksize
        self.nested_blocksize = nested_blocksize
        self.codes, self.absmax_f32 = quantize_nf4_raw(w, blocksize)
        # diagnostics: how many codes would change if x / absmax were used instead of x * (1/absmax)
        xb, _ = _blocks(w.reshape(-1), blocksize)
        with np.errstate(divide="ignore", invalid="ignore"):
            div = (xb / self.absmax_f32[:, None]).astype(np.float32).reshape(-1)[:self.n]
        self.codes_if_divide = (div[:, None] > NF4_MID[None, :]).sum(axis=1).astype(np.uint8)
        self.n_codes_differing_if_divide = int((self.codes_if_divide != self.codes).sum())
        self.packed = pack_nibbles(self.codes)
        # torch float32 mean, as bitsandbytes computes it
        self.offset = np.float32(torch.from_numpy(self.absmax_f32).mean().item())
        centered = (self.absmax_f32 - self.offset).astype(np.float32)
        self.qabsmax, self.nested_absmax = quantize_blockwise_8bit(centered, nested_blocksize)
        self.absmax_dq = (dequantize_blockwise_8bit(self.qabsmax, self.nested_absmax, nested_blocksize)
                          + self.offset).astype(np.float32)

    def dequantize(self):
        return dequantize_nf4_raw(self.codes, self.absmax_dq, self.blocksize).reshape(self.shape)

    def dequantize_without_dq(self):
        return dequantize_nf4_raw(self.codes, self.absmax_f32, self.blocksize).reshape(self.shape)

    def serialized(self, prefix, dtype_name="float32"):
        """bitsandbytes Linear4bit state-dict entries for module prefix `prefix` (SPECS.md table)."""
        import json
        qs = {
            "quant_type": "nf4", "blocksize": self.blocksize, "dtype": dtype_name, "shape": self.shape,
            "nested_blocksize": self.nested_blocksize, "nested_dtype": "float32",
            "nested_offset": float(self.offset),
        }
        return {
            prefix + ".weight": self.packed.reshape(-1, 1),
            prefix + ".weight.absmax": self.qabsmax,
            prefix + ".weight.quant_map": NF4_CODE.copy(),
            prefix + ".weight.nested_absmax": self.nested_absmax,
            prefix + ".weight.nested_quant_map": DYNAMIC_MAP.copy(),
            prefix + ".weight.quant_state.bitsandbytes__nf4":
                np.frombuffer(json.dumps(qs).encode("utf-8"), dtype=np.uint8).copy(),
        }


# ----------------------------------------------------------------------------------- LLM.int8

def quantize_int8_rowwise(w):
    """w: float32 [out, in]. Returns (CB int8 [out,in], SCB float32 [out])."""
    t = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
    scb = t.abs().max(dim=1).values
    cb = torch.round(t * (127.0 / scb.unsqueeze(-1))).to(torch.int8)
    return cb.numpy(), scb.numpy().astype(np.float32)


def dequantize_int8_rowwise(cb, scb):
    cb = torch.from_numpy(np.asarray(cb, dtype=np.int8)).float()
    scb = torch.from_numpy(np.asarray(scb, dtype=np.float32))
    return (cb * scb.view(-1, 1) * float(INT8_INV127)).numpy().astype(np.float32)
