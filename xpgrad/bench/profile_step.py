"""Where a training step's time goes: the op profiler over a few Adam steps of a textbook model.

    xpgrad profile [--model cnn] [--batch 64] [--steps 10] [--device cpu] [--trace out.json]

Prints the per-op table (forward and backward time, calls, MB of results) and the share of the step spent
outside ops (optimizer update, Python). Profiling synchronises the device after every op, so on a GPU the
step is slower than unprofiled; the split between ops is what it shows.
"""
from __future__ import annotations

import argparse
import time

import autograd as ag
from xpgrad.args import ArgumentParser, device, positive_int, writable_file
from xpgrad.bench.steps import BUILDERS, xpgrad_step


def profile_step(model: str = "cnn", batch: int = 64, steps: int = 10, device: str = "cpu"):
    step, sync = xpgrad_step(model, batch, device)
    for _ in range(3):
        step()
    sync()
    t0 = time.perf_counter()
    with ag.profile() as prof:
        for _ in range(steps):
            step()
        sync()
    wall = (time.perf_counter() - t0) / steps
    return prof, wall


def main(argv=None):
    p = ArgumentParser(prog="xpgrad profile", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(BUILDERS), default="cnn")
    p.add_argument("--batch", type=positive_int, default=64)
    p.add_argument("--steps", type=positive_int, default=10)
    p.add_argument("--device", type=device, default="cpu")
    p.add_argument("--trace", type=writable_file, default=None, help="also write a Chrome trace here")
    args = p.parse_args(argv)
    prof, wall = profile_step(args.model, args.batch, args.steps, args.device)
    in_ops = sum(r["total_s"] for r in prof.rows()) / args.steps
    print(f"{args.model} Adam step, batch {args.batch}, {args.device}: {wall * 1e3:.1f} ms per step (profiled), "
          f"{in_ops * 1e3:.1f} ms in ops, {(wall - in_ops) * 1e3:.1f} ms elsewhere (optimizer, Python)")
    print(f"totals over {args.steps} steps:")
    print(prof.table(top=15))
    if args.trace:
        print(f"trace: {prof.to_chrome_trace(args.trace)}")


if __name__ == "__main__":
    import sys

    from xpgrad.cli import run
    sys.exit(run(main, None, "xpgrad profile"))
