#!/usr/bin/python3
"""Independent PyTorch (fp32, CPU) reference for qlora4j's GPT-2 and BLOOM runtime.

Run from the repository root (takes well under a minute):

    /usr/bin/python3 runtime/src/test/python/reference_models.py

It deterministically regenerates everything under runtime/src/test/resources/reference/ (see
runtime/src/test/python/README.md for the file layout and tolerances). Needs torch and numpy only:
the model math follows transformers' modeling_gpt2.py / modeling_bloom.py, safetensors files are
written with struct + json (st_io.py), and the bitsandbytes NF4 / double-quant / LLM.int8 codecs are
re-implemented in bnb_ref.py from SPECS.md section 1. Nothing here calls or reads the Java code.

Before writing, every model output is cross-checked against a second, naive float64
implementation (per position, per head, explicit loops, ALiBi slopes from the SPECS formula).
"""
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bnb_ref  # noqa: E402
import st_io  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
OUT = os.path.join(REPO, "runtime", "src", "test", "resources", "reference")
SHARED = os.path.abspath(os.path.join(REPO, "..", "shared"))
TINY_GPT2 = os.path.join(SHARED, "data", "tiny-gpt2")

TRANSFORMERS_VERSION = "4.52.3"  # the version that wrote ../shared/data/tiny-gpt2/config.json
GREEDY_NEW_TOKENS = 20
BIG_VOCAB = 2048       # above this vocab size only the LAST full logit row of each sequence is stored
DEQ_LAYERS = (0,)      # layers whose dequantized linear weights are stored in full (others: checksums)

torch.set_num_threads(1)  # deterministic reductions


# ============================================================================ configs (HF JSON)

def gpt2_config(n_layer, n_embd, n_head, vocab, n_positions, eps=1e-5):
    """config.json as transformers 4.52 GPT2Config.save_pretrained writes it (to_diff_dict, sorted
    keys, indent 2): same key set as ../shared/data/tiny-gpt2/config.json minus the legacy n_ctx /
    task_specific_params that only came from the hub file."""
    return {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1,
        "bos_token_id": 50256,
        "embd_pdrop": 0.1,
        "eos_token_id": 50256,
        "initializer_range": 0.02,
        "layer_norm_epsilon": eps,
        "model_type": "gpt2",
        "n_embd": n_embd,
        "n_head": n_head,
        "n_inner": None,
        "n_layer": n_layer,
        "n_positions": n_positions,
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.1,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "summary_activation": None,
        "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "torch_dtype": "float32",
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "vocab_size": vocab,
    }


def bloom_config(n_layer, hidden, n_head, vocab, eps=1e-5):
    """config.json as transformers 4.52 BloomConfig(...).save_pretrained writes it."""
    return {
        "apply_residual_connection_post_layernorm": False,
        "architectures": ["BloomForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "hidden_dropout": 0.0,
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "layer_norm_epsilon": eps,
        "model_type": "bloom",
        "n_head": n_head,
        "n_layer": n_layer,
        "pretraining_tp": 1,
        "slow_but_exact": False,
        "torch_dtype": "float32",
        "transformers_version": TRANSFORMERS_VERSION,
        "use_cache": True,
        "vocab_size": vocab,
    }


def write_config(cfg, path):
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


# ============================================================================ random weights

def _n(rng, shape, std, mean=0.0):
    return (mean + rng.standard_normal(shape) * std).astype(np.float32)


def make_gpt2_weights(seed, cfg, with_attn_bias_buffer=False):
    """HF GPT-2 tensor names without the `transformer.` prefix; Conv1D weights are [in, out]."""
    rng = np.random.RandomState(seed)
    C, L, V, P = cfg["n_embd"], cfg["n_layer"], cfg["vocab_size"], cfg["n_positions"]
    w = {"wte.weight": _n(rng, (V, C), 0.25), "wpe.weight": _n(rng, (P, C), 0.1)}
    for i in range(L):
        p = "h.%d." % i
        w[p + "ln_1.weight"] = _n(rng, (C,), 0.1, 1.0)
        w[p + "ln_1.bias"] = _n(rng, (C,), 0.05)
        w[p + "attn.c_attn.weight"] = _n(rng, (C, 3 * C), 0.15)
        w[p + "attn.c_attn.bias"] = _n(rng, (3 * C,), 0.05)
        w[p + "attn.c_proj.weight"] = _n(rng, (C, C), 0.2)
        w[p + "attn.c_proj.bias"] = _n(rng, (C,), 0.02)
        w[p + "ln_2.weight"] = _n(rng, (C,), 0.1, 1.0)
        w[p + "ln_2.bias"] = _n(rng, (C,), 0.05)
        w[p + "mlp.c_fc.weight"] = _n(rng, (C, 4 * C), 0.1)
        w[p + "mlp.c_fc.bias"] = _n(rng, (4 * C,), 0.05)
        w[p + "mlp.c_proj.weight"] = _n(rng, (4 * C, C), 0.15)
        w[p + "mlp.c_proj.bias"] = _n(rng, (C,), 0.02)
        if with_attn_bias_buffer:
            # the causal-mask buffer old GPT-2 checkpoints carry; a loader must ignore it
            w[p + "attn.bias"] = np.tril(np.ones((P, P), np.float32)).reshape(1, 1, P, P)
    w["ln_f.weight"] = _n(rng, (C,), 0.1, 1.0)
    w["ln_f.bias"] = _n(rng, (C,), 0.05)
    return w


def make_bloom_weights(seed, cfg):
    """HF BLOOM tensor names (BloomModel, no `transformer.` prefix); nn.Linear weights [out, in]."""
    rng = np.random.RandomState(seed)
    C, L, V = cfg["hidden_size"], cfg["n_layer"], cfg["vocab_size"]
    w = {
        "word_embeddings.weight": _n(rng, (V, C), 0.25),
        "word_embeddings_layernorm.weight": _n(rng, (C,), 0.1, 1.0),
        "word_embeddings_layernorm.bias": _n(rng, (C,), 0.05),
    }
    for i in range(L):
        p = "h.%d." % i
        w[p + "input_layernorm.weight"] = _n(rng, (C,), 0.1, 1.0)
        w[p + "input_layernorm.bias"] = _n(rng, (C,), 0.05)
        w[p + "self_attention.query_key_value.weight"] = _n(rng, (3 * C, C), 0.15)
        w[p + "self_attention.query_key_value.bias"] = _n(rng, (3 * C,), 0.05)
        w[p + "self_attention.dense.weight"] = _n(rng, (C, C), 0.3)
        w[p + "self_attention.dense.bias"] = _n(rng, (C,), 0.02)
        w[p + "post_attention_layernorm.weight"] = _n(rng, (C,), 0.1, 1.0)
        w[p + "post_attention_layernorm.bias"] = _n(rng, (C,), 0.05)
        w[p + "mlp.dense_h_to_4h.weight"] = _n(rng, (4 * C, C), 0.1)
        w[p + "mlp.dense_h_to_4h.bias"] = _n(rng, (4 * C,), 0.05)
        w[p + "mlp.dense_4h_to_h.weight"] = _n(rng, (C, 4 * C), 0.3)
        w[p + "mlp.dense_4h_to_h.bias"] = _n(rng, (C,), 0.02)
    w["ln_f.weight"] = _n(rng, (C,), 0.1, 1.0)
    w["ln_f.bias"] = _n(rng, (C,), 0.05)
    return w


# ============================================================================ reference math (fp32)

def gelu_new(x):
    # transformers.activations.NewGELUActivation
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def bloom_gelu_forward(x):
    # transformers.models.bloom.modeling_bloom.bloom_gelu_forward
    return x * 0.5 * (1.0 + torch.tanh(0.79788456 * x * (1 + 0.044715 * x * x)))


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


class GPT2:
    """GPT2LMHeadModel forward (eager attention path), eval mode (dropout off), batch of 1."""

    def __init__(self, weights, cfg, prefix=""):
        self.cfg = cfg
        self.w = {k[len(prefix):]: _t(v) for k, v in weights.items() if k.startswith(prefix)}
        self.C, self.NH, self.L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
        self.eps = cfg["layer_norm_epsilon"]

    def ln(self, x, name):
        return F.layer_norm(x, (self.C,), self.w[name + ".weight"], self.w[name + ".bias"], self.eps)

    def conv1d(self, x, name):
        # transformers.pytorch_utils.Conv1D: addmm(bias, x, weight[in, out])
        return torch.addmm(self.w[name + ".bias"], x, self.w[name + ".weight"])

    def forward(self, ids):
        """ids: list[int] -> (logits [T, V], hidden states [L+2, T, C])."""
        w, C, NH = self.w, self.C, self.NH
        HS = C // NH
        T = len(ids)
        assert T <= self.cfg["n_positions"]
        idx = torch.tensor(ids, dtype=torch.long)
        h = w["wte.weight"][idx] + w["wpe.weight"][torch.arange(T)]
        hs = [h]
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
        for i in range(self.L):
            p = "h.%d." % i
            a = self.ln(h, p + "ln_1")
            qkv = self.conv1d(a, p + "attn.c_attn")
            q, k, v = qkv.split(C, dim=1)
            q = q.view(T, NH, HS).transpose(0, 1)  # [NH, T, HS]
            k = k.view(T, NH, HS).transpose(0, 1)
            v = v.view(T, NH, HS).transpose(0, 1)
            s = torch.matmul(q, k.transpose(-1, -2))
            s = s / torch.full([], v.size(-1) ** 0.5, dtype=s.dtype)
            s = torch.where(causal, s, torch.tensor(torch.finfo(s.dtype).min, dtype=s.dtype))
            pr = F.softmax(s, dim=-1, dtype=torch.float32)
            o = torch.matmul(pr, v).transpose(0, 1).reshape(T, C)
            h = h + self.conv1d(o, p + "attn.c_proj")
            m = self.ln(h, p + "ln_2")
            m = gelu_new(self.conv1d(m, p + "mlp.c_fc"))
            h = h + self.conv1d(m, p + "mlp.c_proj")
            hs.append(h)
        h = self.ln(h, "ln_f")
        hs.append(h)
        logits = torch.matmul(h, w["wte.weight"].t())  # tied lm_head
        return logits, torch.stack(hs)


def alibi_slopes_torch(n_head):
    """Exactly transformers' build_alibi_tensor slope computation (float32 torch.pow)."""
    closest_power_of_2 = 2 ** math.floor(math.log2(n_head))
    base = torch.tensor(2 ** (-(2 ** -(math.log2(closest_power_of_2) - 3))), dtype=torch.float32)
    powers = torch.arange(1, 1 + closest_power_of_2, dtype=torch.int32)
    slopes = torch.pow(base, powers)
    if closest_power_of_2 != n_head:
        extra_base = torch.tensor(2 ** (-(2 ** -(math.log2(2 * closest_power_of_2) - 3))), dtype=torch.float32)
        num_remaining_heads = min(closest_power_of_2, n_head - closest_power_of_2)
        extra_powers = torch.arange(1, 1 + 2 * num_remaining_heads, 2, dtype=torch.int32)
        slopes = torch.cat([slopes, torch.pow(extra_base, extra_powers)], dim=0)
    return slopes


def build_alibi(attention_mask, n_head):
    """transformers build_alibi_tensor for batch 1: [NH, 1, T] = slope * ((cumsum(mask) - 1) * mask)."""
    slopes = alibi_slopes_torch(n_head)
    arange_tensor = ((attention_mask.cumsum(dim=-1) - 1) * attention_mask)[:, None, :]
    alibi = slopes[..., None] * arange_tensor
    return alibi.reshape(n_head, 1, attention_mask.shape[-1]).to(torch.float32)


class Bloom:
    """BloomForCausalLM forward (transformers >= 4.3x eager path), eval mode, batch of 1."""

    def __init__(self, weights, cfg, prefix=""):
        self.cfg = cfg
        self.w = {k[len(prefix):]: _t(v) for k, v in weights.items() if k.startswith(prefix)}
        self.C, self.NH, self.L = cfg["hidden_size"], cfg["n_head"], cfg["n_layer"]
        self.eps = cfg["layer_norm_epsilon"]
        assert not cfg.get("apply_residual_connection_post_layernorm", False)

    def ln(self, x, name):
        return F.layer_norm(x, (self.C,), self.w[name + ".weight"], self.w[name + ".bias"], self.eps)

    def linear(self, x, name):
        return F.linear(x, self.w[name + ".weight"], self.w[name + ".bias"])

    def forward(self, ids):
        w, C, NH = self.w, self.C, self.NH
        HS = C // NH
        T = len(ids)
        idx = torch.tensor(ids, dtype=torch.long)
        h = self.ln(w["word_embeddings.weight"][idx], "word_embeddings_layernorm")
        hs = [h]
        mask = torch.ones(1, T)  # no padding: alibi reduces to slope * j
        alibi = build_alibi(mask, NH)  # [NH, 1, T]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        additive = torch.zeros(T, T).masked_fill(causal, torch.finfo(torch.float32).min)
        inv_norm = 1.0 / math.sqrt(HS)
        for i in range(self.L):
            p = "h.%d." % i
            ln1 = self.ln(h, p + "input_layernorm")
            fused = self.linear(ln1, p + "self_attention.query_key_value")  # [T, 3C]
            fused = fused.view(T, NH, 3, HS)
            q = fused[..., 0, :].transpose(0, 1)  # [NH, T, HS]
            k = fused[..., 1, :].transpose(0, 1)
            v = fused[..., 2, :].transpose(0, 1)
            scores = alibi.baddbmm(batch1=q, batch2=k.transpose(-1, -2), beta=1.0, alpha=inv_norm)
            scores = scores + additive
            pr = F.softmax(scores, dim=-1, dtype=torch.float32)
            ctx = torch.bmm(pr, v).transpose(0, 1).reshape(T, C)
            h = h + self.linear(ctx, p + "self_attention.dense")  # residual = hidden_states
            ln2 = self.ln(h, p + "post_attention_layernorm")
            m = bloom_gelu_forward(self.linear(ln2, p + "mlp.dense_h_to_4h"))
            h = h + self.linear(m, p + "mlp.dense_4h_to_h")
            hs.append(h)
        h = self.ln(h, "ln_f")
        hs.append(h)
        logits = torch.matmul(h, w["word_embeddings.weight"].t())
        return logits, torch.stack(hs)


# ============================================================================ naive float64 check

def _ln64(x, g, b, eps):
    mu = sum(x) / len(x)
    var = sum((xi - mu) ** 2 for xi in x) / len(x)
    r = 1.0 / math.sqrt(var + eps)
    return [(xi - mu) * r * gi + bi for xi, gi, bi in zip(x, g, b)]


def _matvec_in_out(x, W, b):  # W [in][out]
    out = list(b)
    for i, xi in enumerate(x):
        row = W[i]
        for o in range(len(out)):
            out[o] += xi * row[o]
    return out


def _matvec_out_in(x, W, b):  # W [out][in]
    return [bo + sum(wi * xi for wi, xi in zip(row, x)) for row, bo in zip(W, b)]


def naive_forward(arch, weights, cfg, ids, prefix=""):
    """Per-position, per-head float64 implementation written from the papers / SPECS, sharing
    no code with the torch classes above. Returns logits as float64 numpy [T, V]."""
    W = {k[len(prefix):]: np.asarray(v, dtype=np.float64).tolist() for k, v in weights.items()
         if k.startswith(prefix) and not k.endswith(".attn.bias")}
    eps = cfg["layer_norm_epsilon"]
    if arch == "gpt2":
        C, NH, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
        emb = W["wte.weight"]
        xs = [[a + b for a, b in zip(emb[t], W["wpe.weight"][pos])] for pos, t in enumerate(ids)]
    else:
        C, NH, L = cfg["hidden_size"], cfg["n_head"], cfg["n_layer"]
        emb = W["word_embeddings.weight"]
        xs = [_ln64(emb[t], W["word_embeddings_layernorm.weight"], W["word_embeddings_layernorm.bias"], eps)
              for t in ids]
        # slopes straight from the SPECS formula
        cp2 = 2 ** int(math.floor(math.log2(NH)))
        slopes = [(2.0 ** (-8.0 / cp2)) ** k for k in range(1, cp2 + 1)]
        slopes += [(2.0 ** (-4.0 / cp2)) ** k for k in range(1, 2 * (NH - cp2), 2)]
    HS = C // NH
    T = len(ids)
    gelu_c = math.sqrt(2.0 / math.pi)
    for i in range(L):
        p = "h.%d." % i
        if arch == "gpt2":
            a = [_ln64(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps) for x in xs]
            qkv = [_matvec_in_out(r, W[p + "attn.c_attn.weight"], W[p + "attn.c_attn.bias"]) for r in a]
            Q = [[r[hh * HS:(hh + 1) * HS] for hh in range(NH)] for r in qkv]
            K = [[r[C + hh * HS:C + (hh + 1) * HS] for hh in range(NH)] for r in qkv]
            Vv = [[r[2 * C + hh * HS:2 * C + (hh + 1) * HS] for hh in range(NH)] for r in qkv]
        else:
            a = [_ln64(x, W[p + "input_layernorm.weight"], W[p + "input_layernorm.bias"], eps) for x in xs]
            qkv = [_matvec_out_in(r, W[p + "self_attention.query_key_value.weight"],
                                  W[p + "self_attention.query_key_value.bias"]) for r in a]
            # interleaved per head: rows [h*3*HS, +HS) q, then k, then v
            Q = [[r[hh * 3 * HS:hh * 3 * HS + HS] for hh in range(NH)] for r in qkv]
            K = [[r[hh * 3 * HS + HS:hh * 3 * HS + 2 * HS] for hh in range(NH)] for r in qkv]
            Vv = [[r[hh * 3 * HS + 2 * HS:hh * 3 * HS + 3 * HS] for hh in range(NH)] for r in qkv]
        new = []
        for t in range(T):
            ctx = []
            for hh in range(NH):
                sc = []
                for j in range(t + 1):
                    s = sum(qa * kb for qa, kb in zip(Q[t][hh], K[j][hh])) / math.sqrt(HS)
                    if arch == "bloom":
                        s += slopes[hh] * j
                    sc.append(s)
                mx = max(sc)
                e = [math.exp(s - mx) for s in sc]
                z = sum(e)
                ctx += [sum(e[j] / z * Vv[j][hh][d] for j in range(t + 1)) for d in range(HS)]
            if arch == "gpt2":
                o = _matvec_in_out(ctx, W[p + "attn.c_proj.weight"], W[p + "attn.c_proj.bias"])
            else:
                o = _matvec_out_in(ctx, W[p + "self_attention.dense.weight"], W[p + "self_attention.dense.bias"])
            x = [xa + oa for xa, oa in zip(xs[t], o)]
            if arch == "gpt2":
                m = _ln64(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
                m = _matvec_in_out(m, W[p + "mlp.c_fc.weight"], W[p + "mlp.c_fc.bias"])
                m = [0.5 * u * (1 + math.tanh(gelu_c * (u + 0.044715 * u ** 3))) for u in m]
                m = _matvec_in_out(m, W[p + "mlp.c_proj.weight"], W[p + "mlp.c_proj.bias"])
            else:
                m = _ln64(x, W[p + "post_attention_layernorm.weight"], W[p + "post_attention_layernorm.bias"], eps)
                m = _matvec_out_in(m, W[p + "mlp.dense_h_to_4h.weight"], W[p + "mlp.dense_h_to_4h.bias"])
                m = [0.5 * u * (1 + math.tanh(0.79788456 * u * (1 + 0.044715 * u * u))) for u in m]
                m = _matvec_out_in(m, W[p + "mlp.dense_4h_to_h.weight"], W[p + "mlp.dense_4h_to_h.bias"])
            new.append([xa + ma for xa, ma in zip(x, m)])
        xs = new
    hf = np.array([_ln64(x, W["ln_f.weight"], W["ln_f.bias"], eps) for x in xs])
    return hf @ np.asarray(emb).T


# ============================================================================ outputs

def greedy(model, prompt, n_new):
    """Greedy decoding with full recomputation each step (no KV cache). Returns (tokens, margins)
    where margin = top1 - top2 logit at each step."""
    ids = list(prompt)
    out, margins, maxvals, lses = [], [], [], []
    for _ in range(n_new):
        logits, _ = model.forward(ids)
        last = logits[-1]
        top2 = torch.topk(last, 2)
        nxt = int(torch.argmax(last))
        assert nxt == int(top2.indices[0])
        out.append(nxt)
        margins.append(float(top2.values[0] - top2.values[1]))
        maxvals.append(float(top2.values[0]))
        lses.append(float(torch.logsumexp(last, dim=0)))
        ids.append(nxt)
    return out, margins, maxvals, lses


def stored_rows(T, V):
    if V <= BIG_VOCAB:
        return list(range(T))
    return [T - 1]


def compute_outputs(model, vocab, seqs, prompts, loss_seq_index, vocab_sel):
    """All expected tensors for one model. Returns (tensors dict, description dict)."""
    t = {"vocab_sel": np.array(vocab_sel, np.int64)}
    desc = {"sequences": [], "greedy": [], "loss": {}}
    for k, ids in enumerate(seqs):
        logits, hs = model.forward(ids)
        rows = stored_rows(len(ids), vocab)
        t["ids_%d" % k] = np.array(ids, np.int64)
        t["logits_%d" % k] = logits[rows].numpy()
        t["logits_pos_%d" % k] = np.array(rows, np.int64)
        t["logits_sel_%d" % k] = logits[:, vocab_sel].numpy()
        t["lse_%d" % k] = torch.logsumexp(logits, dim=-1).numpy()
        t["argmax_%d" % k] = torch.argmax(logits, dim=-1).numpy().astype(np.int64)
        t["maxval_%d" % k] = logits.max(dim=-1).values.numpy()
        top2 = torch.topk(logits, 2, dim=-1).values
        t["gap_%d" % k] = (top2[:, 0] - top2[:, 1]).numpy()
        t["hs_%d" % k] = hs.numpy()
        srt = torch.sort(logits, dim=-1, descending=True).values
        desc["sequences"].append({
            "index": k, "length": len(ids), "logits_rows": rows,
            "logit_absmax": float(logits.abs().max()), "logit_std": float(logits.std()),
            "min_top1_top2_gap": float((srt[:, 0] - srt[:, 1]).min()),
        })
    for g, prompt in enumerate(prompts):
        toks, margins, maxvals, lses = greedy(model, prompt, GREEDY_NEW_TOKENS)
        t["greedy_prompt_%d" % g] = np.array(prompt, np.int64)
        t["greedy_out_%d" % g] = np.array(toks, np.int64)
        t["greedy_margin_%d" % g] = np.array(margins, np.float32)
        t["greedy_maxval_%d" % g] = np.array(maxvals, np.float32)
        t["greedy_lse_%d" % g] = np.array(lses, np.float32)
        desc["greedy"].append({"index": g, "prompt": list(prompt), "out": toks,
                               "min_margin": float(min(margins))})
    ids = seqs[loss_seq_index]
    logits, _ = model.forward(ids)
    # HF causal-LM loss with labels = input_ids: shift by one, mean over T-1 positions
    per_pos = F.cross_entropy(logits[:-1], torch.tensor(ids[1:]), reduction="none")
    t["loss_ids"] = np.array(ids, np.int64)
    t["loss_per_pos"] = per_pos.numpy()
    t["loss_mean"] = np.array([float(per_pos.mean())], np.float32)
    desc["loss"] = {"sequence_index": loss_seq_index, "mean": float(per_pos.mean())}
    return t, desc


def quantize_model(arch, weights, cfg, kind):
    """Returns (dequantized weights dict with the same names/layouts, extra tensors, info)."""
    L = cfg["n_layer"]
    if arch == "gpt2":
        mods = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]
    else:
        mods = ["self_attention.query_key_value", "self_attention.dense",
                "mlp.dense_h_to_4h", "mlp.dense_4h_to_h"]
    deq_w = dict(weights)
    extra, info = {}, {}
    for i in range(L):
        for m in mods:
            name = "h.%d.%s" % (i, m)
            w = weights[name + ".weight"]
            lin = np.ascontiguousarray(w.T) if arch == "gpt2" else w  # [out, in]
            if kind == "nf4":
                st = bnb_ref.NF4State(lin)
                d = st.dequantize()
                for k, v in st.serialized(name).items():
                    extra["bnb." + k] = v
                info[name] = {"offset": float(st.offset), "nblocks": int(st.absmax_f32.size),
                              "codes_differing_if_x_div_absmax": st.n_codes_differing_if_divide,
                              "nested_blocks": int(st.nested_absmax.size)}
            else:
                cb, scb = bnb_ref.quantize_int8_rowwise(lin)
                d = bnb_ref.dequantize_int8_rowwise(cb, scb)
                extra["bnb." + name + ".weight"] = cb
                extra["bnb." + name + ".SCB"] = scb
                extra["bnb." + name + ".weight_format"] = np.array(0, np.uint8)  # shape [] as in bnb
                info[name] = {}
            if i in DEQ_LAYERS:
                extra["deq." + name + ".weight"] = d
            info[name].update({"shape_out_in": list(lin.shape),
                               "deq_sum": float(d.astype(np.float64).sum()),
                               "deq_abs_sum": float(np.abs(d.astype(np.float64)).sum()),
                               "max_abs_err_vs_f32": float(np.abs(d - lin).max())})
            deq_w[name + ".weight"] = np.ascontiguousarray(d.T) if arch == "gpt2" else d
    return deq_w, extra, info


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def pick_prompts(models, vocab, seed, lengths, min_margin=2e-3, tries=12):
    """Random prompts whose greedy continuation never has a near-tie (min top1-top2 gap >=
    min_margin, so any engine within tolerance makes the same choices); among those, the one whose
    continuation has the most distinct tokens (random tied-embedding models like to repeat).
    `models`: the F32 model and its quantized variants; the gap condition must hold for all."""
    rng = np.random.RandomState(seed)
    chosen = []
    for L in lengths:
        best, best_key = None, None
        for _ in range(tries):
            prompt = rng.randint(0, vocab, size=L).tolist()
            runs = [greedy(m, prompt, GREEDY_NEW_TOKENS) for m in models]
            ok = all(min(r[1]) >= min_margin for r in runs)
            key = (ok, len(set(runs[0][0])))
            if best_key is None or key > best_key:
                best, best_key = prompt, key
        assert best_key[0], "no prompt without near-ties"
        chosen.append(best)
    return chosen


SEQ_LENGTHS = [1, 5, 17, 40]
TEXT_SEQS = [  # real GPT-2 token ids (../shared/data/gpt2-tokenizer/test-vectors/gpt2_cases.jsonl)
    (" Hello, world!", [18435, 11, 995, 0]),
    (" this is \U0001f999.cpp", [428, 318, 12520, 99, 247, 13, 20322]),
    ("\u043d\u0435\u0449\u043e \u043d\u0430 \u0411\u044a\u043b\u0433\u0430\u0440\u0441\u043a\u0438",
     [22177, 16843, 141, 231, 15166, 12466, 121, 16142, 12466, 239, 141, 232, 30143, 140, 111, 16142,
      21169, 21727, 31583, 18849]),
]


def vocab_selection(vocab, seed):
    rng = np.random.RandomState(seed)
    sel = {0, 1, 2, vocab // 2, vocab - 1} | set(rng.choice(vocab, 11, replace=False).tolist())
    return sorted(sel)


def describe_tensors(vocab, quant=None):
    d = {
        "vocab_sel": "I64 [S]: vocabulary ids whose logits are stored for every position",
        "ids_k": "I64 [T_k]: input token ids of sequence k (each sequence run alone, batch 1, no padding)",
        "logits_k": "F32 [R_k, V]: full logit rows for the positions listed in logits_pos_k",
        "logits_pos_k": "I64 [R_k]: which positions logits_k holds (all positions when V <= %d, else only the "
                        "last position T_k-1; lse/argmax/maxval/logits_sel/hs cover every position)" % BIG_VOCAB,
        "logits_sel_k": "F32 [T_k, S]: logits[:, vocab_sel] for every position",
        "lse_k": "F32 [T_k]: logsumexp of the full logit row at every position",
        "argmax_k": "I64 [T_k]: argmax of the full logit row at every position",
        "maxval_k": "F32 [T_k]: max of the full logit row at every position",
        "gap_k": "F32 [T_k]: top1 - top2 logit gap at every position (assert argmax_k only where the gap is "
                 "well above the tolerance)",
        "hs_k": "F32 [L+2, T_k, C]: residual stream; [0] = input of block 0 (GPT-2: wte+wpe; BLOOM: after "
                "word_embeddings_layernorm), [i] = output of block i-1, [L+1] = after ln_f",
        "greedy_prompt_g": "I64 [P_g]: prompt g",
        "greedy_out_g": "I64 [%d]: greedy (argmax) continuation, full recompute each step" % GREEDY_NEW_TOKENS,
        "greedy_margin_g": "F32 [%d]: top1 - top2 logit at each generated step" % GREEDY_NEW_TOKENS,
        "greedy_maxval_g": "F32 [%d]: max logit (= logit of the chosen token) at each generated step; checks "
                           "incremental decoding numerically even when the tokens repeat" % GREEDY_NEW_TOKENS,
        "greedy_lse_g": "F32 [%d]: logsumexp of the logit row at each generated step" % GREEDY_NEW_TOKENS,
        "loss_ids": "I64 [T]: sequence for the loss (labels = input ids, HF shift)",
        "loss_per_pos": "F32 [T-1]: cross-entropy of predicting loss_ids[t+1] from position t",
        "loss_mean": "F32 [1]: mean of loss_per_pos",
    }
    if quant == "nf4":
        d["deq.<module>.weight"] = ("F32 [out, in], layers %s only: the dequantized NF4+DQ weight the logits "
                                    "were computed with (GPT-2: Conv1D weight transposed to [out, in] before "
                                    "quantizing); every layer has deq_sum/deq_abs_sum in expected.json" % (DEQ_LAYERS,))
        d["bnb.<module>.weight*"] = ("bitsandbytes Linear4bit serialized state (SPECS.md section 1 table): "
                                     ".weight U8 [(N+1)/2,1], .weight.absmax U8, .weight.quant_map F32[16], "
                                     ".weight.nested_absmax F32, .weight.nested_quant_map F32[256], "
                                     ".weight.quant_state.bitsandbytes__nf4 U8 (UTF-8 JSON)")
    elif quant == "int8":
        d["deq.<module>.weight"] = ("F32 [out, in], layers %s only: dequantized LLM.int8 weight = "
                                    "(CB * SCB) * fl32(1/127)" % (DEQ_LAYERS,))
        d["bnb.<module>.weight"] = "I8 [out, in]: CB = round_half_even(W * (127 / SCB))"
        d["bnb.<module>.SCB"] = "F32 [out]: row absmax"
        d["bnb.<module>.weight_format"] = "U8 shape []: 0 (row-major), as Linear8bitLt saves it"
    return d


def run_model(name, arch, cfg, weights, seed, model_dir, write_model, seqs, prompts, notes,
              quant_kinds=(), naive_seqs=(0, 1, 2), prefix=""):
    os.makedirs(model_dir, exist_ok=True)
    files = {}
    if write_model:
        write_config(cfg, os.path.join(model_dir, "config.json"))
        st_io.save_file(weights, os.path.join(model_dir, "model.safetensors"))
        files["config.json"] = sha256(os.path.join(model_dir, "config.json"))
        files["model.safetensors"] = sha256(os.path.join(model_dir, "model.safetensors"))
    ctor = GPT2 if arch == "gpt2" else Bloom
    model = ctor(weights, cfg, prefix)
    vocab = cfg["vocab_size"]
    vsel = vocab_selection(vocab, seed + 7)
    quantized = {kind: quantize_model(arch, weights, cfg, kind) for kind in quant_kinds}
    if prompts is None:
        prompts = pick_prompts([model] + [ctor(q[0], cfg, prefix) for q in quantized.values()],
                               vocab, seed + 2, [3, 8])

    # cross-check against the naive float64 implementation
    max_err = 0.0
    for k in naive_seqs:
        ref = naive_forward(arch, weights, cfg, seqs[k], prefix)
        got = model.forward(seqs[k])[0].double().numpy()
        err = np.abs(got - ref).max() / max(1.0, np.abs(ref).max())
        max_err = max(max_err, float(err))
    assert max_err < 2e-5, "%s: torch vs naive float64 mismatch %g" % (name, max_err)

    tensors, desc = compute_outputs(model, vocab, seqs, prompts, 2, vsel)
    st_io.save_file(tensors, os.path.join(model_dir, "expected.safetensors"))
    files["expected.safetensors"] = sha256(os.path.join(model_dir, "expected.safetensors"))
    manifest = {
        "model": name, "arch": arch, "config": cfg, "notes": notes,
        "model_files": ("<repo root>/../shared/data/tiny-gpt2 (read from there, not copied)" if not write_model
                        else "config.json + model.safetensors in this folder"),
        "naive_float64_check_max_rel_err": max_err,
        "tolerance": {"abs": 1e-4, "rel_when_abs_gt_1": 1e-4},
        "expected.safetensors": {"tensors": describe_tensors(vocab), **desc},
    }
    for kind in quant_kinds:
        deq_w, extra, info = quantized[kind]
        qmodel = ctor(deq_w, cfg, prefix)
        qt, qdesc = compute_outputs(qmodel, vocab, seqs, prompts, 2, vsel)
        qt.update(extra)
        fn = "expected_%s.safetensors" % kind
        st_io.save_file(qt, os.path.join(model_dir, fn))
        files[fn] = sha256(os.path.join(model_dir, fn))
        manifest[fn] = {"tensors": describe_tensors(vocab, kind), "quantized_weights": info, **qdesc,
                        "max_abs_logit_shift_vs_f32": float(max(
                            np.abs(qt["logits_%d" % k] - tensors["logits_%d" % k]).max()
                            for k in range(len(seqs))))}
    manifest["sha256"] = files
    with open(os.path.join(model_dir, "expected.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest


# ============================================================================ NF4 codec vectors

def nf4_codec_vectors(path):
    """Raw codec vectors, independent of any model: inputs of awkward sizes and their NF4 (+DQ)
    and LLM.int8 encodings."""
    rng = np.random.RandomState(1234)
    cases = {
        "a": rng.standard_normal(1).astype(np.float32),          # single element
        "b": rng.standard_normal(63).astype(np.float32) * 0.3,    # partial first block, odd count
        "c": rng.standard_normal(65).astype(np.float32) * 2.0,    # 1 full + 1-element block
        "d": rng.standard_normal(64 * 300 + 17).astype(np.float32) * 0.05,  # 301 blocks -> 2 nested
    }
    # e: exact midpoints / codes / extremes (ties go to the LOWER code), one block
    absmax = np.float32(2.0)
    mids = (bnb_ref.NF4_MID * absmax).astype(np.float32)  # exact: *2 is exact in float32
    codes = (bnb_ref.NF4_CODE * absmax).astype(np.float32)
    e = np.concatenate([[absmax, -absmax], mids, codes, np.nextafter(mids, np.float32(10)),
                        np.nextafter(mids, np.float32(-10))]).astype(np.float32)
    e = np.concatenate([e, np.zeros(64 - e.size % 64, np.float32)]) if e.size % 64 else e
    assert e.size == 64
    cases["e"] = e
    # z: a normal block followed by an all-zero block. bitsandbytes' CUDA kernel computes
    # 0 * (1/0) = NaN there, and dQuantizeNF4(NaN) falls through to code 0 (-1.0); after double
    # quantization that block's absmax is no longer exactly 0, so it dequantizes to a small
    # non-zero constant. Documented quirk; see README.
    cases["z"] = np.concatenate([rng.standard_normal(64).astype(np.float32), np.zeros(64, np.float32)])
    t = {}
    info = {}
    for key, x in cases.items():
        st = bnb_ref.NF4State(x)
        t[key + ".input"] = x
        t[key + ".codes"] = st.codes                       # U8 [n], one code per element (unpacked)
        t[key + ".packed"] = st.packed                     # U8 [(n+1)/2], high nibble first
        t[key + ".absmax"] = st.absmax_f32                 # F32 [nblocks] (no DQ)
        t[key + ".deq_nodq"] = st.dequantize_without_dq()  # F32 [n]
        t[key + ".qabsmax"] = st.qabsmax                   # U8 [nblocks]
        t[key + ".nested_absmax"] = st.nested_absmax       # F32 [ceil(nblocks/256)]
        t[key + ".offset"] = np.array([st.offset], np.float32)
        t[key + ".absmax_dq"] = st.absmax_dq               # F32 [nblocks]
        t[key + ".deq"] = st.dequantize()                  # F32 [n], with DQ
        info[key] = {"n": int(x.size), "nblocks": int(st.absmax_f32.size),
                     "nested_blocks": int(st.nested_absmax.size), "offset": float(st.offset)}
    # the all-zero block of case e: 0 * (1/0) = NaN -> dQuantizeNF4 falls through to code 0
    assert (t["z.codes"][-64:] == 0).all() and (t["z.deq_nodq"][-64:] == 0).all()
    # int8 row-wise on a small matrix with an odd shape (includes exact .5 cases via rowmax=127)
    m = rng.standard_normal((5, 33)).astype(np.float32)
    m[0, :4] = [127.0, 0.5, 1.5, -2.5]  # rowmax 127 -> scale 1: ties round half to even
    cb, scb = bnb_ref.quantize_int8_rowwise(m)
    t["int8.input"] = m
    t["int8.CB"] = cb
    t["int8.SCB"] = scb
    t["int8.deq"] = bnb_ref.dequantize_int8_rowwise(cb, scb)
    t["nf4_code"] = bnb_ref.NF4_CODE.copy()
    t["dynamic_map"] = bnb_ref.DYNAMIC_MAP.copy()
    st_io.save_file(t, path)
    return info


# ============================================================================ main

def main():
    t0 = time.time()
    os.makedirs(OUT, exist_ok=True)
    specs_ok = bnb_ref.check_dynamic_map_against_specs(os.path.join(SHARED, "SPECS.md"))
    # ALiBi slopes: hand-computed from the SPECS formula
    assert alibi_slopes_torch(4).tolist() == [0.25, 0.0625, 0.015625, 0.00390625]
    assert alibi_slopes_torch(6).tolist() == [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125]
    assert torch.allclose(build_alibi(torch.ones(1, 5), 6)[4, 0], 0.5 * torch.arange(5.0))

    summary = {"generator": "runtime/src/test/python/reference_models.py", "torch": torch.__version__,
               "numpy": np.__version__, "dynamic_map_matches_specs": specs_ok, "models": {}}

    specs = [
        # name, arch, seed, cfg, quant kinds
        ("gpt2-a", "gpt2", 101, gpt2_config(2, 64, 4, 50257, 128), ("nf4", "int8")),
        ("gpt2-b", "gpt2", 202, gpt2_config(3, 96, 6, 3001, 64), ()),
        ("bloom-a", "bloom", 303, bloom_config(2, 64, 4, 1000), ("nf4", "int8")),
        ("bloom-b", "bloom", 404, bloom_config(3, 96, 6, 1000), ()),
    ]
    for name, arch, seed, cfg, qk in specs:
        if arch == "gpt2":
            weights = make_gpt2_weights(seed, cfg, with_attn_bias_buffer=(name == "gpt2-b"))
        else:
            weights = make_bloom_weights(seed, cfg)
        V = cfg["vocab_size"]
        rng = np.random.RandomState(seed + 1)
        seqs = [rng.randint(0, V, size=L).tolist() for L in SEQ_LENGTHS]
        prompts = None  # chosen in run_model: no near-tie in the F32 or any quantized variant
        notes = []
        if name == "gpt2-b":
            notes.append("vocab_size 3001 instead of 50257: a 50257 x 96 F32 wte alone is 19.3 MB, which with "
                         "gpt2-a's 12.9 MB wte would exceed the ~25 MB budget for committed golden data (odd "
                         "size on purpose: exercises non-multiple-of-8 vocab tails)")
            notes.append("carries h.i.attn.bias F32 [1,1,64,64] causal-mask buffers like old GPT-2 "
                         "checkpoints; a loader must ignore them")
        m = run_model(name, arch, cfg, weights, seed, os.path.join(OUT, name), True, seqs, prompts, notes, qk)
        summary["models"][name] = {"sha256": m["sha256"]}
        print("%-8s done  %.1fs" % (name, time.time() - t0), flush=True)

    # the real HF checkpoint (read from ../shared, not copied)
    tw, meta = st_io.load_file(os.path.join(TINY_GPT2, "model.safetensors"))
    tcfg = json.load(open(os.path.join(TINY_GPT2, "config.json"), encoding="utf-8"))
    V = tcfg["vocab_size"]
    rng = np.random.RandomState(505)
    seqs = [rng.randint(0, V, size=L).tolist() for L in SEQ_LENGTHS] + [ids for _, ids in TEXT_SEQS]
    prompts = [TEXT_SEQS[0][1], TEXT_SEQS[1][1]]
    m = run_model("tiny-gpt2", "gpt2", tcfg, tw, 505, os.path.join(OUT, "tiny-gpt2"), False, seqs, prompts,
                  ["real HF checkpoint ../shared/data/tiny-gpt2 (transformer.* names); sequences 4..6 are the "
                   "real GPT-2 token ids of: " + " | ".join(repr(tx) for tx, _ in TEXT_SEQS)],
                  (), naive_seqs=(0, 1, 2, 4), prefix="transformer.")
    summary["models"]["tiny-gpt2"] = {"sha256": m["sha256"]}
    print("%-8s done  %.1fs" % ("tiny-gpt2", time.time() - t0), flush=True)

    cdir = os.path.join(OUT, "nf4-codec")
    os.makedirs(cdir, exist_ok=True)
    info = nf4_codec_vectors(os.path.join(cdir, "vectors.safetensors"))
    with open(os.path.join(cdir, "vectors.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps({"cases": info, "sha256": sha256(os.path.join(cdir, "vectors.safetensors"))},
                           indent=2) + "\n")

    with open(os.path.join(OUT, "MANIFEST.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(summary, indent=2) + "\n")
    total = 0
    for root, _, fs in os.walk(OUT):
        for fn in fs:
            total += os.path.getsize(os.path.join(root, fn))
    print("total %.2f MB in %s, %.1fs" % (total / 1e6, OUT, time.time() - t0))


if __name__ == "__main__":
    main()
