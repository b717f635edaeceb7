#!/usr/bin/python3
"""Re-reads the committed golden files the way a consumer (the Java tests) would and checks them:

- every .safetensors file: header is JSON starting with '{', padded with spaces to a multiple of 8,
  `__metadata__.format == "pt"`, data buffer fully covered (st_io.load_file validates that);
- each model folder: rebuilds the model from config.json + model.safetensors on disk and reproduces
  expected.safetensors (logits, hidden states, greedy, loss);
- expected_nf4 / expected_int8: rebuilds the weights ONLY from the serialized `bnb.*` state
  (unpack nibbles, dequantize the double-quantized absmax with nested_quant_map + nested_offset from
  the quant_state JSON; CB * SCB / 127 for int8), checks them against `deq.*`, and reproduces the
  expected logits.

    /usr/bin/python3 runtime/src/test/python/verify_reference.py
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference_models as R  # noqa: E402
import st_io  # noqa: E402


def check_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        h = f.read(n)
    assert n % 8 == 0 and h[:1] == b"{", path
    assert json.loads(h.decode("utf-8"))["__metadata__"]["format"] == "pt", path


def decode_nf4(t, name):
    qs = json.loads(bytes(t[name + ".weight.quant_state.bitsandbytes__nf4"]).decode("utf-8"))
    assert qs["quant_type"] == "nf4" and qs["nested_dtype"] == "float32"
    shape = qs["shape"]
    n = int(np.prod(shape))
    codes = (np.unpackbits(t[name + ".weight"].reshape(-1)[:, None], axis=1)
             .reshape(-1, 2, 4) @ np.array([8, 4, 2, 1])).reshape(-1)[:n]
    qabs = t[name + ".weight.absmax"].astype(np.int64)
    nested = t[name + ".weight.nested_absmax"]
    nblk = np.arange(qabs.size) // qs["nested_blocksize"]
    absmax = (t[name + ".weight.nested_quant_map"][qabs] * nested[nblk]).astype(np.float32)
    absmax = (absmax + np.float32(qs["nested_offset"])).astype(np.float32)
    blk = np.arange(n) // qs["blocksize"]
    return (t[name + ".weight.quant_map"][codes] * absmax[blk]).astype(np.float32).reshape(shape)


def decode_int8(t, name):
    cb = t[name + ".weight"].astype(np.float32)
    scb = t[name + ".SCB"].astype(np.float32)
    assert t[name + ".weight_format"].shape == () and int(t[name + ".weight_format"]) == 0
    return ((cb * scb[:, None]).astype(np.float32) * np.float32(7.874015718698502e-3)).astype(np.float32)


def compare(exp, model, tag, atol=1e-5):
    worst = 0.0
    k = 0
    while "ids_%d" % k in exp:
        ids = exp["ids_%d" % k].tolist()
        logits, hs = model.forward(ids)
        rows = exp["logits_pos_%d" % k]
        worst = max(worst, float(np.abs(logits[rows].numpy() - exp["logits_%d" % k]).max()))
        worst = max(worst, float(np.abs(hs.numpy() - exp["hs_%d" % k]).max()))
        worst = max(worst, float(np.abs(logits[:, exp["vocab_sel"]].numpy() - exp["logits_sel_%d" % k]).max()))
        k += 1
    g = 0
    while "greedy_prompt_%d" % g in exp:
        out = R.greedy(model, exp["greedy_prompt_%d" % g].tolist(), len(exp["greedy_out_%d" % g]))[0]
        assert out == exp["greedy_out_%d" % g].tolist(), (tag, g)
        g += 1
    assert worst <= atol, (tag, worst)
    return worst


def main():
    ref = R.OUT
    for root, _, files in os.walk(ref):
        for fn in files:
            if fn.endswith(".safetensors"):
                check_header(os.path.join(root, fn))
                st_io.load_file(os.path.join(root, fn))
    for name in ["gpt2-a", "gpt2-b", "bloom-a", "bloom-b", "tiny-gpt2"]:
        d = os.path.join(ref, name)
        if name == "tiny-gpt2":
            cfg = json.load(open(os.path.join(R.TINY_GPT2, "config.json")))
            w, _ = st_io.load_file(os.path.join(R.TINY_GPT2, "model.safetensors"))
            w = {k[len("transformer."):]: v for k, v in w.items()}
        else:
            cfg = json.load(open(os.path.join(d, "config.json")))
            w, _ = st_io.load_file(os.path.join(d, "model.safetensors"))
        arch = cfg["model_type"]
        ctor = R.GPT2 if arch == "gpt2" else R.Bloom
        exp, _ = st_io.load_file(os.path.join(d, "expected.safetensors"))
        msg = ["%s f32 %.2e" % (name, compare(exp, ctor(w, cfg), name))]
        for kind in ("nf4", "int8"):
            p = os.path.join(d, "expected_%s.safetensors" % kind)
            if not os.path.exists(p):
                continue
            q, _ = st_io.load_file(p)
            qw = dict(w)
            for key in [k for k in q if k.startswith("bnb.") and k.endswith(".weight")]:
                mod = key[len("bnb."):-len(".weight")]
                lin = decode_nf4(q, key[:-len(".weight")]) if kind == "nf4" else decode_int8(q, key[:-len(".weight")])
                if "deq." + mod + ".weight" in q:
                    assert np.array_equal(lin, q["deq." + mod + ".weight"]), (name, kind, mod)
                qw[mod + ".weight"] = np.ascontiguousarray(lin.T) if arch == "gpt2" else lin
            msg.append("%s %.2e" % (kind, compare(q, ctor(qw, cfg), name + "/" + kind)))
        print("  ".join(msg))
    print("OK")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
