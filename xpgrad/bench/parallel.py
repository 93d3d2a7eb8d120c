"""``xpgrad bench-parallel``: data-parallel scaling of the textbook CNN step, and allreduce bandwidth.

    xpgrad bench-parallel [--ranks 1 2] [--batch-size 64] [--steps 20] [--out benchmarks/out]
    python -m xpgrad.bench.parallel ...

Started without an MPI launcher it starts itself under ``mpiexec -n R`` (the interpreter's bin/, the ``mpi``
extra) for every R of ``--ranks``, one thread per rank, and collects each run's figures:

- the median time of one Adam step of the textbook CNN (float32, NumPy) with ``--batch-size`` samples per
  rank (weak scaling: R ranks train R times the samples per step); scaling efficiency = t(1 rank) / t(R ranks)
  (1.0: R times the throughput), speed-up = R * efficiency;
- the time of an in-place allreduce of gradient-sized float32 buffers (1e4 .. 1e7 values) between the ranks,
  as algorithm bandwidth (bytes / time) and bus bandwidth (x 2(R-1)/R, what a ring moves per rank).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from xpgrad.args import ArgumentParser, device, nonneg_int, positive_int, writable_dir

SIZES = (10_000, 100_000, 1_000_000, 10_000_000)


def _worker(args) -> dict:
    import autograd as ag
    import backends
    import nn
    from nn import parallel
    comm = parallel.init(device=args.device)
    dev = backends.get_backend(parallel.local_device(args.device))
    ag.manual_seed(0)
    model = parallel.DistributedDataParallel(nn.models.textbook_cnn().to(dev), comm)
    opt = nn.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(comm.rank)
    x = ag.tensor(rng.standard_normal((args.batch_size, 1, 28, 28)).astype(np.float32), device=dev)
    y = ag.tensor(rng.integers(0, 10, args.batch_size), device=dev)
    times = []
    for i in range(args.warmup + args.steps):
        comm.barrier()
        t0 = time.perf_counter()
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        model.finish_gradient_sync()
        opt.step()
        dev.synchronize()
        t = time.perf_counter() - t0
        if i >= args.warmup:
            times.append(comm.allreduce_floats([t])[0] / comm.size)     # the mean over ranks of this step
    comm_times = {}
    if comm.size > 1:
        for n in SIZES:
            buf = dev.xp.ones(n, dtype="float32")
            reps = max(3, min(50, int(2e7 // n)))
            ts = []
            for _ in range(reps + 1):
                comm.barrier()
                t0 = time.perf_counter()
                comm.allreduce_(buf)
                dev.synchronize()
                ts.append(time.perf_counter() - t0)
            comm_times[n] = statistics.median(ts[1:])
    n_params = sum(p.numel() for p in model.parameters())
    return {"ranks": comm.size, "device": dev.name, "transport": comm.name, "step_s": statistics.median(times), "step_s_all": times,
            "batch_per_rank": args.batch_size, "parameters": int(n_params),
            "buckets": len(model.bucket_sizes), "allreduce_s": comm_times}


def _launch(ranks: int, args) -> dict:
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if not os.path.exists(mpiexec):
        raise SystemExit(f"no mpiexec next to {sys.executable}; pip install 'xpgrad[mpi]'")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    cmd = [mpiexec, "-n", str(ranks), sys.executable, "-m", "xpgrad.bench.parallel", "--worker",
           "--device", args.device, "--batch-size", str(args.batch_size), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def report(runs: list[dict]) -> str:
    base = runs[0]["step_s"]
    lines = [f"textbook CNN on {runs[0]['device']} ({runs[-1]['transport']}), Adam, float32, {runs[0]['batch_per_rank']} samples per rank and step, 1 thread per "
             f"rank ({runs[0]['parameters']:,} parameters)", "",
             f"{'ranks':>5}  {'step (ms)':>9}  {'samples/s':>9}  {'speed-up':>8}  {'efficiency':>10}"]
    for r in runs:
        eff = base / r["step_s"]
        sps = r["ranks"] * r["batch_per_rank"] / r["step_s"]
        lines.append(f"{r['ranks']:>5}  {1e3 * r['step_s']:>9.1f}  {sps:>9,.0f}  {r['ranks'] * eff:>8.2f}  {eff:>10.2f}")
    for r in runs:
        if r["allreduce_s"]:
            k = r["ranks"]
            lines += ["", f"allreduce (in place, float32, {r['transport']}) between {k} ranks:",
                      f"{'values':>10}  {'MB':>7}  {'time (ms)':>9}  {'alg GB/s':>8}  {'bus GB/s':>8}"]
            for n, t in r["allreduce_s"].items():
                mb = int(n) * 4 / 1e6
                alg = int(n) * 4 / t / 1e9
                lines.append(f"{int(n):>10,}  {mb:>7.2f}  {1e3 * t:>9.3f}  {alg:>8.2f}  {alg * 2 * (k - 1) / k:>8.2f}")
    return "\n".join(lines)


def main(argv=None) -> dict | int:
    p = ArgumentParser(prog="xpgrad bench-parallel", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ranks", type=positive_int, nargs="+", default=[1, 2])
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--steps", type=positive_int, default=20)
    p.add_argument("--device", type=device, default="cpu",
                   help="cpu (MPI) or cuda (NCCL, rank i on cuda:<local rank>)")
    p.add_argument("--warmup", type=nonneg_int, default=3)
    p.add_argument("--timeout", type=positive_int, default=600, help="seconds each mpiexec run may take")
    p.add_argument("--out", type=writable_dir, default=None, help="directory for parallel.json")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        result = _worker(args)
        from nn import parallel
        if parallel.is_main_process():
            print("RESULT " + json.dumps(result), flush=True)
        return 0
    runs = [_launch(r, args) for r in args.ranks]
    print(report(runs))
    result = {"runs": runs}
    try:
        from xpgrad.bench.timing import machine
        result["machine"] = machine()
        print("\nmachine: " + ", ".join(f"{k} {v}" for k, v in result["machine"].items()))
    except Exception:  # noqa: BLE001  (informational only)
        pass
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "parallel.json"), "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    from xpgrad.cli import run
    sys.exit(run(main, None, "xpgrad bench-parallel"))
