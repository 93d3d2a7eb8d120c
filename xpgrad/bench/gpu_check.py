"""``make gpu-check``: the whole GPU story in one command, for a machine with an NVIDIA GPU.

Made for a machine where CuPy, PyTorch (CUDA build), pytest and hypothesis are already installed and
nothing can be downloaded: it runs from the source tree with that machine's ``python3``, installs nothing,
and keeps within ``--budget`` seconds (default 470, under 8 minutes). In order, it

1. prints the environment (GPU, memory, driver and CUDA versions, CuPy, NumPy, torch);
2. runs the whole test suite with the CuPy backend on and counts passed / failed / skipped; a skip whose
   reason is a missing CuPy or GPU counts against the check, since here nothing may skip for that;
3. runs the benchmark suites on ``cuda`` beside PyTorch CUDA (op overhead, matmul, conv, softmax-CE, the
   MLP/CNN/RNN Adam steps at batch 64 and 512) and the CNN step on the CPU for the CPU/GPU speed-up;
4. trains the textbook CNN one epoch of Fashion-MNIST on the GPU, and a slice of the same epoch on the CPU,
   reporting epoch time, samples per second and test accuracy. The IDX files come from ``--data`` or
   ``$XPGRAD_DATA`` (or the loader's usual places); without them a synthetic set of the same shape is
   written and every figure from it is labelled synthetic;
5. writes ``gpu-report.md``, ``gpu-results.json`` and ``ratios.png`` into ``--out`` (default ``$OUT``, else
   ``gpu-check-out``).

    make gpu-check [DATA=dir] [OUT=dir]            # or: python3 -m xpgrad gpu-check --data dir --out dir

Exit status 0 only when CuPy sees a GPU, no test failed and no test skipped for want of CuPy.
"""
from __future__ import annotations

import gzip
import json
import os
import platform
import re
import subprocess
import sys
import time

import numpy as np

import backends
from xpgrad.args import ArgumentParser, device_name, existing_dir, positive_float, positive_int, writable_dir

# The source checkout this module sits in (its tests/ are what the check runs), else the working directory.
_SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROOT = _SRC if os.path.isdir(os.path.join(_SRC, "tests")) else os.getcwd()
CUPY_SKIP = re.compile(r"cupy|cuda|gpu", re.IGNORECASE)
TARGETS = {"step_b64": 2.0, "step_b512": 1.3, "epoch_speedup": 30.0}


def environment() -> dict:
    """What the check ran on: GPU, driver and library versions."""
    env = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
           "numpy": np.__version__, "cuda_available": backends.cuda_available()}
    try:
        import cupy
        env["cupy"] = cupy.__version__
        rt = cupy.cuda.runtime
        env["cuda_runtime"] = rt.runtimeGetVersion()
        env["cuda_driver"] = rt.driverGetVersion()
        if env["cuda_available"]:
            props = rt.getDeviceProperties(0)
            name = props["name"]
            env["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
            env["gpu_memory_gib"] = round(props["totalGlobalMem"] / 2 ** 30, 1)
            env["compute_capability"] = f"{props['major']}.{props['minor']}"
            env["gpu_count"] = rt.getDeviceCount()
    except Exception as exc:  # noqa: BLE001  (reported, not fatal: the check says what is missing)
        env["cupy_error"] = f"{type(exc).__name__}: {exc}"
    try:
        import torch
        env["torch"] = torch.__version__
        env["torch_cuda"] = torch.cuda.is_available()
    except ImportError:
        env["torch"] = None
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        env["nvidia_smi"] = smi.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return env


def run_tests(out: str, timeout: float, pytest_args=()) -> dict:
    """The suite (or ``pytest_args``) in a subprocess, outcomes logged per test so a timeout still leaves counts."""
    log = os.path.join(out, "pytest-log.jsonl")
    if os.path.exists(log):
        os.remove(log)
    env = dict(os.environ, XPGRAD_TEST_LOG=log, HYPOTHESIS_PROFILE=os.environ.get("HYPOTHESIS_PROFILE", "ci"))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "xpgrad.bench.pytest_log", "-p", "no:cacheprovider", *pytest_args]
    t0 = time.perf_counter()
    timed_out = False
    with open(os.path.join(out, "pytest-output.txt"), "w") as f:
        try:
            rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc, timed_out = None, True
    records = []
    if os.path.exists(log):
        with open(log, encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
    counts = {k: sum(r["outcome"] == k for r in records) for k in ("passed", "failed", "skipped")}
    cupy_skips = [r for r in records if r["outcome"] == "skipped" and CUPY_SKIP.search(r["reason"])]
    skip_reasons: dict[str, int] = {}
    for r in records:
        if r["outcome"] == "skipped":
            skip_reasons[r["reason"]] = skip_reasons.get(r["reason"], 0) + 1
    return {"returncode": rc, "timed_out": timed_out, "seconds": round(time.perf_counter() - t0, 1),
            "counts": counts, "cupy_tests": sum("cupy" in r["nodeid"] or "cuda" in r["nodeid"] for r in records),
            "skipped_for_want_of_cupy": len(cupy_skips), "skip_reasons": skip_reasons,
            "failures": [{"test": r["nodeid"], "why": r["reason"][-1500:]} for r in records
                         if r["outcome"] == "failed"]}


def run_benchmarks(budget: float, device: str = "cuda") -> dict:
    """Op and training-step suites on ``device`` beside PyTorch, plus the CNN step on the CPU."""
    from xpgrad.bench import ops, steps
    result = {"rows": [], "ratios": {}}
    suites = [ops.run(devices=[device], budget=budget),
              steps.run(devices=[device], budget=budget, batches=None if device != "cpu" else (64,))]
    if device != "cpu":
        suites.append(steps.run(models=("cnn",), batches=(64,), devices=["cpu"], budget=budget))
    for r in suites:
        result["rows"] += r["rows"]
        result["ratios"].update(r["ratios"])
    med = {(r["case"], r["impl"], r["device"]): r["median"] for r in result["rows"]}
    cnn = "cnn Adam step, batch 64"
    if (cnn, "xpgrad", "cpu") in med and (cnn, "xpgrad", "cuda") in med:
        result["ratios"]["cnn_b64_step_cpu_over_cuda_xpgrad"] = med[(cnn, "xpgrad", "cpu")] / med[(cnn, "xpgrad", "cuda")]
    return result


def write_synthetic_fashion_mnist(root: str, seed: int = 0, sizes=(60000, 10000)) -> str:
    """IDX files shaped like Fashion-MNIST (60,000 + 10,000 images 28x28, labels 0-9): per-class templates plus
    noise, learnable but not the real data. Returns the directory to pass as ``--data-root``."""
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, (10, 28, 28)).astype(np.float32)
    os.makedirs(root, exist_ok=True)
    for prefix, n in zip(("train", "t10k"), sizes):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = np.clip(0.6 * templates[labels] + rng.normal(0, 60, (n, 28, 28)), 0, 255).astype(np.uint8)
        with gzip.open(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"), "wb", compresslevel=1) as f:
            f.write(np.array([0x803, n, 28, 28], ">u4").tobytes() + images.tobytes())
        with gzip.open(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"), "wb", compresslevel=1) as f:
            f.write(np.array([0x801, n], ">u4").tobytes() + labels.tobytes())
    return root


def find_data(data: str | None, out: str) -> tuple[str | None, bool]:
    """``(data_root, synthetic)``: real Fashion-MNIST where the loader finds it offline, else a synthetic set."""
    from nn.data import datasets
    try:
        for split in ("train", "test"):
            datasets.load("fashion-mnist", split, root=data, download=False)
        return data, False
    except Exception as exc:  # noqa: BLE001  (any reason not to use it: say so and go synthetic)
        print(f"Fashion-MNIST not usable offline ({type(exc).__name__}); writing a SYNTHETIC set of the same shape",
              flush=True)
        return write_synthetic_fashion_mnist(os.path.join(out, "synthetic-fashion-mnist")), True


def train(device: str, data_root: str | None, run_dir: str, timeout: float, limit: int | None = None,
          test_limit: int | None = None) -> dict:
    """One epoch of the textbook CNN recipe (Adam 1e-3, batch 64) via ``xpgrad.train`` in a subprocess."""
    cmd = [sys.executable, "-m", "xpgrad.train", "--model", "cnn", "--dataset", "fashion-mnist", "--epochs", "1",
           "--device", device, "--no-download", "--progress", "off", "--out", run_dir]
    cmd += ["--data-root", data_root] if data_root else []
    cmd += ["--limit", str(limit)] if limit else []
    cmd += ["--test-limit", str(test_limit)] if test_limit else []
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"device": device, "error": f"timed out after {timeout:.0f} s"}
    if p.returncode != 0:
        return {"device": device, "error": (p.stdout + p.stderr)[-3000:]}
    with open(os.path.join(run_dir, "metrics.json")) as f:
        m = json.load(f)
    return {"device": device, "n_train": m["n_train"], "n_test": m["n_test"], "epoch_time_s": m["mean_epoch_time_s"],
            "samples_per_s": m["mean_samples_per_s"], "test_acc": m["final_test_acc"], "log": p.stdout[-2000:]}


def verdict(result: dict) -> list[str]:
    """The problems that make the check fail (targets missed are reported, not failed)."""
    problems = []
    if result["device"] != "cpu" and not result["environment"]["cuda_available"]:
        problems.append("CuPy does not see a GPU")
    t = result.get("tests", {})
    if t.get("timed_out"):
        problems.append(f"the test suite did not finish within its time ({t['seconds']} s)")
    if t.get("counts", {}).get("failed"):
        problems.append(f"{t['counts']['failed']} test(s) failed")
    if t.get("skipped_for_want_of_cupy") and result["device"] != "cpu":
        problems.append(f"{t['skipped_for_want_of_cupy']} test(s) skipped for want of CuPy/GPU")
    for r in result.get("training", []):
        if "error" in r:
            problems.append(f"training on {r['device']} failed")
    return problems


def targets(result: dict) -> list[str]:
    lines = []
    ratios = result.get("benchmarks", {}).get("ratios", {})
    for key, v in sorted(ratios.items()):
        m = re.match(r"(mlp|cnn|rnn)_b(\d+)_cuda_xpgrad_over_torch", key)
        if m:
            limit = TARGETS["step_b64"] if int(m.group(2)) <= 64 else TARGETS["step_b512"]
            lines.append(f"{m.group(1)} step batch {m.group(2)} vs PyTorch CUDA: {v:.2f}x (target <= {limit}x) "
                         f"{'met' if v <= limit else 'NOT met'}")
    sp = result.get("epoch_speedup")
    if sp is not None:
        lines.append(f"CNN epoch GPU speed-up over this project's CPU run: {sp:.1f}x (target >= "
                     f"{TARGETS['epoch_speedup']:.0f}x) {'met' if sp >= TARGETS['epoch_speedup'] else 'NOT met'}")
    return lines


def markdown(result: dict) -> str:
    from xpgrad.bench.timing import report
    env, t = result["environment"], result.get("tests", {})
    lines = ["# xpgrad GPU check", "", f"Started {result['started']}, {result['seconds']:.0f} s in all.", "",
             "## Verdict", ""]
    lines += [f"- FAIL: {p}" for p in result["problems"]] or ["- PASS: no failed test, no test skipped for want of "
                                                              "CuPy, training ran"]
    lines += ["", "## Environment", "", "| what | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in env.items()]
    if t:
        c = t["counts"]
        lines += ["", "## Tests", "", f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped in "
                  f"{t['seconds']} s ({t['cupy_tests']} of them CuPy/cuda cases; "
                  f"{t['skipped_for_want_of_cupy']} skipped for want of CuPy){' — TIMED OUT' if t['timed_out'] else ''}.",
                  ""]
        lines += [f"- skipped {n}x: {why}" for why, n in sorted(t["skip_reasons"].items(), key=lambda kv: -kv[1])]
        for f in t["failures"][:40]:
            lines += ["", f"### FAILED {f['test']}", "", "```", f["why"][-1200:], "```"]
    if "benchmarks" in result:
        lines += ["", "## Benchmarks (ratios measured side by side in this run)", "", report(result["benchmarks"])]
    if result.get("training"):
        lines += ["", "## Textbook CNN, one epoch" + (" — SYNTHETIC data" if result["synthetic_data"] else
                                                      " of Fashion-MNIST"), "",
                  "| device | training samples | epoch time (s) | samples/s | test accuracy |", "|---|---|---|---|---|"]
        for r in result["training"]:
            if "error" in r:
                lines.append(f"| {r['device']} | error: see gpu-results.json | | | |")
            else:
                lines.append(f"| {r['device']} | {r['n_train']} | {r['epoch_time_s']:.2f} | {r['samples_per_s']:,.0f} | "
                             f"{r['test_acc']:.4f} (on {r['n_test']}) |")
    lines += ["", "## Targets", ""] + [f"- {x}" for x in targets(result)]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = ArgumentParser(prog="xpgrad gpu-check", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=existing_dir, default=None,
                   help="directory with Fashion-MNIST's IDX files (default: $XPGRAD_DATA; a synthetic set where "
                        "neither holds them)")
    p.add_argument("--out", type=writable_dir, default=os.environ.get("OUT") or "gpu-check-out",
                   help="where the report goes")
    p.add_argument("--budget", type=positive_float, default=470.0, help="seconds for the whole check")
    p.add_argument("--device", type=device_name, default="cuda",
                   help="cuda (the check; reported as failed without a GPU); cpu runs the same steps as a dry run")
    p.add_argument("--pytest-args", default="", help="run these pytest arguments instead of the whole suite")
    p.add_argument("--train-limit", type=positive_int, default=None,
                   help="train on the first N samples only (dry runs)")
    p.add_argument("--skip-tests", action="store_true", help="benchmarks and training only")
    args = p.parse_args(argv)
    args.data = args.data or os.environ.get("XPGRAD_DATA") or None
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    left = lambda: args.budget - (time.perf_counter() - t0)  # noqa: E731
    result = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "device": args.device, "environment": environment()}
    print(json.dumps(result["environment"], indent=1), flush=True)

    if args.device == "cpu" or result["environment"]["cuda_available"]:
        if not args.skip_tests:
            print("== tests ==", flush=True)
            result["tests"] = run_tests(out, max(60.0, left() - 190), args.pytest_args.split())
            print(json.dumps({k: result["tests"][k] for k in ("counts", "seconds", "skipped_for_want_of_cupy")}),
                  flush=True)
        print("== benchmarks ==", flush=True)
        result["benchmarks"] = run_benchmarks(2.0 if left() > 150 else 0.7, args.device)
        print("== training ==", flush=True)
        data_root, result["synthetic_data"] = find_data(args.data, out)
        gpu = train(args.device, data_root, os.path.join(out, "train-device"), max(30.0, left() - 40),
                    args.train_limit, args.train_limit)
        cpu = train("cpu", data_root, os.path.join(out, "train-cpu"), max(20.0, left() - 5),
                    min(3200, args.train_limit or 3200), 1000)
        result["training"] = [gpu, cpu]
        if "error" not in gpu and "error" not in cpu:
            result["epoch_speedup"] = gpu["samples_per_s"] / cpu["samples_per_s"]
            print(f"CNN epoch on {args.device}: {gpu['epoch_time_s']:.1f} s, test accuracy {gpu['test_acc']:.4f}; "
                  f"{result['epoch_speedup']:.1f}x the CPU's samples/s", flush=True)
    result["seconds"] = time.perf_counter() - t0
    result["problems"] = verdict(result)
    with open(os.path.join(out, "gpu-results.json"), "w") as f:
        json.dump(result, f, indent=1, default=str)
    text = markdown(result)
    with open(os.path.join(out, "gpu-report.md"), "w") as f:
        f.write(text)
    if "benchmarks" in result:
        try:
            from xpgrad.bench.run import plot_ratios
            plot_ratios(result["benchmarks"]["ratios"], os.path.join(out, "ratios.png"))
        except ImportError as e:
            print(f"note: ratios.png not written ({e})")
    print(text)
    print(f"written: {out}/gpu-report.md, gpu-results.json")
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    from xpgrad.cli import run
    sys.exit(run(main, None, "xpgrad gpu-check"))
