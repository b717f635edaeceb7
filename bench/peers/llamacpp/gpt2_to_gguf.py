#!/usr/bin/env python3
"""Writes a Hugging Face GPT-2 checkpoint (model.safetensors + config.json, fp32) as a GGUF file for llama.cpp,
the way llama.cpp's convert_hf_to_gguf.py does for GPT-2 (Conv1D weights transposed to [out, in], the same tensor
names, the GPT-2 byte-level BPE vocabulary and merges), with the linear weights in the type asked for.

  gpt2_to_gguf.py MODEL_DIR TOKENIZER_DIR OUT.gguf --linear q4_0|q8_0|f16|f32 [--embedding f16|f32|q8_0]

Quantization uses ggml's own reference code as shipped in the `gguf` Python package (gguf-py, from
ggml-org/llama.cpp): Q4_0 blocks of 32, d = max / -8, nibbles j and j + 16 in one byte (SPECS.md §5).
Needs numpy and gguf (the wheel; --no-deps is enough). Only the benchmark peer uses this: no test needs Python.
"""
import argparse
import json
import struct
import sys

import numpy as np
import gguf

TYPES = {"q4_0": gguf.GGMLQuantizationType.Q4_0, "q8_0": gguf.GGMLQuantizationType.Q8_0,
         "f16": gguf.GGMLQuantizationType.F16, "f32": gguf.GGMLQuantizationType.F32}
FILE_TYPES = {"q4_0": gguf.LlamaFileType.MOSTLY_Q4_0, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
              "f16": gguf.LlamaFileType.MOSTLY_F16, "f32": gguf.LlamaFileType.ALL_F32}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    header.pop("__metadata__", None)
    out = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            sys.exit(f"{path}: tensor {name} is {t['dtype']}; this converter reads an fp32 checkpoint")
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype="<f4").reshape(t["shape"])
    return out


def add(writer, name, arr, kind):
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    qtype = TYPES[kind]
    if qtype == gguf.GGMLQuantizationType.F32:
        writer.add_tensor(name, arr)
    elif qtype == gguf.GGMLQuantizationType.F16:
        writer.add_tensor(name, arr.astype(np.float16))
    else:
        writer.add_tensor(name, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model_dir")
    p.add_argument("tokenizer_dir")
    p.add_argument("out")
    p.add_argument("--linear", choices=sorted(TYPES), default="q4_0")
    p.add_argument("--embedding", choices=["f16", "f32", "q8_0"], default="f16")
    a = p.parse_args()
    cfg = json.load(open(f"{a.model_dir}/config.json"))
    t = read_safetensors(f"{a.model_dir}/model.safetensors")
    pre = "transformer." if "transformer.wte.weight" in t else ""

    w = gguf.GGUFWriter(a.out, "gpt2")
    w.add_name("gpt2-124m-random")
    w.add_context_length(cfg["n_positions"])
    w.add_embedding_length(cfg["n_embd"])
    w.add_feed_forward_length(cfg.get("n_inner") or 4 * cfg["n_embd"])
    w.add_block_count(cfg["n_layer"])
    w.add_head_count(cfg["n_head"])
    w.add_layer_norm_eps(cfg["layer_norm_epsilon"])
    w.add_file_type(FILE_TYPES[a.linear])

    enc = json.load(open(f"{a.tokenizer_dir}/encoder.json", encoding="utf-8"))
    tokens = [None] * len(enc)
    for s, i in enc.items():
        tokens[i] = s
    merges = [line for line in open(f"{a.tokenizer_dir}/vocab.bpe", encoding="utf-8").read().split("\n")[1:] if line]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.NORMAL] * len(tokens))
    w.add_token_merges(merges)
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])

    add(w, "token_embd.weight", t[pre + "wte.weight"], a.embedding)  # tied: llama.cpp reuses it as the head
    add(w, "position_embd.weight", t[pre + "wpe.weight"], "f32")
    for i in range(cfg["n_layer"]):
        h = f"{pre}h.{i}."
        for hf, gg in (("ln_1", "attn_norm"), ("ln_2", "ffn_norm")):
            add(w, f"blk.{i}.{gg}.weight", t[h + hf + ".weight"], "f32")
            add(w, f"blk.{i}.{gg}.bias", t[h + hf + ".bias"], "f32")
        for hf, gg in (("attn.c_attn", "attn_qkv"), ("attn.c_proj", "attn_output"), ("mlp.c_fc", "ffn_up"),
                       ("mlp.c_proj", "ffn_down")):
            add(w, f"blk.{i}.{gg}.weight", t[h + hf + ".weight"].T, a.linear)  # Conv1D [in, out] -> [out, in]
            add(w, f"blk.{i}.{gg}.bias", t[h + hf + ".bias"], "f32")
    add(w, "output_norm.weight", t[pre + "ln_f.weight"], "f32")
    add(w, "output_norm.bias", t[pre + "ln_f.bias"], "f32")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
