"""Timing helpers shared by the benchmark suites: warm-up, synchronisation, medians with spread."""
from __future__ import annotations

import platform
import statistics
import time


def measure(fn, sync=None, warmup: int = 3, repeat: int = 15, number: int = 1, budget_s: float = 5.0) -> dict:
    """Time ``fn`` (seconds per call): median of ``repeat`` runs of ``number`` calls each.

    ``sync`` is called after each run so that asynchronous devices are timed to completion.
    ``number`` is raised for very fast functions so each run lasts at least ~2 ms; ``repeat``
    is lowered when the runs would exceed ``budget_s``.
    """
    return measure_side_by_side([(fn, sync)], warmup, repeat, number, budget_s)[0]


def measure_side_by_side(cases, warmup: int = 3, repeat: int = 15, number: int = 1, budget_s: float = 5.0,
                         block_s: float = 0.002, pause_s: float = 0.0) -> list:
    """Time several ``(fn, sync)`` pairs in interleaved rounds; one result dict (as :func:`measure`) each.

    Each round runs every case once, so slow phases of a shared, noisy machine hit all of them alike and
    the ratios between them stay meaningful. A run is a block of calls lasting at least ``block_s``, after
    a pause of ``pause_s``: thread pools (OpenBLAS, OpenMP) spin for a while after their last task, and
    without the pause the previous case's spinning workers would steal cores from the next one.
    ``budget_s`` bounds the time of each case.
    """
    plans = []
    for fn, sync in cases:
        sync = sync or (lambda: None)
        for _ in range(warmup):
            fn()
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        one = max(time.perf_counter() - t0, 1e-7)
        n = max(number, int(block_s / one))
        plans.append((fn, sync, n, int(budget_s / (one * n))))
    rounds = max(3, min([repeat] + [p[3] for p in plans]))
    runs = [[] for _ in plans]
    for _ in range(rounds):
        for (fn, sync, n, _), out in zip(plans, runs):
            if pause_s:
                time.sleep(pause_s)
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            sync()
            out.append((time.perf_counter() - t0) / n)
    results = []
    for r, (_, _, n, _) in zip(runs, plans):
        r = sorted(r)
        q = statistics.quantiles(r, n=4) if len(r) >= 2 else [r[0]] * 3
        results.append({"median": statistics.median(r), "p25": q[0], "p75": q[2], "min": r[0], "runs": len(r),
                        "number": n})
    return results


def machine() -> dict:
    """What the figures were measured on."""
    import os
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import numpy
    info["numpy"] = numpy.__version__
    try:                                    # the BLAS kernel in use (OPENBLAS_CORETYPE can force a slow one)
        from threadpoolctl import threadpool_info
        info["blas"] = "; ".join(f"{p.get('internal_api')} {p.get('version')} {p.get('architecture', '')} "
                                 f"{p.get('num_threads')} threads".replace("  ", " ")
                                 for p in threadpool_info() if p.get("user_api") == "blas")
    except ImportError:
        info["blas"] = "unknown (pip install threadpoolctl)"
    from backends import cpu_kernels
    info["cpu_kernels"] = cpu_kernels.status()      # C kernels compiled, or why the NumPy formulas run
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if os.environ.get(var):
            info[var] = os.environ[var]
    try:
        import torch
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    import backends
    if backends.cuda_available():
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(0)
        info["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        info["cupy"] = cupy.__version__
        info["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
        info["driver"] = cupy.cuda.runtime.driverGetVersion()
    return info


def fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def table(rows: list[dict], columns: list[str]) -> str:
    """A GitHub-markdown table of ``rows`` (dicts) with the given columns."""
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        out.append("| " + " | ".join(str(r.get(c, "")) for c in columns) + " |")
    return "\n".join(out)


def try_torch():
    """PyTorch (with :func:`steady_malloc` applied), or None when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    steady_malloc()
    return torch


def steady_malloc() -> bool:
    """Let glibc keep freed large blocks for reuse instead of unmapping them; returns whether it applied.

    PyTorch's CPU allocator passes every tensor to ``malloc``. With glibc's defaults a block of a few MiB is
    mapped fresh and unmapped on free, so each training step of the textbook CNN takes 2,000-3,700 page
    faults, and how many depends on what the process allocated before (a benchmark that loads a dataset
    first measures a different PyTorch). Raising the mmap threshold to its 32 MiB maximum and the trim
    threshold above it gives PyTorch steady, fault-free, faster steps (figures in benchmarks/RESULTS.md), as a
    PyTorch user would get with these settings or jemalloc; the comparisons measure PyTorch at that best.
    xpgrad recycles its large arrays itself (``backends.buffers``), so its own steps are unaffected.
    """
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3        # glibc's mallopt parameters (malloc.h)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 256 << 20))
    except (OSError, AttributeError):                       # not glibc: nothing to tune
        return False


def report(result: dict) -> str:
    """Markdown table of ``result["rows"]`` followed by the ratios as a list."""
    rows = [{**r, "median": fmt_time(r["median"]), "spread (p25-p75)": f"{fmt_time(r['p25'])} - {fmt_time(r['p75'])}"}
            for r in result["rows"]]
    text = table(rows, ["case", "impl", "device", "median", "spread (p25-p75)", "runs"])
    text += "\n\n" + "\n".join(f"- {k}: **{v:.2f}x**" for k, v in result["ratios"].items())
    return text


def emit(result: dict, json_path: str | None = None) -> None:
    """Add the machine to ``result``, print the report, and write it as JSON when a path is given."""
    import json
    result["machine"] = machine()
    print(report(result))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(result, f, indent=1)
