"""Op-level benchmarks: per-op overhead on a tiny graph, and large matmul throughput.

(a) ``((x * w + b).relu()).sum()`` forward + backward on 16-element float32 tensors:
    pure framework overhead; target ≤ 0.8x PyTorch CPU's time.
(b) 2048x2048 float32 matmul forward + backward: target ≤ 1.1x the three raw
    matmuls it needs (x@w, g@wᵀ, xᵀ@g) in the array library alone.
(c) conv2d forward + backward (batch 64, 32→64 channels, 3x3, padding 1, 28x28: the textbook CNN's
    second layer) and softmax cross-entropy forward + backward (4096 x 1000 logits), against PyTorch.

    python -m xpgrad.bench.ops [--quick] [--json PATH]
"""
from __future__ import annotations

import argparse

import numpy as np

import autograd as ag
import backends
from xpgrad.bench.timing import emit, measure_side_by_side, try_torch


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


def _sync(torch, device):
    return torch.cuda.synchronize if device == "cuda" else None


def _arrays(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s, dtype=np.float32) for s in shapes]


CONV_SHAPES = ((64, 32, 28, 28), (64, 32, 3, 3), (64,))
CE_SHAPE = (4096, 1000)


def conv_xpgrad(device, quick=False):
    import nn.functional as F
    n = 16 if quick else 64
    x, w, b = (ag.tensor(a, device=device, requires_grad=True)
               for a in _arrays(((n,) + CONV_SHAPES[0][1:],) + CONV_SHAPES[1:]))

    def step():
        F.conv2d(x, w, b, padding=1).sum().backward()
        x.grad = w.grad = b.grad = None
    return step, backends.get_backend(device).synchronize


def conv_torch(torch, device, quick=False):
    n = 16 if quick else 64
    x, w, b = (torch.tensor(a, device=device, requires_grad=True)
               for a in _arrays(((n,) + CONV_SHAPES[0][1:],) + CONV_SHAPES[1:]))

    def step():
        torch.nn.functional.conv2d(x, w, b, padding=1).sum().backward()
        x.grad = w.grad = b.grad = None
    return step, _sync(torch, device)


def ce_xpgrad(device):
    import nn.functional as F
    z = ag.tensor(_arrays((CE_SHAPE,))[0], device=device, requires_grad=True)
    y = ag.tensor(np.random.default_rng(1).integers(0, CE_SHAPE[1], CE_SHAPE[0]), device=device)

    def step():
        F.cross_entropy(z, y).backward()
        z.grad = None
    return step, backends.get_backend(device).synchronize


def ce_torch(torch, device):
    z = torch.tensor(_arrays((CE_SHAPE,))[0], device=device, requires_grad=True)
    y = torch.tensor(np.random.default_rng(1).integers(0, CE_SHAPE[1], CE_SHAPE[0]), device=device)

    def step():
        torch.nn.functional.cross_entropy(z, y).backward()
        z.grad = None
    return step, _sync(torch, device)


def run(quick: bool = False, devices=None, budget: float | None = None) -> dict:
    """Run the suite on ``devices`` (default: cpu, and cuda when present), ``budget`` seconds per case at most;
    returns ``{"rows": [...], "ratios": {...}}``."""
    torch = try_torch()
    n = 512 if quick else 2048
    rows, ratios = [], {}
    budget = budget or (1.0 if quick else 5.0)

    def compare(key, case, device, impls):
        """Time ``impls`` ({name: (fn, sync)}, xpgrad first) side by side; ratios of xpgrad to each other."""
        names = list(impls)
        res = measure_side_by_side([impls[k] for k in names], budget_s=budget, block_s=0.1, pause_s=0.1)
        for name, r in zip(names, res):
            rows.append({"suite": "ops", "case": case, "impl": name, "device": device, **r})
        for name, r in zip(names[1:], res[1:]):
            ratios[f"{key}_{device}_xpgrad_over_{name.split()[0]}"] = res[0]["median"] / r["median"]

    for dev in devices or _devices():
        use_torch = torch is not None and (dev == "cpu" or torch.cuda.is_available())
        cases = [
            ("tiny_graph", "tiny graph fw+bw (16 el.)", tiny_graph_xpgrad(dev),
             {"torch": lambda: tiny_graph_torch(torch, dev)}),
            (f"matmul{n}", f"matmul {n}x{n} fw+bw", matmul_xpgrad(dev, n),
             {"raw 3 matmuls": lambda: matmul_raw(dev, n), "torch": lambda: matmul_torch(torch, dev, n)}),
            ("conv2d", "conv2d 32→64 3x3 on 28x28 fw+bw", conv_xpgrad(dev, quick),
             {"torch": lambda: conv_torch(torch, dev, quick)}),
            ("softmax_ce", "softmax cross-entropy 4096x1000 fw+bw", ce_xpgrad(dev),
             {"torch": lambda: ce_torch(torch, dev)}),
        ]
        for key, case, mine, others in cases:
            impls = {"xpgrad": mine}
            impls.update({k: make() for k, make in others.items() if k != "torch" or use_torch})
            compare(key, case, dev, impls)
    return {"rows": rows, "ratios": ratios}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller sizes and shorter runs")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    result = run(args.quick)
    emit(result, args.json)


if __name__ == "__main__":
    main()
