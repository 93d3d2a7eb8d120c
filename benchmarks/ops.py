"""Op-level benchmarks: per-op overhead on a tiny graph, and large matmul throughput.

(a) ``((x * w + b).relu()).sum()`` forward + backward on 16-element float32 tensors:
    pure framework overhead; target ≤ 0.8x PyTorch CPU's time.
(b) 2048x2048 float32 matmul forward + backward: target ≤ 1.1x the three raw
    matmuls it needs (x@w, g@wᵀ, xᵀ@g) in the array library alone.

    python -m benchmarks.ops [--quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import json

import numpy as np

import autograd as ag
import backends
from benchmarks.timing import fmt_time, machine, measure, table, try_torch


def _devices():
    out = ["cpu"]
    if backends.cuda_available():
        out.append("cuda")
    return out


def tiny_graph_xpgrad(device):
    be = backends.get_backend(device)
    x, w, b = (ag.randn(16, device=device, requires_grad=True) for _ in range(3))

    def step():
        ((x * w + b).relu()).sum().backward()
        x.grad = w.grad = b.grad = None
    return step, be.synchronize


def tiny_graph_torch(torch, device):
    x, w, b = (torch.randn(16, device=device, requires_grad=True) for _ in range(3))

    def step():
        ((x * w + b).relu()).sum().backward()
        x.grad = w.grad = b.grad = None
    return step, (torch.cuda.synchronize if device == "cuda" else None)


def matmul_xpgrad(device, n):
    be = backends.get_backend(device)
    x = ag.randn(n, n, device=device, requires_grad=True)
    w = ag.randn(n, n, device=device, requires_grad=True)
    g = ag.randn(n, n, device=device)

    def step():
        (x @ w).backward(g)
        x.grad = w.grad = None
    return step, be.synchronize


def matmul_raw(device, n):
    be = backends.get_backend(device)
    xp = be.xp
    x, w, g = (be.asarray(np.random.default_rng(i).standard_normal((n, n), dtype=np.float32)) for i in range(3))

    def step():
        x @ w
        g @ w.T
        x.T @ g
    return step, be.synchronize


def matmul_torch(torch, device, n):
    x = torch.randn(n, n, device=device, requires_grad=True)
    w = torch.randn(n, n, device=device, requires_grad=True)
    g = torch.randn(n, n, device=device)

    def step():
        (x @ w).backward(g)
        x.grad = w.grad = None
    return step, (torch.cuda.synchronize if device == "cuda" else None)


def run(quick: bool = False) -> dict:
    """Run the suite; returns ``{"rows": [...], "ratios": {...}}``."""
    torch = try_torch()
    n = 512 if quick else 2048
    rows, ratios = [], {}
    budget = 1.0 if quick else 5.0

    def add(case, impl, device, fn_sync):
        fn, sync = fn_sync
        r = measure(fn, sync=sync, budget_s=budget)
        rows.append({"suite": "ops", "case": case, "impl": impl, "device": device, **r})
        return r["median"]

    for dev in _devices():
        t_x = add("tiny graph fw+bw (16 el.)", "xpgrad", dev, tiny_graph_xpgrad(dev))
        if torch is not None and (dev == "cpu" or torch.cuda.is_available()):
            t_t = add("tiny graph fw+bw (16 el.)", "torch", dev, tiny_graph_torch(torch, dev))
            ratios[f"tiny_graph_{dev}_xpgrad_over_torch"] = t_x / t_t
        case = f"matmul {n}x{n} fw+bw"
        t_m = add(case, "xpgrad", dev, matmul_xpgrad(dev, n))
        t_r = add(case, "raw 3 matmuls", dev, matmul_raw(dev, n))
        ratios[f"matmul{n}_{dev}_xpgrad_over_raw"] = t_m / t_r
        if torch is not None and (dev == "cpu" or torch.cuda.is_available()):
            t_tm = add(case, "torch", dev, matmul_torch(torch, dev, n))
            ratios[f"matmul{n}_{dev}_xpgrad_over_torch"] = t_m / t_tm
    return {"rows": rows, "ratios": ratios}


def report(result: dict) -> str:
    rows = [{**r, "median": fmt_time(r["median"]), "spread (p25-p75)": f"{fmt_time(r['p25'])} - {fmt_time(r['p75'])}"}
            for r in result["rows"]]
    text = table(rows, ["case", "impl", "device", "median", "spread (p25-p75)", "runs"])
    text += "\n\n" + "\n".join(f"- {k}: **{v:.2f}x**" for k, v in result["ratios"].items())
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller sizes and shorter runs")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    result = run(args.quick)
    result["machine"] = machine()
    print(report(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
