#!/usr/bin/python3
"""Independent reference for dev.qlora4j.lora.optim: torch.optim.AdamW, clip_grad_norm_ and HF's LR schedules.

Writes lora/src/test/resources/optim/optim_reference.json (committed; the Java tests read it):

  schedules: lambda values of HF transformers' schedules (optimization.py, re-implemented below from its source:
             _get_constant_lambda, _get_constant_schedule_with_warmup_lr_lambda,
             _get_linear_schedule_with_warmup_lr_lambda, _get_cosine_schedule_with_warmup_lr_lambda with
             num_cycles=0.5), evaluated per step through torch.optim.lr_scheduler.LambdaLR.
  runs:      a few AdamW trajectories on fixed params and per-step grads: for each step the lr LambdaLR gave,
             the total grad norm clip_grad_norm_ returned (before clipping) and every param after the step;
             exp_avg / exp_avg_sq / step after the last step.

Floats are float32 values written as Python floats (exact: parse as double, cast to float).
Run: /usr/bin/python3 lora/src/test/python/optim_reference.py  (torch 1.13, CPU, foreach=False)
"""
import json
import math
import os

import torch
from torch.optim.lr_scheduler import LambdaLR

OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "optim", "optim_reference.json")


# ---------------------------------------------------------------- HF transformers schedule lambdas (optimization.py)

def constant_lambda(_):
    return 1


def constant_with_warmup_lambda(current_step, *, num_warmup_steps):
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1.0, num_warmup_steps))
    return 1.0


def linear_lambda(current_step, *, num_warmup_steps, num_training_steps):
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    return max(0.0, float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps)))


def cosine_lambda(current_step, *, num_warmup_steps, num_training_steps, num_cycles=0.5):
    if current_step < num_warmup_steps:
        return float(current_step) / float(max(1, num_warmup_steps))
    progress = float(current_step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))


def make_lambda(kind, warmup, total):
    if kind == "constant":
        return constant_lambda
    if kind == "constant_with_warmup":
        return lambda s: constant_with_warmup_lambda(s, num_warmup_steps=warmup)
    if kind == "linear":
        return lambda s: linear_lambda(s, num_warmup_steps=warmup, num_training_steps=total)
    if kind == "cosine":
        return lambda s: cosine_lambda(s, num_warmup_steps=warmup, num_training_steps=total)
    raise ValueError(kind)


def schedule_table(kind, base_lr, warmup, total, steps):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = LambdaLR(opt, make_lambda(kind, warmup, total))
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return {"kind": kind, "base_lr": base_lr, "warmup": warmup, "total": total, "lr": lrs}


# ---------------------------------------------------------------- AdamW + clipping trajectories

def floats(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def run(name, *, shapes, decay, lr, betas, eps, weight_decay, kind, warmup, total, steps, max_norm, seed, grad_scales):
    g = torch.Generator().manual_seed(seed)
    params = [torch.nn.Parameter(torch.randn(s, generator=g) * 0.5) for s in shapes]
    init = [floats(p) for p in params]
    groups = [{"params": [p for p, d in zip(params, decay) if d], "weight_decay": weight_decay},
              {"params": [p for p, d in zip(params, decay) if not d], "weight_decay": 0.0}]
    groups = [gr for gr in groups if gr["params"]]
    opt = torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=False)
    sched = LambdaLR(opt, make_lambda(kind, warmup, total))
    out_steps = []
    for k in range(steps):
        grads = []
        for i, p in enumerate(params):
            gr = torch.randn(p.shape, generator=g) * grad_scales[k % len(grad_scales)] * (1.0 + i)
            flat = gr.view(-1)
            flat[0] = 0.0  # an exactly-zero gradient: the update is driven by m alone, denominator by eps
            p.grad = gr
            grads.append(floats(gr))
        lr_now = opt.param_groups[0]["lr"]
        if max_norm is not None:
            total_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        else:
            total_norm = None
        opt.step()
        sched.step()
        out_steps.append({"grads": grads, "lr": lr_now, "total_norm": total_norm,
                          "params": [floats(p) for p in params]})
    state = [opt.state[p] for p in params]
    return {
        "name": name, "shapes": [list(s) for s in shapes], "decay": decay,
        "lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps, "weight_decay": weight_decay,
        "schedule": kind, "warmup": warmup, "total": total, "max_norm": max_norm,
        "init": init, "steps": out_steps,
        "exp_avg": [floats(s["exp_avg"]) for s in state],
        "exp_avg_sq": [floats(s["exp_avg_sq"]) for s in state],
        "step": int(state[0]["step"].item()),
    }


def main():
    torch.set_num_threads(1)
    schedules = []
    for kind in ["constant", "constant_with_warmup", "linear", "cosine"]:
        for warmup, total in [(0, 10), (3, 10), (4, 7), (10, 10), (1, 1)]:
            schedules.append(schedule_table(kind, 3e-4, warmup, total, total + 4))
    runs = [
        # decay on matrices only, clipping active on the large-grad steps, linear decay to 0 and beyond
        run("linear_clip_mask", shapes=[(7, 5), (5,), (3, 7), (3,)], decay=[True, False, True, False],
            lr=3e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1, kind="linear", warmup=3, total=10,
            steps=12, max_norm=1.0, seed=1234, grad_scales=[0.05, 2.0, 0.3, 10.0]),
        # all decayed, no clipping, cosine, unusual betas and eps
        run("cosine_noclip", shapes=[(4, 6), (6,)], decay=[True, True],
            lr=1e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.01, kind="cosine", warmup=2, total=10,
            steps=10, max_norm=None, seed=99, grad_scales=[1.0, 0.001, 3.0]),
        # constant lr after warmup, no weight decay, clip always active (tiny max_norm)
        run("constant_warmup_tightclip", shapes=[(11,), (2, 3)], decay=[True, False],
            lr=2e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, kind="constant_with_warmup", warmup=2,
            total=10, steps=10, max_norm=0.25, seed=7, grad_scales=[1.0, 1e-4, 5.0]),
        # plain constant schedule with everything decayed and a loose clip
        run("constant_decay", shapes=[(3, 3)], decay=[True],
            lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05, kind="constant", warmup=0,
            total=10, steps=10, max_norm=100.0, seed=5, grad_scales=[0.7]),
    ]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"torch": torch.__version__, "schedules": schedules, "runs": runs}, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", os.path.normpath(OUT), os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
