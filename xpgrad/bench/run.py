"""``xpgrad bench``: every suite in one run, as a table, JSON and a PNG chart of the ratios.

Suites: :mod:`xpgrad.bench.ops` (per-op overhead, large-op throughput) and :mod:`xpgrad.bench.steps` (one Adam
training step of the textbook MLP, CNN and RNN), on NumPy, on CuPy when a GPU is present, and on PyTorch
CPU/CUDA when installed. Ratios are taken between implementations measured in this same run.

    xpgrad bench [--quick] [--out benchmarks/out]
"""
from __future__ import annotations

import argparse
import json
import os

from xpgrad.args import ArgumentParser, writable_dir
from xpgrad.bench import ops, steps
from xpgrad.bench.timing import machine, report


def plot_ratios(ratios: dict, path: str) -> None:
    """Horizontal bars of every ratio (time of the first implementation over the second; < 1 is faster)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(ratios)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(names) + 1.2))
    ax.barh(names, [ratios[n] for n in names], color=["tab:green" if ratios[n] <= 1 else "tab:orange" for n in names])
    ax.axvline(1.0, color="k", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("time ratio (< 1: xpgrad faster)")
    ax.set_title("xpgrad benchmark ratios, measured side by side")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    p = ArgumentParser(prog="xpgrad bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller sizes and shorter runs")
    p.add_argument("--out", type=writable_dir, default=os.path.join("benchmarks", "out"),
                   help="directory for results.json and ratios.png (checked before the suites run)")
    args = p.parse_args(argv)
    result = {"rows": [], "ratios": {}}
    for suite in (ops, steps):
        r = suite.run(quick=args.quick)
        result["rows"] += r["rows"]
        result["ratios"].update(r["ratios"])
    result["machine"] = machine()
    print(report(result))
    print("\nmachine: " + ", ".join(f"{k} {v}" for k, v in result["machine"].items()))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    try:
        plot_ratios(result["ratios"], os.path.join(args.out, "ratios.png"))
    except ImportError as e:
        print(f"note: ratios.png not written ({e})")
    print(f"written: {args.out}/results.json, {args.out}/ratios.png")
    return result


if __name__ == "__main__":
    import sys

    from xpgrad.cli import run
    sys.exit(run(main, None, "xpgrad bench"))
