#!/usr/bin/python3
"""Independent PyTorch reference for qlora4j's LoRA training (PEFT math, SPECS.md section 3).

Run from the repository root (torch 1.13 CPU + numpy; Debian's /usr/bin/python3):

    /usr/bin/python3 lora/src/test/python/lora_reference.py            # writes the goldens
    /usr/bin/python3 lora/src/test/python/lora_reference.py --verify   # regenerates into a temp dir
                                                                        # and byte-compares

It reads the reference models runtime/src/test/resources/reference/{gpt2-a,bloom-a}/{config.json,
model.safetensors} (written by runtime/src/test/python/reference_models.py) and writes, for each model and
base variant (F32 weights, and NF4+DQ = linear weights replaced by their bitsandbytes NF4 + double-quant
dequantization, blocksize 64, exactly as reference_models.quantize_model does for expected_nf4),
lora/src/test/resources/lora-reference/<model>-<f32|nf4>/:

    adapter/adapter_config.json, adapter/adapter_model.safetensors   the initial PEFT adapter
    expected.safetensors                                              batch, loss, grads, 10-step AdamW run
    expected.json                                                     description + checks + sha256s

plus lora-reference/MANIFEST.json. See lora/src/test/python/README.md.

The model math is a batched re-implementation of transformers' GPT2LMHeadModel / BloomForCausalLM
eval-mode forward (all dropouts off) with PEFT LoRA added on the target linears:
    y = base(x) + (x @ A^T @ B^T) * (lora_alpha / r)
It is checked before anything is written against (a) reference_models.GPT2/Bloom (the runtime golden
implementation, itself cross-checked against a naive float64 loop implementation) run on MERGED weights
W + s*B*A, (b) finite differences in float64 for a few entries of every variant's gradients.
Nothing here calls or reads the Java code.
"""
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
RUNTIME_PY = os.path.join(REPO, "runtime", "src", "test", "python")
sys.path.insert(0, RUNTIME_PY)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import reference_models as rm  # noqa: E402  (sets torch.set_num_threads(1))
import st_io  # noqa: E402

torch.set_num_threads(1)  # deterministic reductions

REF_MODELS = os.path.join(REPO, "runtime", "src", "test", "resources", "reference")
OUT = os.path.join(REPO, "lora", "src", "test", "resources", "lora-reference")

R = 8
LORA_ALPHA = 16
SCALING = LORA_ALPHA / R
B_STD = 0.02
BATCH, SEQ = 2, 16
EXTRA_IGNORED_PER_ROW = 2
STEPS = 10
LR, BETAS, EPS, WD = 1e-3, (0.9, 0.999), 1e-8, 0.0
IGNORE = -100
PEFT_VERSION = "0.19.1"

MODELS = {
    # name: (arch, adapter/batch seed, PEFT target_modules, module paths inside a block that they match)
    "gpt2-a": ("gpt2", 7101, ["c_attn", "c_proj", "c_fc"],
               ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]),
    "bloom-a": ("bloom", 7303, ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
                ["self_attention.query_key_value", "self_attention.dense", "mlp.dense_h_to_4h",
                 "mlp.dense_4h_to_h"]),
}


def peft_suffix_match(target_modules, key):
    """PEFT check_target_module_exists for a list: key == t or key.endswith('.' + t)."""
    return any(key == t or key.endswith("." + t) for t in target_modules)


# ============================================================================ model (batched, LoRA, any dtype)

class LoraLM:
    """Batched eval-mode GPT-2 / BLOOM causal LM with PEFT LoRA on the target linears.

    weights: HF names without `transformer.` (numpy F32; GPT-2 Conv1D weights [in, out]).
    lora: dict PEFT tensor name -> torch tensor (may require grad), same dtype as `dtype`.
    """

    def __init__(self, arch, cfg, weights, dtype):
        self.arch, self.cfg, self.dtype = arch, cfg, dtype
        self.w = {k: torch.from_numpy(np.ascontiguousarray(v)).to(dtype) for k, v in weights.items()}
        if arch == "gpt2":
            self.C, self.NH, self.L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
        else:
            self.C, self.NH, self.L = cfg["hidden_size"], cfg["n_head"], cfg["n_layer"]
        self.eps = cfg["layer_norm_epsilon"]

    def ln(self, x, name):
        return F.layer_norm(x, (self.C,), self.w[name + ".weight"], self.w[name + ".bias"], self.eps)

    def linear(self, x, name, lora):
        w, b = self.w[name + ".weight"], self.w[name + ".bias"]
        y = torch.matmul(x, w) + b if self.arch == "gpt2" else F.linear(x, w, b)  # Conv1D: W [in, out]
        key = "base_model.model.transformer.%s" % name
        if lora is not None and key + ".lora_A.weight" in lora:
            a, bb = lora[key + ".lora_A.weight"], lora[key + ".lora_B.weight"]
            y = y + torch.matmul(torch.matmul(x, a.t()), bb.t()) * SCALING
        return y

    def logits(self, ids, lora):
        """ids: LongTensor [B, T] -> logits [B, T, V]."""
        w, C, NH, dt = self.w, self.C, self.NH, self.dtype
        HS = C // NH
        Bn, T = ids.shape
        minval = torch.tensor(torch.finfo(dt).min, dtype=dt)
        if self.arch == "gpt2":
            h = w["wte.weight"][ids] + w["wpe.weight"][torch.arange(T)][None]
            causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
            for i in range(self.L):
                p = "h.%d." % i
                qkv = self.linear(self.ln(h, p + "ln_1"), p + "attn.c_attn", lora)
                q, k, v = qkv.split(C, dim=-1)
                q, k, v = (t.reshape(Bn, T, NH, HS).transpose(1, 2) for t in (q, k, v))  # [B, NH, T, HS]
                s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(HS)
                s = torch.where(causal, s, minval)
                o = torch.matmul(torch.softmax(s, dim=-1), v).transpose(1, 2).reshape(Bn, T, C)
                h = h + self.linear(o, p + "attn.c_proj", lora)
                m = rm.gelu_new(self.linear(self.ln(h, p + "ln_2"), p + "mlp.c_fc", lora))
                h = h + self.linear(m, p + "mlp.c_proj", lora)
            h = self.ln(h, "ln_f")
            return torch.matmul(h, w["wte.weight"].t())
        h = self.ln(w["word_embeddings.weight"][ids], "word_embeddings_layernorm")
        alibi = rm.build_alibi(torch.ones(1, T), NH).to(dt)  # [NH, 1, T]: slope * key position
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        for i in range(self.L):
            p = "h.%d." % i
            fused = self.linear(self.ln(h, p + "input_layernorm"), p + "self_attention.query_key_value", lora)
            fused = fused.reshape(Bn, T, NH, 3, HS)  # rows interleaved per head: q, k, v of head 0, ...
            q, k, v = (fused[..., j, :].transpose(1, 2) for j in range(3))  # [B, NH, T, HS]
            s = alibi[None] + torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(HS))
            s = s.masked_fill(causal, minval)
            ctx = torch.matmul(torch.softmax(s, dim=-1), v).transpose(1, 2).reshape(Bn, T, C)
            h = h + self.linear(ctx, p + "self_attention.dense", lora)
            m = rm.bloom_gelu_forward(self.linear(self.ln(h, p + "post_attention_layernorm"),
                                                  p + "mlp.dense_h_to_4h", lora))
            h = h + self.linear(m, p + "mlp.dense_4h_to_h", lora)
        h = self.ln(h, "ln_f")
        return torch.matmul(h, w["word_embeddings.weight"].t())

    def loss(self, ids, targets, lora, per_pos=False):
        lg = self.logits(ids, lora)
        V = lg.shape[-1]
        if per_pos:
            return F.cross_entropy(lg.reshape(-1, V), targets.reshape(-1), ignore_index=IGNORE,
                                   reduction="none").reshape(targets.shape)
        # mean over the non-ignored targets (= sum / count), as HF / torch ignore_index does
        return F.cross_entropy(lg.reshape(-1, V), targets.reshape(-1), ignore_index=IGNORE)


# ============================================================================ adapter, batch

def module_shapes(arch, cfg, weights, mods):
    """[(PEFT module path, in, out)] in model order; in/out of the [out, in] view."""
    out = []
    for i in range(cfg["n_layer"]):
        for m in mods:
            wt = weights["h.%d.%s.weight" % (i, m)]
            fin, fout = (wt.shape[0], wt.shape[1]) if arch == "gpt2" else (wt.shape[1], wt.shape[0])
            out.append(("base_model.model.transformer.h.%d.%s" % (i, m), int(fin), int(fout)))
    return out


def make_adapter(shapes, seed):
    rng = np.random.RandomState(seed)
    t = {}
    for path, fin, fout in shapes:
        bound = 1.0 / math.sqrt(fin)  # kaiming_uniform_(a=sqrt(5)) bound
        t[path + ".lora_A.weight"] = rng.uniform(-bound, bound, size=(R, fin)).astype(np.float32)
        t[path + ".lora_B.weight"] = (rng.standard_normal((fout, R)) * B_STD).astype(np.float32)
    return t


def adapter_config(arch, name, targets):
    """Same 38 keys as PEFT 0.19.1's LoraConfig.save_pretrained (see lora/src/test/resources/adapter)."""
    return {
        "alora_invocation_tokens": None, "alpha_pattern": {}, "arrow_config": None, "auto_mapping": None,
        "base_model_name_or_path": "runtime/src/test/resources/reference/" + name,
        "bias": "none", "corda_config": None, "ensure_weight_tying": False, "eva_config": None,
        "exclude_modules": None, "fan_in_fan_out": arch == "gpt2", "inference_mode": True,
        "init_lora_weights": True, "layer_replication": None, "layers_pattern": None,
        "layers_to_transform": None, "loftq_config": {}, "lora_alpha": LORA_ALPHA, "lora_bias": False,
        "lora_dropout": 0.0, "lora_ga_config": None, "megatron_config": None,
        "megatron_core": "megatron.core", "modules_to_save": None, "peft_type": "LORA",
        "peft_version": PEFT_VERSION, "qalora_group_size": 16, "r": R, "rank_pattern": {}, "revision": None,
        "target_modules": list(targets), "target_parameters": None, "task_type": "CAUSAL_LM",
        "trainable_token_indices": None, "use_bdlora": None, "use_dora": False, "use_qalora": False,
        "use_rslora": False,
    }


def make_batch(vocab, seed):
    """input_ids [B, T]; targets [B, T] aligned per position (targets[b, t] = ids[b, t+1]), -100 at the
    last position and at EXTRA_IGNORED_PER_ROW seeded positions per row; HF-style labels [B, T]."""
    rng = np.random.RandomState(seed + 1)
    ids = rng.randint(0, vocab, size=(BATCH, SEQ)).astype(np.int64)
    targets = np.full((BATCH, SEQ), IGNORE, np.int64)
    targets[:, :-1] = ids[:, 1:]
    for b in range(BATCH):
        for t in sorted(rng.choice(SEQ - 1, EXTRA_IGNORED_PER_ROW, replace=False).tolist()):
            targets[b, t] = IGNORE
    labels = ids.copy()
    labels[:, 1:] = targets[:, :-1]  # HF: loss of logits[:, t] against labels[:, t + 1]
    return ids, targets, labels


# ============================================================================ computations

def to_torch(adapter, dtype, grad):
    return {k: torch.from_numpy(v.copy()).to(dtype).requires_grad_(grad) for k, v in adapter.items()}


def loss_and_grads(model, ids, targets, adapter):
    lora = to_torch(adapter, model.dtype, True)
    loss = model.loss(ids, targets, lora)
    loss.backward()
    return loss.detach(), {k: v.grad.detach().clone() for k, v in lora.items()}


def finite_difference_check(model64, ids, targets, adapter, grads64, names, seed):
    """Central differences (h = 1e-6, float64) for 3 seeded entries of each named tensor."""
    rng = np.random.RandomState(seed)
    base = to_torch(adapter, torch.float64, False)
    out, worst = [], 0.0
    for name in names:
        g = grads64[name]
        gmax = float(g.abs().max())
        picks = [tuple(int(i) for i in np.unravel_index(int(g.abs().argmax()), g.shape))]
        picks += [tuple(int(rng.randint(0, s)) for s in g.shape) for _ in range(2)]
        for idx in picks:
            h = 1e-6
            vals = []
            for sgn in (1.0, -1.0):
                lora = {k: v.clone() for k, v in base.items()}
                lora[name][idx] += sgn * h
                with torch.no_grad():
                    vals.append(float(model64.loss(ids, targets, lora)))
            fd = (vals[0] - vals[1]) / (2 * h)
            ag = float(g[idx])
            err = abs(fd - ag) / gmax
            worst = max(worst, err)
            out.append({"tensor": name, "index": list(idx), "autograd": ag, "finite_diff": fd,
                        "abs_err_over_max_abs_grad": err})
    assert worst < 1e-6, "finite differences disagree with autograd: %g" % worst
    return out, worst


def merged_check(arch, cfg, weights, adapter, ids, targets, model32):
    """reference_models' GPT2/Bloom (batch 1, per row) on W + s*B*A must give the same per-position loss."""
    merged = dict(weights)
    for key in adapter:
        if not key.endswith(".lora_A.weight"):
            continue
        path = key[len("base_model.model.transformer."):-len(".lora_A.weight")]
        a = adapter[key].astype(np.float64)
        b = adapter[key.replace("lora_A", "lora_B")].astype(np.float64)
        delta = SCALING * (b @ a)  # [out, in]
        w = weights[path + ".weight"].astype(np.float64)
        merged[path + ".weight"] = (w + (delta.T if arch == "gpt2" else delta)).astype(np.float32)
    ctor = rm.GPT2 if arch == "gpt2" else rm.Bloom
    ref = ctor(merged, cfg)
    with torch.no_grad():
        ours = model32.loss(torch.from_numpy(ids), torch.from_numpy(targets),
                            to_torch(adapter, torch.float32, False), per_pos=True).numpy()
    worst = 0.0
    for b in range(ids.shape[0]):
        lg, _ = ref.forward(ids[b].tolist())
        for t in range(ids.shape[1]):
            if targets[b, t] != IGNORE:
                e = float(F.cross_entropy(lg[t:t + 1], torch.tensor([int(targets[b, t])])))
                worst = max(worst, abs(e - float(ours[b, t])) / abs(e))
    assert worst < 2e-5, "LoRA forward vs merged reference_models forward: %g" % worst
    return worst


def train(model, ids, targets, adapter, steps, grad_noise=0.0, noise_seed=0):
    """torch.optim.AdamW on the LoRA tensors only, constant LR, no clipping, same batch every step.
    Returns (losses before each step [steps], loss after the last step, final tensors, optimizer state)."""
    lora = to_torch(adapter, model.dtype, True)
    names = sorted(lora)
    opt = torch.optim.AdamW([lora[k] for k in names], lr=LR, betas=BETAS, eps=EPS, weight_decay=WD,
                            amsgrad=False, foreach=False, maximize=False)
    gen = torch.Generator().manual_seed(noise_seed)
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = model.loss(ids, targets, lora)
        losses.append(float(loss))
        loss.backward()
        if grad_noise:
            for k in names:
                g = lora[k].grad
                g.add_(torch.randn(g.shape, generator=gen, dtype=g.dtype) * (grad_noise * float(g.abs().max())))
        opt.step()
    with torch.no_grad():
        last = float(model.loss(ids, targets, lora))
    state = {k: opt.state[lora[k]] for k in names}
    return losses, last, {k: lora[k].detach().clone() for k in names}, state


# ============================================================================ outputs

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def f32(x):
    return np.asarray(x, dtype=np.float32)


def rel_to_max(a, e):
    """max |a - e| / max |e| over a tensor."""
    a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
    return float(np.abs(a - e).max() / np.abs(e).max())


def describe(arch):
    conv = (" (GPT-2 Conv1D: in/out of the [out, in] view, i.e. c_attn in=C out=3C; fan_in_fan_out=true)"
            if arch == "gpt2" else "")
    return {
        "input_ids": "I64 [B, T]: token ids; positions 0..T-1 in every row, no padding, no attention mask",
        "targets": "I64 [B, T]: target id for each position, already shifted: targets[b, t] = input_ids[b, t+1], "
                   "-100 (ignore_index) at t = T-1 and at a few extra positions (listed in batch.ignored)",
        "labels": "I64 [B, T]: the same targets in HF `labels` form (labels[:, 1:] = targets[:, :-1], "
                  "labels[:, 0] = input_ids[:, 0] is never used); only for a HF-style loss path",
        "loss": "F32 [1]: mean cross-entropy over the non-ignored targets (sum / count), float64 computation",
        "loss_f32": "F32 [1]: the same computed in float32",
        "loss_per_pos": "F32 [B, T]: per-position cross-entropy (float64 computation), 0 where ignored",
        "loss_base": "F32 [1]: loss of the base model alone (no LoRA), float64 computation",
        "<adapter tensor>.grad": "F32, shape of the tensor: d loss / d tensor, float64 computation stored as F32; "
                                 "<adapter tensor> = base_model.model.transformer.h.{i}.<module>.lora_{A,B}.weight, "
                                 "lora_A [r, in], lora_B [out, r]" + conv,
        "<adapter tensor>.grad_f32": "F32: the same gradient computed in float32 (torch, 1 thread)",
        "trajectory_losses": "F32 [%d]: float32 AdamW run, loss BEFORE step k (k = 0..%d), same batch every step"
                             % (STEPS, STEPS - 1),
        "trajectory_final_loss": "F32 [1]: loss after the last step",
        "trajectory_losses_f64": "F32 [%d]: the same run in float64 (information; compare to trajectory_losses)"
                                 % STEPS,
        "final.<adapter tensor>": "F32: adapter tensor after %d float32 AdamW steps" % STEPS,
        "exp_avg.<adapter tensor>": "F32: AdamW first moment after the last step",
        "exp_avg_sq.<adapter tensor>": "F32: AdamW second moment after the last step",
    }


def run_variant(name, variant, arch, cfg, weights, seed, targets_cfg, mods, out_dir):
    vdir = os.path.join(out_dir, "%s-%s" % (name, variant))
    adir = os.path.join(vdir, "adapter")
    os.makedirs(adir, exist_ok=True)
    shapes = module_shapes(arch, cfg, weights, mods)
    adapter = make_adapter(shapes, seed)  # same adapter and batch for the f32 and nf4 variants
    ids, targets, labels = make_batch(cfg["vocab_size"], seed)
    with open(os.path.join(adir, "adapter_config.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(adapter_config(arch, name, targets_cfg), indent=2, sort_keys=True))  # no newline, as PEFT
    st_io.save_file(adapter, os.path.join(adir, "adapter_model.safetensors"))

    model64 = LoraLM(arch, cfg, weights, torch.float64)
    model32 = LoraLM(arch, cfg, weights, torch.float32)
    tids, ttgt = torch.from_numpy(ids), torch.from_numpy(targets)

    loss64, g64 = loss_and_grads(model64, tids, ttgt, adapter)
    loss32, g32 = loss_and_grads(model32, tids, ttgt, adapter)
    with torch.no_grad():
        per_pos = model64.loss(tids, ttgt, to_torch(adapter, torch.float64, False), per_pos=True)
        loss_base = model64.loss(tids, ttgt, None)
    assert abs(float(per_pos.sum()) / int((targets != IGNORE).sum()) - float(loss64)) < 1e-12

    merged_err = merged_check(arch, cfg, weights, adapter, ids, targets, model32)
    L = cfg["n_layer"]
    fd_names = []
    for i in (0, L - 1):
        for m, ab in ((mods[0], "A"), (mods[-1], "B"), (mods[1], "A" if i else "B")):
            fd_names.append("base_model.model.transformer.h.%d.%s.lora_%s.weight" % (i, m, ab))
    fd, fd_worst = finite_difference_check(model64, tids, ttgt, adapter, g64, fd_names, seed + 2)

    losses32, last32, final32, state32 = train(model32, tids, ttgt, adapter, STEPS)
    losses64, last64, final64, _ = train(model64, tids, ttgt, adapter, STEPS)
    # sensitivity of the float32 trajectory to gradient noise of 1e-5 x max|g| (a Java fp32 engine's grads
    # differ from torch's by roughly 1e-6..1e-5 relative): how much slack the 1e-4 tolerance really has
    lossesN, lastN, finalN, _ = train(model32, tids, ttgt, adapter, STEPS, grad_noise=1e-5, noise_seed=seed)

    t = {"input_ids": ids, "targets": targets, "labels": labels,
         "loss": f32([float(loss64)]), "loss_f32": f32([float(loss32)]),
         "loss_per_pos": f32(per_pos.numpy()), "loss_base": f32([float(loss_base)]),
         "trajectory_losses": f32(losses32), "trajectory_final_loss": f32([last32]),
         "trajectory_losses_f64": f32(losses64)}
    for k in adapter:
        t[k + ".grad"] = f32(g64[k].numpy())
        t[k + ".grad_f32"] = f32(g32[k].numpy())
        t["final." + k] = f32(final32[k].numpy())
        t["exp_avg." + k] = f32(state32[k]["exp_avg"].numpy())
        t["exp_avg_sq." + k] = f32(state32[k]["exp_avg_sq"].numpy())
    st_io.save_file(t, os.path.join(vdir, "expected.safetensors"))

    grad_stats = {}
    for k in sorted(adapter):
        grad_stats[k] = {"shape": list(adapter[k].shape),
                         "max_abs_grad": float(g64[k].abs().max()),
                         "f32_vs_f64_max_err_rel_to_max_abs": rel_to_max(g32[k].numpy(), g64[k].numpy())}
    ignored = [[int(x) for x in np.nonzero(targets[b] == IGNORE)[0]] for b in range(BATCH)]
    traj_rel = lambda a, e: max(abs(x - y) / abs(y) for x, y in zip(a, e))  # noqa: E731
    final_rel = max(rel_to_max(final64[k].numpy(), final32[k].numpy()) for k in adapter)
    info = {
        "model": name, "base": variant, "arch": arch,
        "base_model_dir": "runtime/src/test/resources/reference/%s (config.json + model.safetensors)" % name,
        "base_weights": ("F32 as stored" if variant == "f32" else
                         "linear weights (%s of every block) replaced by their NF4 + double-quant dequantization "
                         "(blocksize 64, nested blocksize 256; GPT-2 Conv1D weights transposed to [out, in] before "
                         "quantizing and back after), bit-identical to runtime reference expected_nf4 / deq.*; "
                         "embeddings, LayerNorms and biases F32" % ", ".join(mods)),
        "lora": {"r": R, "lora_alpha": LORA_ALPHA, "scaling": SCALING, "lora_dropout": 0.0,
                 "target_modules": targets_cfg, "matched_modules_per_block": mods,
                 "n_matched_modules": len(shapes), "fan_in_fan_out": arch == "gpt2",
                 "init": "seed %d numpy RandomState; per module in model order: A ~ U(-1/sqrt(in), 1/sqrt(in)) "
                         "[r, in], then B ~ N(0, %g) [out, r] (non-zero on purpose)" % (seed, B_STD),
                 "modules": [{"path": p, "in": fi, "out": fo} for p, fi, fo in shapes]},
        "batch": {"B": BATCH, "T": SEQ, "seed": seed + 1, "ignore_index": IGNORE, "ignored": ignored,
                  "n_counted_targets": int((targets != IGNORE).sum()),
                  "input_ids": ids.tolist(), "targets": targets.tolist()},
        "math": "eval mode (all base dropouts off), lora_dropout 0: y = base(x) + (x @ A^T @ B^T) * alpha/r; "
                "loss = sum of per-position CE over non-ignored targets / their count",
        "loss": float(loss64), "loss_f32": float(loss32), "loss_base": float(loss_base),
        "optimizer": {"type": "torch.optim.AdamW (torch %s, foreach=False)" % torch.__version__, "lr": LR,
                      "betas": list(BETAS), "eps": EPS, "weight_decay": WD, "schedule": "constant",
                      "clipping": None, "grad_accumulation": 1, "steps": STEPS,
                      "data": "the same batch at every step", "params": "LoRA tensors only, float32"},
        "trajectory_losses": losses32, "trajectory_final_loss": last32, "trajectory_losses_f64": losses64,
        "tolerances": {"loss": "1e-4 relative",
                       "grads": "|g - e| <= 1e-3 * max|e| over each tensor (e = <tensor>.grad)",
                       "trajectory": "1e-4 relative per loss (trajectory_losses, trajectory_final_loss)",
                       "final_adapter": "not asserted by default (see README); ~1e-3 * max|e| per tensor"},
        "checks": {
            "loss_f32_vs_f64_rel": abs(float(loss32) - float(loss64)) / abs(float(loss64)),
            "grad_f32_vs_f64_max_err_rel_to_max_abs": max(v["f32_vs_f64_max_err_rel_to_max_abs"]
                                                          for v in grad_stats.values()),
            "merged_weights_reference_models_per_pos_loss_max_rel_err": merged_err,
            "finite_difference_worst_err_rel_to_max_abs": fd_worst,
            "trajectory_f32_vs_f64_max_rel": traj_rel(losses32 + [last32], losses64 + [last64]),
            "final_adapter_f32_vs_f64_max_err_rel_to_max_abs": final_rel,
            "trajectory_with_1e-5_grad_noise_max_rel": traj_rel(lossesN + [lastN], losses32 + [last32]),
            "final_adapter_with_1e-5_grad_noise_max_err_rel_to_max_abs":
                max(rel_to_max(finalN[k].numpy(), final32[k].numpy()) for k in adapter),
        },
        "finite_differences": fd,
        "grads": grad_stats,
        "expected.safetensors": {"tensors": describe(arch)},
        "sha256": {p: sha256(os.path.join(vdir, p)) for p in
                   ("adapter/adapter_config.json", "adapter/adapter_model.safetensors", "expected.safetensors")},
    }
    with open(os.path.join(vdir, "expected.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(info, indent=2) + "\n")
    return info


def generate(out_dir):
    t0 = time.time()
    os.makedirs(out_dir, exist_ok=True)
    summary = {"generator": "lora/src/test/python/lora_reference.py", "torch": torch.__version__,
               "numpy": np.__version__, "inputs": {}, "variants": {}, "files": {}}
    for name, (arch, seed, targets_cfg, mods) in MODELS.items():
        mdir = os.path.join(REF_MODELS, name)
        cfg = json.load(open(os.path.join(mdir, "config.json"), encoding="utf-8"))
        weights, _ = st_io.load_file(os.path.join(mdir, "model.safetensors"))
        for fn in ("config.json", "model.safetensors"):
            summary["inputs"]["runtime/src/test/resources/reference/%s/%s" % (name, fn)] = \
                sha256(os.path.join(mdir, fn))
        # PEFT suffix rule: the targets match exactly the modules we put LoRA on (and nothing else)
        linear_paths = sorted({k[:-len(".weight")] for k, v in weights.items()
                               if k.startswith("h.") and k.endswith(".weight") and v.ndim == 2})
        matched = [p for p in linear_paths if peft_suffix_match(targets_cfg, p)]
        assert matched == sorted("h.%d.%s" % (i, m) for i in range(cfg["n_layer"]) for m in mods), matched
        for variant in ("f32", "nf4"):
            w = weights if variant == "f32" else rm.quantize_model(arch, weights, cfg, "nf4")[0]
            info = run_variant(name, variant, arch, cfg, w, seed, targets_cfg, mods, out_dir)
            summary["variants"]["%s-%s" % (name, variant)] = {
                "loss": info["loss"], "trajectory_losses": info["trajectory_losses"],
                "trajectory_final_loss": info["trajectory_final_loss"], "checks": info["checks"]}
            print("%-8s %-3s loss %.6f -> %.6f  fd %.1e  merged %.1e  f32/f64 grad %.1e traj %.1e  "
                  "noise traj %.1e  %.1fs" % (name, variant, info["loss"], info["trajectory_final_loss"],
                                              info["checks"]["finite_difference_worst_err_rel_to_max_abs"],
                                              info["checks"]["merged_weights_reference_models_per_pos_loss_max_rel_err"],
                                              info["checks"]["grad_f32_vs_f64_max_err_rel_to_max_abs"],
                                              info["checks"]["trajectory_f32_vs_f64_max_rel"],
                                              info["checks"]["trajectory_with_1e-5_grad_noise_max_rel"],
                                              time.time() - t0), flush=True)
    write_manifest(out_dir, summary, t0)


def write_manifest(out_dir, summary, t0):
    """sha256 of every file under out_dir into summary["files"], then out_dir/MANIFEST.json."""
    total = 0
    for root, _, fs in sorted(os.walk(out_dir)):
        for fn in sorted(fs):
            p = os.path.join(root, fn)
            rel = os.path.relpath(p, out_dir).replace(os.sep, "/")
            if rel != "MANIFEST.json":
                summary["files"][rel] = sha256(p)
                total += os.path.getsize(p)
    with open(os.path.join(out_dir, "MANIFEST.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(summary, indent=2) + "\n")
    print("total %.2f MB in %s, %.1fs" % (total / 1e6, out_dir, time.time() - t0))


def verify_output(generate_into, out, prefix):
    """Regenerates into a temp dir and byte-compares with out; 0 when identical."""
    tmp = tempfile.mkdtemp(prefix=prefix + "-")
    try:
        generate_into(tmp)
        bad = []
        for root, _, fs in os.walk(tmp):
            for fn in fs:
                rel = os.path.relpath(os.path.join(root, fn), tmp)
                mine = os.path.join(out, rel)
                if not os.path.exists(mine) or sha256(mine) != sha256(os.path.join(root, fn)):
                    bad.append(rel)
        print("verify: %s" % ("OK, byte-identical" if not bad else "DIFFERENT: %s" % bad))
        return 0 if not bad else 1
    finally:
        shutil.rmtree(tmp)


def verify():
    return verify_output(generate, OUT, "lora-reference")


if __name__ == "__main__":
    if "--verify" in sys.argv[1:]:
        sys.exit(verify())
    generate(OUT)
