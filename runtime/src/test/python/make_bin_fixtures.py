#!/usr/bin/env python3
"""Writes the pytorch_model.bin fixtures that PytorchBinStoreTest and HfModelDirTest read.

Run from the repository root with a python that has torch (Debian's python3-torch 1.13 was used):

    /usr/bin/python3 runtime/src/test/python/make_bin_fixtures.py

Output: runtime/src/test/resources/checkpoint/
  good_zip.bin, good_legacy.bin   one state_dict (F32, F16, BF16, I64, a storage offset, two tensors sharing a
                                  storage) in torch.save's zip and legacy (torch < 1.6) layouts;
                                  good.expected.json holds its names, dtypes, shapes and values
  sharded_bin/                    config.json + pytorch_model.bin.index.json + two zip shards (a 1-layer GPT-2 shape)
  evil_os_system.bin              zip whose data.pkl REDUCEs os.system (GLOBAL opcode)
  evil_builtins_eval.bin          legacy file whose state_dict pickle REDUCEs builtins.eval
  evil_stack_global.bin           zip whose data.pkl uses protocol 4 STACK_GLOBAL for posix.system
  evil_nested_global.bin          good_zip.bin's storages with a data.pkl calling subprocess.check_output
  truncated_zip.bin               good_zip.bin cut in half (no central directory)
  truncated_legacy.bin            good_legacy.bin without its last 10 bytes (last storage cut short)
  compressed_entry.bin            good_zip.bin rewritten with DEFLATE entries
  missing_storage.bin             good_zip.bin without the record of storage 0
  noncontiguous.bin               a transposed (non-contiguous) tensor
  not_a_state_dict.bin            torch.save of a plain list of tensors
  bad_magic.bin                   a legacy-looking pickle stream with the wrong magic number

The evil payloads would write the file /tmp/qlora4j-pwned-<name> if they ever ran; the tests check it never appears.
"""
import collections
import io
import json
import os
import pickle
import shutil
import zipfile

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "checkpoint")
OUT = os.path.normpath(OUT)


def path(name):
    return os.path.join(OUT, name)


def good_state_dict():
    big = torch.arange(10, dtype=torch.int64) * 3 - 7
    base = torch.tensor([[0.5, -1.25, 2.0], [3.75, -0.125, 1e-3]], dtype=torch.float32)
    shared = torch.arange(12, dtype=torch.float32) / 4 - 1  # one storage, two views
    sd = collections.OrderedDict()
    sd["transformer.wte.weight"] = base
    sd["half"] = torch.tensor([1.0, -2.5, 0.0999755859375, 65504.0], dtype=torch.float16)
    sd["bf16"] = torch.tensor([[1.0, -3.0], [0.0078125, 256.0]], dtype=torch.bfloat16)
    sd["ints"] = big[3:7]  # storage offset 3 into a 10-element storage
    sd["shared.a"] = shared[:6].view(2, 3)
    sd["shared.b"] = shared[6:].view(3, 2)  # same storage, offset 6
    sd["scalar"] = torch.tensor(4.5)
    sd["empty"] = torch.zeros(0, 3)
    return sd


def expected(sd):
    out = []
    for k, v in sd.items():
        dt = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}[v.dtype]
        vals = v.reshape(-1).tolist() if dt == "I64" else v.float().reshape(-1).tolist()
        out.append({"name": k, "dtype": dt, "shape": list(v.shape), "values": vals})
    return out


class Evil:
    """Pickles as a call to fn(arg): what a malicious checkpoint does."""

    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return self.fn, (self.arg,)


def marker(name):
    return "/tmp/qlora4j-pwned-" + name


def write_zip(target, records, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(target, "w", compression=compression) as z:
        for name, data in records:
            z.writestr(zipfile.ZipInfo(name), data, compress_type=compression)


def zip_records(src):
    with zipfile.ZipFile(src) as z:
        return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def legacy_header():
    buf = io.BytesIO()
    pickle.dump(0x1950a86a20f9469cfc6c, buf, protocol=2)
    pickle.dump(1001, buf, protocol=2)
    pickle.dump({"protocol_version": 1001, "little_endian": True,
                 "type_sizes": {"short": 2, "int": 4, "long": 4}}, buf, protocol=2)
    return buf.getvalue()


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    sd = good_state_dict()
    torch.save(sd, path("good_zip.bin"))
    torch.save(sd, path("good_legacy.bin"), _use_new_zipfile_serialization=False)
    with open(path("good.expected.json"), "w") as f:
        json.dump(expected(sd), f, indent=1)
    # check the files load back in torch as saved
    for n in ("good_zip.bin", "good_legacy.bin"):
        back = torch.load(path(n))
        assert list(back) == list(sd) and all(torch.equal(back[k], sd[k]) for k in sd), n

    # sharded: a 1-layer GPT-2 (C=4) split over two zip shards
    d = path("sharded_bin")
    os.makedirs(d)
    g = torch.Generator().manual_seed(0)
    C, V, P = 4, 11, 8
    shapes = collections.OrderedDict([
        ("transformer.wte.weight", (V, C)), ("transformer.wpe.weight", (P, C)),
        ("transformer.h.0.ln_1.weight", (C,)), ("transformer.h.0.ln_1.bias", (C,)),
        ("transformer.h.0.attn.c_attn.weight", (C, 3 * C)), ("transformer.h.0.attn.c_attn.bias", (3 * C,)),
        ("transformer.h.0.attn.c_proj.weight", (C, C)), ("transformer.h.0.attn.c_proj.bias", (C,)),
        ("transformer.h.0.ln_2.weight", (C,)), ("transformer.h.0.ln_2.bias", (C,)),
        ("transformer.h.0.mlp.c_fc.weight", (C, 4 * C)), ("transformer.h.0.mlp.c_fc.bias", (4 * C,)),
        ("transformer.h.0.mlp.c_proj.weight", (4 * C, C)), ("transformer.h.0.mlp.c_proj.bias", (C,)),
        ("transformer.ln_f.weight", (C,)), ("transformer.ln_f.bias", (C,)),
    ])
    tensors = collections.OrderedDict((k, torch.randn(*s, generator=g)) for k, s in shapes.items())
    names = list(tensors)
    shard1 = collections.OrderedDict((k, tensors[k]) for k in names[:7])
    shard2 = collections.OrderedDict((k, tensors[k]) for k in names[7:])
    torch.save(shard1, os.path.join(d, "pytorch_model-00001-of-00002.bin"))
    torch.save(shard2, os.path.join(d, "pytorch_model-00002-of-00002.bin"))
    weight_map = {k: "pytorch_model-00001-of-00002.bin" for k in shard1}
    weight_map.update({k: "pytorch_model-00002-of-00002.bin" for k in shard2})
    with open(os.path.join(d, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": sum(t.numel() * 4 for t in tensors.values())},
                   "weight_map": weight_map}, f, indent=1)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"model_type": "gpt2", "n_embd": C, "n_head": 2, "n_layer": 1, "n_positions": P,
                   "vocab_size": V}, f, indent=1)
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump({k: {"shape": list(t.shape), "values": t.reshape(-1).tolist()} for k, t in tensors.items()}, f)

    # malicious pickles
    write_zip(path("evil_os_system.bin"), [
        ("archive/data.pkl", pickle.dumps({"w": Evil(os.system, "touch " + marker("os_system"))}, protocol=2)),
        ("archive/version", b"3\n")])
    body = pickle.dumps(collections.OrderedDict(
        w=Evil(eval, "__import__('os').system('touch " + marker("eval") + "')")), protocol=2)
    with open(path("evil_builtins_eval.bin"), "wb") as f:
        f.write(legacy_header() + body + pickle.dumps([], protocol=2))
    stack_global = pickle.dumps({"w": Evil(os.system, "touch " + marker("stack_global"))}, protocol=4)
    assert b"\x93" in stack_global  # STACK_GLOBAL
    write_zip(path("evil_stack_global.bin"), [("archive/data.pkl", stack_global), ("archive/version", b"3\n")])
    import subprocess
    mixed = zip_records(path("good_zip.bin"))
    # the good archive's storage records with a data.pkl that calls subprocess.check_output
    evil_pkl = pickle.dumps((Evil(subprocess.check_output, ["touch", marker("nested")]),), protocol=2)
    assert evil_pkl.endswith(b".")
    write_zip(path("evil_nested_global.bin"), [(n, evil_pkl if n.endswith("data.pkl") else b)
                                               for n, b in mixed])

    # broken containers
    data = open(path("good_zip.bin"), "rb").read()
    open(path("truncated_zip.bin"), "wb").write(data[: len(data) // 2])
    data = open(path("good_legacy.bin"), "rb").read()
    open(path("truncated_legacy.bin"), "wb").write(data[:-10])
    write_zip(path("compressed_entry.bin"), zip_records(path("good_zip.bin")), zipfile.ZIP_DEFLATED)
    write_zip(path("missing_storage.bin"), [(n, b) for n, b in zip_records(path("good_zip.bin"))
                                            if not n.endswith("/data/0")])
    torch.save({"t": torch.arange(6, dtype=torch.float32).view(2, 3).t()}, path("noncontiguous.bin"))
    torch.save([torch.ones(2)], path("not_a_state_dict.bin"))
    buf = io.BytesIO()
    pickle.dump(12345, buf, protocol=2)
    pickle.dump(1001, buf, protocol=2)
    open(path("bad_magic.bin"), "wb").write(buf.getvalue())
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
