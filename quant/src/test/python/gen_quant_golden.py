#!/usr/bin/python3
"""Golden files for qlora4j's bitsandbytes number formats (NF4, FP4, double quantization, blockwise 8-bit,
LLM.int8 row-wise).

An independent re-implementation of the bitsandbytes CUDA algorithms (csrc/kernels.cu: kQuantizeBlockwise,
dQuantizeNF4, dQuantizeFP4, dQuantize; functional.py: create_dynamic_map, quantize_4bit's compress_statistics;
backends/default/ops.py: int8_vectorwise_quant), written with numpy float32 arithmetic and torch where bitsandbytes
itself relies on torch (linspace for the dynamic map, mean for the double-quantization offset, round for LLM.int8).

Rules reproduced (all float32):
  absmax[b]  = max |x| over the block (partial last block has its own)
  recip      = 1 / absmax[b];  scaled = x * recip   (absmax 0 -> recip inf -> 0 * inf = NaN)
  NF4        code = number of NF4 midpoints strictly below scaled -> ties go to the lower code; NaN -> 0. The
             midpoints are the kernel's float literals, each decimal rounded once to float32 (see f32_literal)
  FP4        sign bit 8 if scaled < 0; |scaled| against the 7 dQuantizeFP4 thresholds; NaN -> 0
  packing    element 2i in the high nibble; an odd count is padded with the value 0.0 (quantized like the kernel's
             zero-filled load, i.e. 0 * recip: NF4 code 7 in a normal block, 0 in an all-zero block)
  8-bit      nearest code of the signed dynamic map; at an exact float32 midpoint (a+b)*0.5 the code with the EVEN
             index wins (dQuantize's binary search always ends on an even pivot); NaN -> 0
  DQ         offset = torch.mean(absmax) (float32); blockwise 8-bit of (absmax - offset) with blocksize 256
  LLM.int8   SCB = row absmax; CB = torch.round(W * (127 / SCB)) (half to even); an all-zero row -> CB 0

Run from the repository root:  /usr/bin/python3 quant/src/test/python/gen_quant_golden.py
Writes raw little-endian .bin files and manifest.json under quant/src/test/resources/golden/quant/.
"""
import json
import os
from fractions import Fraction

import numpy as np
import torch

F32 = np.float32
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "golden", "quant")


def f32_literal(text):
    """The float32 nearest to a decimal string, rounded ONCE, as a C/CUDA `f` literal (dQuantizeNF4's
    `x > 0.8614784181118011f`). np.float32(float(text)) rounds twice (decimal -> float64 -> float32) and lands on the
    other neighbour for 4 of the 15 NF4 midpoints, whose float64 value is an exact float32 tie."""
    exact = Fraction(text)
    best = np.float32(float(text))
    for cand in (np.nextafter(best, F32(-np.inf)), np.nextafter(best, F32(np.inf))):
        if abs(Fraction(float(cand)) - exact) < abs(Fraction(float(best)) - exact):
            best = cand
    return best


NF4_MIDPOINTS = np.array([f32_literal(t) for t in (
    "-0.8480964004993439", "-0.6106329262256622", "-0.4599952697753906", "-0.33967943489551544",
    "-0.23460740596055984", "-0.13791173323988914", "-0.045525018125772476", "0.03979014977812767",
    "0.1202552504837513", "0.2035212516784668", "0.2920137718319893", "0.3893125355243683",
    "0.5016634166240692", "0.6427869200706482", "0.8614784181118011")], dtype=F32)
# dQuantizeFP4 thresholds on |x| in ascending order, and the code chosen above the k-th one
FP4_THRESHOLDS = np.array([f32_literal(t) for t in (
    "0.00260417", "0.0859375", "0.20833333", "0.29166667", "0.4166667", "0.583333", "0.8333333")], dtype=F32)
FP4_CODE_BY_RANK = np.array([0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011], dtype=np.uint8)


def create_dynamic_map_signed():
    """bitsandbytes create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8), torch float32."""
    data = []
    for i in range(7):
        boundaries = torch.linspace(0.1, 1, 2 ** i + 1)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-6 + i)) * means).tolist()
        data += (-(10 ** (-6 + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    data.sort()
    assert len(data) == 256
    return torch.tensor(data, dtype=torch.float32).numpy()


DYNAMIC_MAP = create_dynamic_map_signed()


# ---------------------------------------------------------------- blockwise scaling

def block_scale(x, blocksize):
    """-> absmax (nblocks) float32, scaled (n) float32 with NaN where absmax == 0, recip (nblocks)."""
    n = x.size
    nblocks = -(-n // blocksize)
    padded = np.zeros(nblocks * blocksize, dtype=F32)
    padded[:n] = x
    absmax = np.abs(padded.reshape(nblocks, blocksize)).max(axis=1).astype(F32)
    with np.errstate(divide="ignore", invalid="ignore"):
        recip = (F32(1.0) / absmax).astype(F32)
        scaled = (padded.reshape(nblocks, blocksize) * recip[:, None]).astype(F32).reshape(-1)
    return absmax, scaled, recip


def nf4_codes(s):
    codes = np.searchsorted(NF4_MIDPOINTS, s, side="left").astype(np.uint8)  # count of midpoints < s
    codes[np.isnan(s)] = 0
    return codes


def fp4_codes(s):
    sign = np.where(s < 0, 8, 0).astype(np.uint8)
    rank = np.searchsorted(FP4_THRESHOLDS, np.abs(s), side="left")  # count of thresholds < |s|
    codes = FP4_CODE_BY_RANK[rank] + sign
    codes[np.isnan(s)] = 0
    return codes.astype(np.uint8)


def quantize_4bit(x, blocksize, kind):
    n = x.size
    absmax, scaled, _ = block_scale(x, blocksize)
    # the padded positions of the last block hold 0 * recip, exactly what the kernel quantizes for odd n
    scaled = scaled[: n + (n & 1)]
    codes = nf4_codes(scaled) if kind == "nf4" else fp4_codes(scaled)
    packed = (codes[0::2] << 4) | codes[1::2]
    return packed.astype(np.uint8), absmax


def dynamic_codes(s):
    code = DYNAMIC_MAP
    k = np.searchsorted(code, s, side="left")  # code[k-1] < s <= code[k]
    out = np.empty(s.size, dtype=np.int64)
    for j, (v, kk) in enumerate(zip(s, k)):
        if np.isnan(v):
            out[j] = 0
        elif kk == 0:
            out[j] = 0
        elif kk == 256:
            out[j] = 255
        else:
            lo, hi = kk - 1, kk
            mid = F32((code[lo] + code[hi]) * F32(0.5))
            if v > mid:
                out[j] = hi
            elif v < mid:
                out[j] = lo
            else:
                out[j] = lo if lo % 2 == 0 else hi
    return out.astype(np.uint8)


def quantize_blockwise8(x, blocksize):
    n = x.size
    absmax, scaled, _ = block_scale(x, blocksize)
    return dynamic_codes(scaled[:n]), absmax


def double_quant(absmax):
    offset = torch.from_numpy(absmax).mean()  # float32, as bitsandbytes
    centered = (torch.from_numpy(absmax) - offset).numpy()
    qabsmax, nested = quantize_blockwise8(centered, 256)
    offset_f32 = F32(offset.item())
    offset_f64 = F32(np.mean(absmax.astype(np.float64)))  # correctly rounded mean, for the record
    return qabsmax, nested, offset_f32, offset_f64


def rowwise_int8(w):
    rowmax = np.abs(w).max(axis=1).astype(F32)
    t = torch.from_numpy(w)
    rs = torch.from_numpy(rowmax)
    with np.errstate(divide="ignore"):
        cb = torch.round(t * (127.0 / rs.unsqueeze(-1)))
    cb[rs == 0] = 0  # all-zero row: 0 * inf is NaN; bitsandbytes' CUDA __float2int_rn(NaN) gives 0
    return cb.to(torch.int8).numpy(), rowmax


# ---------------------------------------------------------------- inputs

rng = np.random.default_rng(20240611)


def normal(rows, cols, scale=0.02):
    return (rng.standard_normal(rows * cols) * scale).astype(F32)


def with_outliers(x):
    idx = rng.choice(x.size, size=max(1, x.size // 97), replace=False)
    x[idx] *= F32(40.0)
    return x


def nf4_ties(blocksize):
    """Blocks whose absmax is 1 or 2 (exact reciprocals), holding every NF4 midpoint, its float neighbours and the
    table values, in both signs; odd length."""
    vals = []
    for scale in (F32(1.0), F32(2.0), F32(0.5)):
        block = [scale]
        for m in NF4_MIDPOINTS:
            block += [m * scale, np.nextafter(m, F32(2)) * scale, np.nextafter(m, F32(-2)) * scale]
        block += [F32(0.0), F32(-0.0)]
        block = block[:blocksize] + [F32(0)] * (blocksize - len(block))
        vals += block
    vals += [F32(-1.0), NF4_MIDPOINTS[7], NF4_MIDPOINTS[0]]  # odd partial last block
    return np.array(vals, dtype=F32)


def fp4_ties(blocksize):
    vals = []
    for scale in (F32(1.0), F32(-4.0)):
        block = [scale]
        for t in FP4_THRESHOLDS:
            for v in (t, np.nextafter(t, F32(2)), np.nextafter(t, F32(-2))):
                block += [v * scale, -v * scale]
        block += [F32(0.0), F32(-0.0)]
        block = block[:blocksize] + [F32(0)] * (blocksize - len(block))
        vals += block
    vals += [F32(0.25), F32(-0.25), F32(1 / 6)]
    return np.array(vals, dtype=F32)


def dynamic_ties():
    """Every float32 midpoint of the signed dynamic map (absmax 1 via the leading 1.0), plus code values."""
    c = DYNAMIC_MAP
    mids = ((c[:-1] + c[1:]) * F32(0.5)).astype(F32)
    vals = np.concatenate([[F32(1.0)], mids, c, [F32(-1.0), F32(0.9999), F32(-0.9999)]]).astype(F32)
    return vals


def zero_block(x, start, length):
    x[start:start + length] = 0
    return x


def to_dtype(x, dtype):
    if dtype == "F32":
        return x
    t = torch.from_numpy(x).to(torch.bfloat16 if dtype == "BF16" else torch.float16)
    return t.to(torch.float32).numpy()


def input_bytes(x, dtype):
    if dtype == "F32":
        return x.astype("<f4").tobytes()
    if dtype == "F16":
        return x.astype("<f2").tobytes()
    t = torch.from_numpy(x).to(torch.bfloat16)
    return t.view(torch.int16).numpy().astype("<i2").tobytes()


# ---------------------------------------------------------------- cases

def four_bit_cases():
    c = []
    c.append(("nf4_bs64_odd", "nf4", 64, False, 7, 37, normal(7, 37), "F32"))
    c.append(("fp4_bs64_odd", "fp4", 64, False, 7, 37, normal(7, 37), "F32"))
    c.append(("nf4_bs32_prime", "nf4", 32, False, 1, 1009, with_outliers(normal(1, 1009, 1.0)), "F32"))
    c.append(("fp4_bs32_prime", "fp4", 32, False, 1, 1009, with_outliers(normal(1, 1009, 1.0)), "F32"))
    x = zero_block(normal(13, 100, 0.5), 128, 128)
    x[rng.choice(x.size, 40, replace=False)] = 0
    c.append(("nf4_bs128_zero_block", "nf4", 128, False, 13, 100, x, "F32"))
    c.append(("fp4_bs128_zero_block", "fp4", 128, False, 13, 100, x.copy(), "F32"))
    c.append(("nf4_bs4096", "nf4", 4096, False, 3, 4501, normal(3, 4501, 0.05), "F32"))
    c.append(("fp4_bs4096", "fp4", 4096, False, 3, 4501, normal(3, 4501, 0.05), "F32"))
    t = nf4_ties(64)
    c.append(("nf4_ties_bs64", "nf4", 64, False, 1, t.size, t, "F32"))
    t = fp4_ties(64)
    c.append(("fp4_ties_bs64", "fp4", 64, False, 1, t.size, t, "F32"))
    c.append(("nf4_all_zero_odd", "nf4", 64, False, 1, 5, np.zeros(5, dtype=F32), "F32"))
    c.append(("fp4_all_zero_odd", "fp4", 64, False, 1, 5, np.zeros(5, dtype=F32), "F32"))
    c.append(("nf4_bf16_bs64", "nf4", 64, False, 9, 23, to_dtype(normal(9, 23), "BF16"), "BF16"))
    c.append(("fp4_f16_bs128", "fp4", 128, False, 5, 51, to_dtype(normal(5, 51), "F16"), "F16"))
    # double quantization: several nested blocks of 256 scales, a partial last one
    c.append(("nf4_dq_bs64", "nf4", 64, True, 67, 301, normal(67, 301), "F32"))   # 316 blocks
    c.append(("nf4_dq_bs32", "nf4", 32, True, 97, 101, with_outliers(normal(97, 101)), "F32"))  # 307 blocks
    c.append(("fp4_dq_bs128", "fp4", 128, True, 129, 257, normal(129, 257), "F32"))  # 260 blocks
    c.append(("nf4_dq_bs64_large", "nf4", 64, True, 257, 263, normal(257, 263), "F32"))  # > one 65536 chunk
    c.append(("nf4_dq_single_block", "nf4", 64, True, 1, 50, normal(1, 50), "F32"))  # 1 block: centered 0
    x = np.tile(np.array([0.5, -0.25] * 32, dtype=F32), 300)  # 300 blocks, all absmax 0.5
    c.append(("nf4_dq_equal_absmax", "nf4", 64, True, 300, 64, x, "F32"))
    return c


def blockwise8_cases():
    c = []
    c.append(("int8_bs4096", 4096, 5, 1999, normal(5, 1999, 0.1), "F32"))
    c.append(("int8_bs256_odd", 256, 3, 333, with_outliers(normal(3, 333, 1.0)), "F32"))
    t = dynamic_ties()
    c.append(("int8_ties_bs512", 512, 1, t.size, t, "F32"))
    c.append(("int8_bs64_zero_block", 64, 4, 50, zero_block(normal(4, 50), 64, 64), "F32"))
    c.append(("int8_bs128_f16", 128, 3, 71, to_dtype(normal(3, 71), "F16"), "F16"))
    return c


def rowwise_cases():
    c = []
    w = normal(11, 37, 0.3).reshape(11, 37)
    w[3] = 0  # all-zero row
    w[5, :] = (np.arange(37, dtype=F32) - F32(18)) + F32(0.5)  # rowmax 18.5 -> not exact ties
    w[6, :] = 0
    w[6, :12] = np.array([127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 125.5, -126.5, 63.5, -64.5, 3.5], dtype=F32)  # scale 1
    w[7, :4] = np.array([-254, 1, 3, 5], dtype=F32)  # scale 0.5: x*0.5 ties at .5
    c.append(("int8_rowwise", 11, 37, w.reshape(-1), "F32"))
    c.append(("int8_rowwise_bf16", 4, 19, to_dtype(normal(4, 19, 2.0), "BF16"), "BF16"))
    return c


def write(name, suffix, arr_bytes):
    fn = f"{name}.{suffix}.bin"
    with open(os.path.join(OUT, fn), "wb") as f:
        f.write(arr_bytes)
    return fn


def bits(f):
    return int(np.array([f], dtype=F32).view(np.uint32)[0])


def main():
    os.makedirs(OUT, exist_ok=True)
    for fn in os.listdir(OUT):
        if fn.endswith(".bin") or fn == "manifest.json":
            os.remove(os.path.join(OUT, fn))
    manifest = {"generator": "quant/src/test/python/gen_quant_golden.py", "torch": torch.__version__,
                "dynamic_map": write("dynamic_map_signed", "f32", DYNAMIC_MAP.astype("<f4").tobytes()),
                "cases": []}
    for name, kind, bs, dq, rows, cols, x, dtype in four_bit_cases():
        assert x.size == rows * cols, name
        packed, absmax = quantize_4bit(x, bs, kind)
        case = {"name": name, "format": kind.upper(), "blocksize": bs, "double_quant": dq, "rows": rows,
                "cols": cols, "input_dtype": dtype, "input": write(name, "input", input_bytes(x, dtype)),
                "codes": write(name, "codes", packed.tobytes()),
                "absmax": write(name, "absmax", absmax.astype("<f4").tobytes())}
        if dq:
            qabsmax, nested, offset, offset_f64 = double_quant(absmax)
            case.update({"qabsmax": write(name, "qabsmax", qabsmax.tobytes()),
                         "nested_absmax": write(name, "nested_absmax", nested.astype("<f4").tobytes()),
                         "offset_bits": bits(offset), "offset_f64_mean_bits": bits(offset_f64)})
        manifest["cases"].append(case)
    for name, bs, rows, cols, x, dtype in blockwise8_cases():
        codes, absmax = quantize_blockwise8(x, bs)
        manifest["cases"].append({"name": name, "format": "INT8_BLOCKWISE", "blocksize": bs, "double_quant": False,
                                  "rows": rows, "cols": cols, "input_dtype": dtype,
                                  "input": write(name, "input", input_bytes(x, dtype)),
                                  "codes": write(name, "codes", codes.tobytes()),
                                  "absmax": write(name, "absmax", absmax.astype("<f4").tobytes())})
    for name, rows, cols, x, dtype in rowwise_cases():
        cb, scb = rowwise_int8(x.reshape(rows, cols))
        manifest["cases"].append({"name": name, "format": "INT8_ROWWISE", "rows": rows, "cols": cols,
                                  "input_dtype": dtype, "input": write(name, "input", input_bytes(x, dtype)),
                                  "codes": write(name, "codes", cb.astype(np.int8).tobytes()),
                                  "absmax": write(name, "absmax", scb.astype("<f4").tobytes())})
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    for c in manifest["cases"]:
        if "offset_bits" in c and c["offset_bits"] != c["offset_f64_mean_bits"]:
            print(f"note: {c['name']}: torch.mean offset {c['offset_bits']:08x} != rounded f64 mean "
                  f"{c['offset_f64_mean_bits']:08x}")
    total = sum(os.path.getsize(os.path.join(OUT, fn)) for fn in os.listdir(OUT))
    print(f"wrote {len(manifest['cases'])} cases, {total} bytes, to {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
