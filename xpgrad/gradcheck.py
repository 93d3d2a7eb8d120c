"""``xpgrad gradcheck``: the op registry's property tests, run from the installed package.

For every op spec in :func:`autograd.all_specs` and every device asked for, hypothesis draws inputs with
:func:`autograd.testing.samples` and each draw goes through :func:`~autograd.testing.check_forward` (NumPy
reference, float32 kept, nothing mutated), :func:`~autograd.testing.check_gradients` (gradcheck),
:func:`~autograd.testing.check_second_order` (gradgradcheck) and, on a GPU,
:func:`~autograd.testing.check_cross_backend` in float64 and float32: the checks ``tests/test_ops.py`` runs,
without the source tree or pytest (on the CPU through the C kernels of :mod:`backends.cpu_kernels` wherever
they apply, whatever the array size). Prints one row per op and exits non-zero when any check fails.

    xpgrad gradcheck --quick                       # a few examples per op: a smoke test of an install
    xpgrad gradcheck --profile thorough --device cuda
    xpgrad gradcheck --ops exp,relu,conv2d --examples 200

Needs hypothesis (the ``test`` extra: ``pip install 'xpgrad[test]'``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
import warnings
import dataclasses
from dataclasses import dataclass

from xpgrad.args import ArgumentParser, UsageError, positive_int

PROG = "xpgrad gradcheck"

# examples per op and device; the test suite's hypothesis profiles have the same names and sizes
PROFILES = {"ci": 12, "dev": 40, "thorough": 400}
QUICK = 5


@dataclass
class Result:
    op: str
    device: str
    status: str            # "pass", "FAIL" or "skip"
    examples: int = 0
    seconds: float = 0.0
    detail: str = ""       # the failure (with hypothesis's falsifying example) or the reason to skip


def _failure_text(exc: BaseException) -> str:
    """The exception, its notes (hypothesis puts the falsifying example there) and where it was raised."""
    lines = [f"{type(exc).__name__}: {exc}".rstrip()]
    lines += [str(n) for n in getattr(exc, "__notes__", ())]
    tb = traceback.extract_tb(exc.__traceback__)
    if tb:
        f = tb[-1]
        lines.append(f"raised at {f.filename}:{f.lineno} in {f.name}")
    return "\n".join(lines)


def check_op(spec, device: str, max_examples: int, seed: int | None = None) -> Result:
    """Run every check of ``spec`` on ``max_examples`` hypothesis draws on ``device``."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    from autograd.testing import check_cross_backend, check_forward, check_gradients, check_second_order, samples

    kind = "cuda" if device.startswith("cuda") else "cpu"
    if kind in spec.skip:
        return Result(spec.name, device, "skip", detail=str(spec.skip[kind]))
    count = [0]

    @settings(max_examples=max_examples, deadline=None, database=None, phases=(Phase.generate, Phase.shrink),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(data=st.data())
    def run(data):
        count[0] += 1
        arrs, kwargs = data.draw(samples(spec), label="sample")
        check_forward(spec, arrs, kwargs, device)
        check_gradients(spec, arrs, kwargs, device)
        check_second_order(spec, arrs, kwargs, device)
        if kind == "cuda":
            for dtype in ("float64", "float32"):
                check_cross_backend(spec, arrs, kwargs, device, dtype)

    if seed is not None:
        run = hypothesis_seed(seed)(run)
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():     # NumPy's references warn on empty slices (mean of nothing is nan)
            warnings.simplefilter("ignore", RuntimeWarning)
            run()
    except Exception as exc:  # noqa: BLE001  (any failure of any check is this op's failure, reported below)
        return Result(spec.name, device, "FAIL", count[0], time.perf_counter() - t0, _failure_text(exc))
    return Result(spec.name, device, "pass", count[0], time.perf_counter() - t0)


def select(specs: dict, names: str | None) -> dict:
    """The specs named in the comma-separated ``names`` (case-insensitive), all of them for None."""
    if not names:
        return dict(specs)
    by_lower = {n.lower(): n for n in specs}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n.lower() not in by_lower]
    if unknown:
        raise KeyError(f"unknown op(s) {', '.join(unknown)}; known: {', '.join(sorted(specs, key=str.lower))}")
    return {by_lower[n.lower()]: specs[by_lower[n.lower()]] for n in wanted}


def _cell(r: Result) -> str:
    if r.status == "pass":
        return f"pass ({r.examples})"
    return r.status


def run_checks(specs: dict, devices: list[str], max_examples: int, seed: int | None = None, out=None) -> list[Result]:
    """Check every spec on every device, printing one table row per op as it finishes."""
    out = out or sys.stdout
    from backends import cpu_kernels
    cpu_kernels.MIN_SIZE = 0        # the drawn arrays are small: check the CPU's C kernels on them as well
    width = max([len(n) for n in specs] + [2])
    print(f"{'op':<{width}}  " + "  ".join(f"{d:<12}" for d in devices) + "  seconds", file=out, flush=True)
    results = []
    for name, spec in specs.items():
        spec = dataclasses.replace(spec, name=spec.name or name)
        row = [check_op(spec, d, max_examples, seed) for d in devices]
        for r in row:
            r.op = name
        results += row
        print(f"{name:<{width}}  " + "  ".join(f"{_cell(r):<12}" for r in row) +
              f"  {sum(r.seconds for r in row):7.2f}", file=out, flush=True)
    return results


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                       epilog="Profiles: " + ", ".join(f"{k} {v}" for k, v in PROFILES.items()) +
                       f" examples per op and device; --quick {QUICK}.")
    p.add_argument("--device", choices=("cpu", "cuda", "all"), default="all",
                   help="where to check (all: the CPU, and the GPU when CuPy sees one)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--profile", choices=sorted(PROFILES), default=None,
                      help="examples per op, as the test suite's hypothesis profiles "
                           "(default: $HYPOTHESIS_PROFILE, else ci)")
    size.add_argument("--examples", type=positive_int, default=None, metavar="N",
                      help="hypothesis examples per op and device")
    size.add_argument("--quick", action="store_true", help=f"{QUICK} examples per op: a smoke test, for CI")
    p.add_argument("--ops", default=None, metavar="NAMES", help="comma-separated op names (case-insensitive)")
    p.add_argument("--seed", type=int, default=None, help="hypothesis seed, for a reproducible run")
    p.add_argument("--list", action="store_true", help="list the op names and exit")
    args = p.parse_args(argv)
    if args.profile is None and args.examples is None and not args.quick:
        env = os.environ.get("HYPOTHESIS_PROFILE", "ci")
        args.profile = env if env in PROFILES else "ci"
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        raise UsageError("needs hypothesis: pip install 'xpgrad[test]'", PROG) from None
    import autograd as ag
    import backends
    import nn  # noqa: F401  (registers any op defined next to its layer)

    specs = ag.all_specs()
    if args.list:
        print("\n".join(sorted(specs, key=str.lower)))
        return 0
    try:
        specs = select(specs, args.ops)
    except KeyError as exc:
        raise UsageError(exc.args[0], PROG) from None
    cuda = backends.cuda_available()
    if args.device == "cuda" and not cuda:
        raise UsageError("--device cuda, but CuPy sees no GPU", PROG)
    devices = {"cpu": ["cpu"], "cuda": ["cuda"], "all": ["cpu"] + (["cuda"] if cuda else [])}[args.device]
    n = QUICK if args.quick else args.examples if args.examples is not None else PROFILES[args.profile]
    note = "" if cuda or args.device != "all" else " (no GPU here: cuda not checked)"
    print(f"xpgrad gradcheck: {len(specs)} ops on {', '.join(devices)}{note}, up to {n} examples each", flush=True)
    t0 = time.perf_counter()
    results = run_checks(specs, devices, n, args.seed)
    failed = [r for r in results if r.status == "FAIL"]
    for r in failed:
        print(f"\n--- {r.op} on {r.device} FAILED ---\n{r.detail}")
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "FAIL", "skip")}
    print(f"\n{counts['pass']} passed, {counts['FAIL']} failed, {counts['skip']} skipped "
          f"({len(specs)} ops x {len(devices)} device(s)) in {time.perf_counter() - t0:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    from xpgrad.cli import run
    sys.exit(run(main, None, PROG))
