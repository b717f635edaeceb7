#!/usr/bin/python3
"""Independent PyTorch reference for qlora4j's FULL-parameter training (every weight trainable).

Run from the repository root (torch 1.13 CPU + numpy; Debian's /usr/bin/python3):

    /usr/bin/python3 lora/src/test/python/full_reference.py            # writes the goldens
    /usr/bin/python3 lora/src/test/python/full_reference.py --verify   # regenerates into a temp dir
                                                                        # and byte-compares

It reads the reference models runtime/src/test/resources/reference/{gpt2-a,bloom-a}/{config.json,
model.safetensors} (written by runtime/src/test/python/reference_models.py; F32 weights as stored, no
quantization) and writes lora/src/test/resources/full-reference/<model>/:

    expected.safetensors   batch, loss, the gradient of EVERY parameter, a 10-step AdamW run
    expected.json          description, parameter list (name, shape, decay), losses, checks, sha256s

Tensor names are exactly model.safetensors' (no `transformer.` prefix). GPT-2's token embedding wte.weight
(50257 x 64: 12.9 MB per F32 copy) is the one tensor stored as a row subset (rows.*, grad_rows.*,
final_rows.*, plus the L2 norm of the full gradient); every other gradient is stored whole.

plus full-reference/MANIFEST.json. See lora/src/test/python/README.md.

The model math is lora_reference.LoraLM with no adapter (a batched re-implementation of transformers'
GPT2LMHeadModel / BloomForCausalLM eval-mode forward, all dropouts off) whose weight tensors are torch
leaves that require grad. The LM head is tied to the token embedding: it is ONE tensor, used by the
lookup and by the head, so its gradient is the sum of both shares. Before anything is written it is
checked against (a) reference_models.GPT2/Bloom (the runtime golden implementation, itself cross-checked
against a naive float64 loop implementation), (b) float64 central finite differences for a few entries of
12 gradient tensors (embedding, LayerNorm gammas/betas, biases, attention/MLP weights, first and last
block), (c) an untied float64 run (separate lookup and head copies) whose two gradients sum to the tied one.
Nothing here calls or reads the Java code.
"""
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__ (before importing siblings)

import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lora_reference as lr  # noqa: E402  (adds runtime/src/test/python to sys.path; sets 1 thread)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import reference_models as rm  # noqa: E402
import st_io  # noqa: E402

torch.set_num_threads(1)  # deterministic reductions

REPO = lr.REPO
REF_MODELS = lr.REF_MODELS
OUT = os.path.join(REPO, "lora", "src", "test", "resources", "full-reference")

BATCH, SEQ = lr.BATCH, lr.SEQ  # 2, 16 (lr.make_batch: 2 extra ignored positions per row)
IGNORE = lr.IGNORE
STEPS = 10
LR, BETAS, EPS = 1e-3, (0.9, 0.999), 1e-8
WEIGHT_DECAY = 0.1  # group 1 (>= 2 dims); group 2 (biases, LayerNorms) uses 0.0
# gradient-noise sensitivity runs (float32, every step, z ~ N(0, 1) per element, seeded):
#   ("rel", e): g *= 1 + e*z          (error proportional to each entry, like fp32 rounding of a product chain)
#   ("abs", e): g += e * max|g| * z   (per-tensor absolute error; the model lora_reference uses)
NOISE_RUNS = [("rel", 1e-5), ("rel", 1e-4), ("abs", 1e-6), ("abs", 1e-5)]
ROWS_FORM_MIN_NUMEL = 1_000_000  # larger tensors (only GPT-2 wte: 50257 x 64) are stored as a row subset
RANDOM_ROWS = 24  # seeded extra rows of a row-subset tensor (besides batch ids, targets, argmax, first/last)

MODELS = {
    # name: (arch, batch/check seed, token embedding, LayerNorm module paths outside the blocks,
    #        block module paths in HF named_parameters order (LayerNorms marked), final.* tensors)
    "gpt2-a": ("gpt2", 8101, "wte.weight", [],
               [("ln_1", True), ("attn.c_attn", False), ("attn.c_proj", False), ("ln_2", True),
                ("mlp.c_fc", False), ("mlp.c_proj", False)],
               ["wte.weight", "wpe.weight", "h.0.ln_1.weight", "h.0.attn.c_attn.weight", "h.0.mlp.c_fc.bias",
                "h.1.ln_2.bias", "h.1.attn.c_proj.weight", "ln_f.weight"]),
    "bloom-a": ("bloom", 8303, "word_embeddings.weight", ["word_embeddings_layernorm"],
                [("input_layernorm", True), ("self_attention.query_key_value", False),
                 ("self_attention.dense", False), ("post_attention_layernorm", True),
                 ("mlp.dense_h_to_4h", False), ("mlp.dense_4h_to_h", False)],
                ["word_embeddings.weight", "word_embeddings_layernorm.weight", "h.0.input_layernorm.weight",
                 "h.0.self_attention.query_key_value.weight", "h.0.mlp.dense_h_to_4h.bias",
                 "h.1.post_attention_layernorm.bias", "h.1.self_attention.dense.weight", "ln_f.weight"]),
}


# ============================================================================ parameters, HF param groups

def param_order(arch, cfg, emb, top_lns, block):
    """Parameter names in HF named_parameters order (the tied lm_head is not a separate parameter)."""
    names = [emb] + (["wpe.weight"] if arch == "gpt2" else [])
    for m in top_lns:
        names += [m + ".weight", m + ".bias"]
    for i in range(cfg["n_layer"]):
        for m, _ in block:
            names += ["h.%d.%s.weight" % (i, m), "h.%d.%s.bias" % (i, m)]
    return names + ["ln_f.weight", "ln_f.bias"]


def layernorm_modules(cfg, top_lns, block):
    return set(top_lns) | {"ln_f"} | {"h.%d.%s" % (i, m) for i in range(cfg["n_layer"]) for m, ln in block if ln}


def hf_decays(name, ln_modules):
    """transformers Trainer.get_decay_parameter_names (4.52): not inside an nn.LayerNorm module and no
    forbidden pattern (bias, layernorm, rmsnorm, norm, _norm) in the lower-cased full name."""
    module = name.rsplit(".", 1)[0]
    patterns = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]
    full = "transformer." + name
    return module not in ln_modules and not any(re.search(p, full.lower()) for p in patterns)


# ============================================================================ model (batched, all weights trainable)

class FullLM(lr.LoraLM):
    """lora_reference.LoraLM (eval mode) with no adapter; self.w are the given leaf tensors."""

    def __init__(self, arch, cfg, params):
        any_w = next(iter(params.values()))
        super().__init__(arch, cfg, {}, any_w.dtype)
        self.w = params

    def forward_loss(self, ids, targets, per_pos=False):
        return self.loss(ids, targets, None, per_pos=per_pos)


def leaves(weights, dtype, grad):
    """Fresh torch copies (never views of the numpy weights: training updates them in place)."""
    return {k: torch.from_numpy(np.array(v, dtype=np.float32, copy=True)).to(dtype).requires_grad_(grad)
            for k, v in weights.items()}


def loss_and_grads(arch, cfg, weights, ids, targets, dtype):
    p = leaves(weights, dtype, True)
    loss = FullLM(arch, cfg, p).forward_loss(ids, targets)
    loss.backward()
    return loss.detach(), {k: v.grad.detach().clone() for k, v in p.items()}


class _UntiedWeights(dict):
    """Weight dict whose token-embedding entry hands out `lookup` on its first read (the lookup in
    LoraLM.logits) and `head` on its second (the tied LM head matmul)."""

    def __init__(self, params, emb, head):
        super().__init__(params)
        self.emb, self.head, self.reads = emb, head, 0

    def __getitem__(self, k):
        if k == self.emb:
            self.reads += 1
            if self.reads == 2:
                return self.head
        return dict.__getitem__(self, k)


def untied_check(arch, cfg, weights, ids, targets, emb, g64):
    """float64 run with separate lookup/head copies of the token embedding: their grads sum to the tied one."""
    p = leaves(weights, torch.float64, True)
    head = p[emb].detach().clone().requires_grad_(True)
    w = _UntiedWeights(p, emb, head)
    model = FullLM(arch, cfg, p)
    model.w = w
    loss = model.forward_loss(ids, targets)
    assert w.reads == 2, "expected the token embedding to be read twice (lookup, head): %d" % w.reads
    loss.backward()
    lookup, head_g = p[emb].grad, head.grad
    gmax = float(g64[emb].abs().max())
    err = float((lookup + head_g - g64[emb]).abs().max()) / gmax
    assert err < 1e-12, "tied embedding grad != lookup share + head share: %g" % err
    assert float(lookup.abs().max()) > 0 and float(head_g.abs().max()) > 0
    rows_lookup = sorted(int(r) for r in torch.nonzero(lookup.abs().sum(1))[:, 0])
    # a subset: an id whose position and every later one in its row are ignored gets no lookup gradient
    assert set(rows_lookup) <= set(int(x) for x in ids.reshape(-1)), "lookup share outside the batch ids"
    return {"sum_of_shares_max_err_rel_to_max_abs": err,
            "lookup_share_max_abs": float(lookup.abs().max()), "lookup_share_l2": float(lookup.norm()),
            "head_share_max_abs": float(head_g.abs().max()), "head_share_l2": float(head_g.norm()),
            "lookup_share_nonzero_rows": rows_lookup}


def forward_check(arch, cfg, weights, ids, targets):
    """reference_models' GPT2/Bloom (batch 1, per row) must give the same per-position loss."""
    ref = (rm.GPT2 if arch == "gpt2" else rm.Bloom)(weights, cfg)
    with torch.no_grad():
        ours = FullLM(arch, cfg, leaves(weights, torch.float32, False)).forward_loss(
            torch.from_numpy(ids), torch.from_numpy(targets), per_pos=True).numpy()
    worst = 0.0
    for b in range(ids.shape[0]):
        lg, _ = ref.forward(ids[b].tolist())
        for t in range(ids.shape[1]):
            if targets[b, t] != IGNORE:
                e = float(F.cross_entropy(lg[t:t + 1], torch.tensor([int(targets[b, t])])))
                worst = max(worst, abs(e - float(ours[b, t])) / abs(e))
    assert worst < 2e-5, "batched forward vs reference_models forward: %g" % worst
    return worst


def fd_tensors(arch, cfg, emb):
    last = cfg["n_layer"] - 1
    if arch == "gpt2":
        return [emb, "wpe.weight", "h.0.ln_1.weight", "h.0.attn.c_attn.weight", "h.0.attn.c_attn.bias",
                "h.0.mlp.c_fc.weight", "h.%d.ln_2.bias" % last, "h.%d.attn.c_attn.weight" % last,
                "h.%d.attn.c_proj.weight" % last, "h.%d.mlp.c_proj.bias" % last, "h.%d.mlp.c_proj.weight" % last,
                "ln_f.weight"]
    return [emb, "word_embeddings_layernorm.weight", "h.0.input_layernorm.weight",
            "h.0.self_attention.query_key_value.weight", "h.0.self_attention.query_key_value.bias",
            "h.0.mlp.dense_h_to_4h.weight", "h.%d.post_attention_layernorm.bias" % last,
            "h.%d.self_attention.query_key_value.weight" % last, "h.%d.self_attention.dense.weight" % last,
            "h.%d.mlp.dense_4h_to_h.bias" % last, "h.%d.mlp.dense_4h_to_h.weight" % last, "ln_f.weight"]


def finite_difference_check(arch, cfg, weights, ids, targets, g64, names, emb, seed):
    """Central differences (h = 1e-6, float64): argmax entry + 2 distinct seeded entries per tensor (for the
    token embedding: an entry of a row looked up by the batch and one of a row that only the head uses)."""
    rng = np.random.RandomState(seed)
    p = leaves(weights, torch.float64, False)
    model = FullLM(arch, cfg, p)
    batch_rows = sorted(set(int(x) for x in ids.reshape(-1)))
    out, worst = [], 0.0
    for name in names:
        g = g64[name]
        gmax = float(g.abs().max())
        picks = [tuple(int(i) for i in np.unravel_index(int(g.abs().argmax()), g.shape))]
        if name == emb:
            picks.append((batch_rows[rng.randint(len(batch_rows))], int(rng.randint(g.shape[1]))))
            while True:
                r = int(rng.randint(g.shape[0]))
                if r not in batch_rows:
                    break
            picks.append((r, int(rng.randint(g.shape[1]))))
        while len(picks) < 3:  # distinct; wpe: a used position (rows >= T get no gradient at all)
            idx = tuple(int(rng.randint(0, SEQ if (name == "wpe.weight" and d == 0) else s))
                        for d, s in enumerate(g.shape))
            if idx not in picks:
                picks.append(idx)
        for idx in picks:
            h = 1e-6
            orig = float(p[name][idx])
            vals = []
            with torch.no_grad():
                for sgn in (1.0, -1.0):
                    p[name][idx] = orig + sgn * h
                    vals.append(float(model.forward_loss(ids, targets)))
                p[name][idx] = orig
            fd = (vals[0] - vals[1]) / (2 * h)
            ag = float(g[idx])
            err = abs(fd - ag) / gmax
            worst = max(worst, err)
            out.append({"tensor": name, "index": list(idx), "autograd": ag, "finite_diff": fd,
                        "abs_err_over_max_abs_grad": err})
    assert worst < 1e-6, "finite differences disagree with autograd: %g" % worst
    return out, worst


def train(arch, cfg, weights, ids, targets, dtype, decay, steps, grad_noise=None, noise_seed=0):
    """torch.optim.AdamW over every parameter, HF Trainer's two groups (weight_decay WEIGHT_DECAY for the
    names in `decay`, 0.0 for the rest), constant LR, no clipping, same batch every step.
    Returns (losses before each step, loss after the last step, final tensors, optimizer state)."""
    p = leaves(weights, dtype, True)
    model = FullLM(arch, cfg, p)
    order = list(weights)  # HF named_parameters order
    groups = [{"params": [p[k] for k in order if k in decay], "weight_decay": WEIGHT_DECAY},
              {"params": [p[k] for k in order if k not in decay], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=EPS, amsgrad=False, foreach=False, maximize=False)
    gen = torch.Generator().manual_seed(noise_seed)
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = model.forward_loss(ids, targets)
        losses.append(float(loss))
        loss.backward()
        if grad_noise:
            kind, e = grad_noise
            for k in order:
                g = p[k].grad
                z = torch.randn(g.shape, generator=gen, dtype=g.dtype)
                if kind == "rel":
                    g.mul_(1 + e * z)
                else:
                    g.add_(z * (e * float(g.abs().max())))
        opt.step()
    with torch.no_grad():
        last = float(model.forward_loss(ids, targets))
    state = {k: opt.state[p[k]] for k in order}
    return losses, last, {k: p[k].detach().clone() for k in order}, state


# ============================================================================ outputs

sha256, f32, rel_to_max = lr.sha256, lr.f32, lr.rel_to_max


def stored_rows(emb_grad, ids, targets, seed):
    """Rows kept for a row-subset tensor: every batch id and target id, the argmax row of |grad|, the first
    and last row, and RANDOM_ROWS seeded others; sorted, distinct."""
    V = emb_grad.shape[0]
    rows = set(int(x) for x in ids.reshape(-1)) | set(int(x) for x in targets.reshape(-1) if x != IGNORE)
    rows |= {int(emb_grad.abs().sum(1).argmax()), int(np.unravel_index(int(emb_grad.abs().argmax()),
                                                                         emb_grad.shape)[0]), 0, V - 1}
    rng = np.random.RandomState(seed)
    extra = 0
    while extra < RANDOM_ROWS:
        r = int(rng.randint(V))
        if r not in rows:
            rows.add(r)
            extra += 1
    return np.array(sorted(rows), dtype=np.int64)


def describe(arch, emb, rows_form):
    conv = " (GPT-2 Conv1D weights [in, out], as in model.safetensors)" if arch == "gpt2" else ""
    d = {
        "input_ids": "I64 [B, T]: token ids; positions 0..T-1 in every row, no padding, no attention mask",
        "targets": "I64 [B, T]: target id for each position, already shifted: targets[b, t] = input_ids[b, t+1], "
                   "-100 (ignore_index) at t = T-1 and at a few extra positions (listed in batch.ignored)",
        "loss": "F32 [1]: mean cross-entropy over the non-ignored targets (sum / count), float64 computation",
        "loss_f32": "F32 [1]: the same computed in float32",
        "loss_per_pos": "F32 [B, T]: per-position cross-entropy (float64 computation), 0 where ignored",
        "grad.<p>": "F32, shape and layout of <p> in model.safetensors: d loss / d <p>, float64 computation stored "
                    "as F32, for every parameter <p> (model.safetensors name, no `transformer.` prefix)" + conv +
                    "; the token embedding's includes the tied LM head's share",
        "trajectory_losses": "F32 [%d]: float32 AdamW run over every parameter, loss BEFORE step k (k = 0..%d; "
                             "[0] = loss_f32), same batch every step" % (STEPS, STEPS - 1),
        "trajectory_final_loss": "F32 [1]: loss after the last step",
        "trajectory_losses_f64": "F32 [%d]: the same run in float64 (information)" % STEPS,
        "final.<p>": "F32, shape of <p>: <p> after %d float32 AdamW steps (a few tensors: see final_tensors)" % STEPS,
    }
    if rows_form:
        d.update({
            "rows.%s" % emb: "I64 [K]: the rows of %s stored below (sorted; every input and target id, the argmax "
                             "row, row 0, row V-1, and seeded others); %s has no grad./final. entry" % (emb, emb),
            "grad_rows.%s" % emb: "F32 [K, C]: rows rows.%s of d loss / d %s (float64 computation)" % (emb, emb),
            "grad_l2.%s" % emb: "F32 [1]: L2 (Frobenius) norm of the FULL d loss / d %s (float64)" % emb,
            "final_rows.%s" % emb: "F32 [K, C]: rows rows.%s of %s after the float32 AdamW run" % (emb, emb),
        })
    return d


def run_model(name, arch, cfg, weights_file, seed, emb, top_lns, block, finals, out_dir):
    mdir = os.path.join(out_dir, name)
    os.makedirs(mdir, exist_ok=True)
    order = param_order(arch, cfg, emb, top_lns, block)
    assert sorted(order) == sorted(weights_file), "parameter names differ from model.safetensors"
    weights = {k: weights_file[k] for k in order}  # HF named_parameters order
    ln_modules = layernorm_modules(cfg, top_lns, block)
    decay = {k for k in order if weights[k].ndim >= 2}
    assert decay == {k for k in order if hf_decays(k, ln_modules)}, "ndim rule != HF Trainer decay rule"

    ids, targets, _ = lr.make_batch(cfg["vocab_size"], seed)
    # key part of the fused qkv bias: GPT-2 [q | k | v] (C each), BLOOM interleaved per head [q_h | k_h | v_h]
    C, NH = weights["ln_f.weight"].shape[0], cfg["n_head"]
    HS = C // NH
    qkv = block[1][0]
    kidx = (list(range(C, 2 * C)) if arch == "gpt2"
            else [h * 3 * HS + HS + j for h in range(NH) for j in range(HS)])
    tids, ttgt = torch.from_numpy(ids), torch.from_numpy(targets)

    loss64, g64 = loss_and_grads(arch, cfg, weights, tids, ttgt, torch.float64)
    loss32, g32 = loss_and_grads(arch, cfg, weights, tids, ttgt, torch.float32)
    with torch.no_grad():
        per_pos = FullLM(arch, cfg, leaves(weights, torch.float64, False)).forward_loss(tids, ttgt, per_pos=True)
    assert abs(float(per_pos.sum()) / int((targets != IGNORE).sum()) - float(loss64)) < 1e-12
    for k in order:
        assert tuple(g64[k].shape) == weights[k].shape and float(g64[k].abs().max()) > 0, k

    for k in order:  # softmax is invariant to q.b_k (the same for every key): d loss / d b_k = 0 exactly
        if k.endswith(qkv + ".bias"):
            assert float(g64[k][kidx].abs().max()) < 1e-12 * float(g64[k].abs().max()), k
    fwd_err = forward_check(arch, cfg, weights, ids, targets)
    tied = untied_check(arch, cfg, weights, tids, ttgt, emb, g64)
    fd, fd_worst = finite_difference_check(arch, cfg, weights, tids, ttgt, g64, fd_tensors(arch, cfg, emb), emb,
                                           seed + 2)

    losses32, last32, final32, _ = train(arch, cfg, weights, tids, ttgt, torch.float32, decay, STEPS)
    losses64, last64, final64, _ = train(arch, cfg, weights, tids, ttgt, torch.float64, decay, STEPS)
    # sensitivity of the float32 trajectory to gradient noise (a Java fp32 engine's grads differ from torch's
    # by roughly 1e-7..1e-5): the slack the tolerances really have
    noisy = {"%s_%g" % nz: train(arch, cfg, weights, tids, ttgt, torch.float32, decay, STEPS, grad_noise=nz,
                                 noise_seed=seed) for nz in NOISE_RUNS}

    rows_form = weights[emb].size >= ROWS_FORM_MIN_NUMEL
    rows = stored_rows(g64[emb], ids, targets, seed + 3) if rows_form else None
    t = {"input_ids": ids, "targets": targets,
         "loss": f32([float(loss64)]), "loss_f32": f32([float(loss32)]), "loss_per_pos": f32(per_pos.numpy()),
         "trajectory_losses": f32(losses32), "trajectory_final_loss": f32([last32]),
         "trajectory_losses_f64": f32(losses64)}
    for k in order:
        if k == emb and rows_form:
            t["rows." + k] = rows
            t["grad_rows." + k] = f32(g64[k].numpy()[rows])
            t["grad_l2." + k] = f32([float(g64[k].norm())])
        else:
            t["grad." + k] = f32(g64[k].numpy())
    for k in finals:
        if k == emb and rows_form:
            t["final_rows." + k] = f32(final32[k].numpy()[rows])
        else:
            t["final." + k] = f32(final32[k].numpy())
    st_io.save_file(t, os.path.join(mdir, "expected.safetensors"))

    params = []
    for k in order:
        e = g64[k].numpy()
        params.append({"name": k, "shape": list(weights[k].shape), "numel": int(weights[k].size),
                       "decay": k in decay, "weight_decay": WEIGHT_DECAY if k in decay else 0.0,
                       "grad_stored_as": ("grad_rows.%s (rows rows.%s)" % (k, k)) if (k == emb and rows_form)
                       else "grad." + k,
                       "max_abs_grad": float(np.abs(e).max()), "l2_grad": float(np.linalg.norm(e)),
                       "grad_f32_vs_f64_max_err_rel_to_max_abs": rel_to_max(g32[k].numpy(), e)})
    if rows_form:
        assert float(np.abs(t["grad_rows." + emb]).max()) == float(f32(np.abs(g64[emb].numpy()).max())), \
            "stored rows miss the max |grad| of %s" % emb
    ignored = [[int(x) for x in np.nonzero(targets[b] == IGNORE)[0]] for b in range(BATCH)]
    traj_rel = lambda a, e: max(abs(x - y) / abs(y) for x, y in zip(a, e))  # noqa: E731

    def final_stats(fa, fe):
        """per final tensor: max|a-e|/max|e|, ||a-e||/||e||, ||a-e||/||e-init||."""
        out = {}
        for k in finals:
            a, e = fa[k].numpy().astype(np.float64), fe[k].numpy().astype(np.float64)
            moved = np.linalg.norm(e - weights[k].astype(np.float64))
            out[k] = {"max_err_rel_to_max_abs": rel_to_max(a, e),
                      "l2_err_rel_to_l2": float(np.linalg.norm(a - e) / np.linalg.norm(e)),
                      "l2_err_rel_to_l2_of_update": float(np.linalg.norm(a - e) / moved)}
        return out
    fin_f64 = final_stats(final64, final32)
    info = {
        "description": "Full-parameter training reference (every weight trainable) for %s: loss and the float64 "
                       "gradient of every parameter for one fixed batch, and a 10-step float32 AdamW run with HF "
                       "Trainer's two weight-decay groups. Written by lora/src/test/python/full_reference.py "
                       "(torch, independent of the Java code)." % name,
        "model": name, "arch": arch,
        "base_model_dir": "runtime/src/test/resources/reference/%s (config.json + model.safetensors, F32 as "
                          "stored)" % name,
        "parameter_names": "exactly the model.safetensors names (no `transformer.` prefix); the LM head is tied to "
                           "%s (one parameter, not listed separately)" % emb,
        "n_parameters": len(order), "n_weights": int(sum(weights[k].size for k in order)),
        "parameters": params,
        "batch": {"B": BATCH, "T": SEQ, "seed": seed + 1, "ignore_index": IGNORE, "ignored": ignored,
                  "n_counted_targets": int((targets != IGNORE).sum()),
                  "input_ids": ids.tolist(), "targets": targets.tolist()},
        "math": "eval mode (embd/attn/resid/hidden dropouts off); logits = ln_f(h) @ %s^T (tied head); loss = sum "
                "of per-position CE over non-ignored targets / their count" % emb,
        "loss": float(loss64), "loss_f32": float(loss32),
        "optimizer": {"type": "torch.optim.AdamW (torch %s, foreach=False, amsgrad=False)" % torch.__version__,
                      "lr": LR, "betas": list(BETAS), "eps": EPS,
                      "param_groups": [
                          {"weight_decay": WEIGHT_DECAY, "params": "every parameter with >= 2 dims (embeddings, "
                           "linear weights) = HF Trainer get_decay_parameter_names",
                           "names": [k for k in order if k in decay]},
                          {"weight_decay": 0.0, "params": "biases and LayerNorm weights/biases",
                           "names": [k for k in order if k not in decay]}],
                      "update": "decoupled: p *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g; "
                                "p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)",
                      "schedule": "constant", "clipping": None, "grad_accumulation": 1, "steps": STEPS,
                      "data": "the same batch at every step", "dtype": "float32"},
        "trajectory_losses": losses32, "trajectory_final_loss": last32, "trajectory_losses_f64": losses64,
        "trajectory_final_loss_f64": last64,
        "final_tensors": finals,
        "stored_rows": ({"tensor": emb, "why": "%d x %d F32 would be %.1f MB per copy" % (
            weights[emb].shape[0], weights[emb].shape[1], weights[emb].size * 4 / 1e6),
            "rows": rows.tolist()} if rows_form else None),
        "tolerances": {"loss": "|a - e| <= 1e-4 * |e|",
                       "grads": "per tensor: max|a - e| <= 1e-3 * max|e| (e = grad.<p> or grad_rows.<p>)",
                       "trajectory": "|a - e| <= 1e-4 * |e| per loss (trajectory_losses, trajectory_final_loss)",
                       "final_tensors": "||a - e||_2 <= 1e-2 * ||e - init||_2 per tensor (see README)"},
        "checks": {
            "loss_f32_vs_f64_rel": abs(float(loss32) - float(loss64)) / abs(float(loss64)),
            "grad_f32_vs_f64_max_err_rel_to_max_abs": max(v["grad_f32_vs_f64_max_err_rel_to_max_abs"]
                                                          for v in params),
            "forward_vs_reference_models_per_pos_loss_max_rel_err": fwd_err,
            "finite_difference_worst_err_rel_to_max_abs": fd_worst,
            "tied_embedding": tied,
            "trajectory_f32_vs_f64_max_rel": traj_rel(losses32 + [last32], losses64 + [last64]),
            "final_f32_vs_f64": fin_f64,
            "trajectory_with_grad_noise_max_rel": {
                k: traj_rel(v[0] + [v[1]], losses32 + [last32]) for k, v in noisy.items()},
            "final_with_grad_noise": {k: final_stats(v[2], final32) for k, v in noisy.items()},
            "grad_noise_models": "rel_e: g *= 1 + e*z; abs_e: g += e*max|g|*z (per tensor); z ~ N(0,1) per "
                                 "element, every step, float32 run",
            "k_bias_grad_max_abs": {k: float(g64[k][kidx].abs().max()) for k in order
                                    if k.endswith(qkv + ".bias")},
        },
        "finite_differences": fd,
        "expected.safetensors": {"tensors": describe(arch, emb, rows_form)},
        "sha256": {"expected.safetensors": sha256(os.path.join(mdir, "expected.safetensors")),
                   "inputs": {"runtime/src/test/resources/reference/%s/%s" % (name, fn):
                              sha256(os.path.join(REF_MODELS, name, fn))
                              for fn in ("config.json", "model.safetensors")}},
    }
    with open(os.path.join(mdir, "expected.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(info, indent=2) + "\n")
    return info


def generate(out_dir):
    t0 = time.time()
    os.makedirs(out_dir, exist_ok=True)
    summary = {"generator": "lora/src/test/python/full_reference.py", "torch": torch.__version__,
               "numpy": np.__version__, "inputs": {}, "models": {}, "files": {}}
    for name, (arch, seed, emb, top_lns, block, finals) in MODELS.items():
        mdir = os.path.join(REF_MODELS, name)
        cfg = json.load(open(os.path.join(mdir, "config.json"), encoding="utf-8"))
        weights, _ = st_io.load_file(os.path.join(mdir, "model.safetensors"))
        for fn in ("config.json", "model.safetensors"):
            summary["inputs"]["runtime/src/test/resources/reference/%s/%s" % (name, fn)] = \
                sha256(os.path.join(mdir, fn))
        info = run_model(name, arch, cfg, weights, seed, emb, top_lns, block, finals, out_dir)
        c = info["checks"]
        summary["models"][name] = {
            "loss": info["loss"], "loss_f32": info["loss_f32"], "trajectory_losses": info["trajectory_losses"],
            "trajectory_final_loss": info["trajectory_final_loss"],
            "checks": {k: v for k, v in c.items() if not isinstance(v, dict)},
            "trajectory_with_grad_noise_max_rel": c["trajectory_with_grad_noise_max_rel"]}
        print("%-8s loss %.6f -> %.6f  fd %.1e  fwd %.1e  f32/f64 grad %.1e traj %.1e  rel-1e-5-noise traj %.1e  %.1fs"
              % (name, info["loss"], info["trajectory_final_loss"], c["finite_difference_worst_err_rel_to_max_abs"],
                 c["forward_vs_reference_models_per_pos_loss_max_rel_err"],
                 c["grad_f32_vs_f64_max_err_rel_to_max_abs"], c["trajectory_f32_vs_f64_max_rel"],
                 c["trajectory_with_grad_noise_max_rel"]["rel_1e-05"], time.time() - t0), flush=True)
    lr.write_manifest(out_dir, summary, t0)


def verify():
    return lr.verify_output(generate, OUT, "full-reference")


if __name__ == "__main__":
    if "--verify" in sys.argv[1:]:
        sys.exit(verify())
    generate(OUT)
