"""The ``xpgrad`` command: one entry point to the training job, the benchmarks and the checks.

    xpgrad train --model cnn --epochs 1            # the main job (xpgrad.train)
    xpgrad bench --quick                           # every benchmark suite (xpgrad.bench.run)
    mpiexec -n 2 xpgrad train --distributed       # the main job, data parallel over 2 MPI ranks
    xpgrad bench-parallel                          # data-parallel scaling and allreduce bandwidth
    xpgrad gradcheck --quick                       # every op's gradient checks (xpgrad.gradcheck)
    xpgrad convert resnet18.pth resnet18.npz       # PyTorch weights to npz (nn.convert)
    xpgrad <command> --help                        # a command's options

Each command is the ``main(argv)`` of one module, imported only when that command runs, so ``xpgrad --help``
needs nothing beyond the package and a missing optional dependency only matters to the command that uses it.
``python -m xpgrad ...`` is the same command, also from a source checkout that was never installed.
"""
from __future__ import annotations

import importlib
import sys

# name -> (module whose main(argv) runs it, one line for --help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("xpgrad.train", "train a model of the zoo on MNIST / Fashion-MNIST (the main job)"),
    "torch-train": ("xpgrad.torch_train", "the same training recipe in PyTorch, for comparison"),
    "bench": ("xpgrad.bench.run", "benchmark suites: op overhead, large ops, training steps, vs PyTorch"),
    "bench-parallel": ("xpgrad.bench.parallel", "data-parallel scaling (1 vs 2 MPI ranks) and allreduce bandwidth"),
    "profile": ("xpgrad.bench.profile_step", "where a training step's time goes, op by op"),
    "gradcheck": ("xpgrad.gradcheck", "property-test every op: forward, gradients, second order, CPU vs GPU"),
    "convert": ("nn.convert", "convert a PyTorch .pth state_dict to an xpgrad .npz checkpoint"),
    "gpu-check": ("xpgrad.bench.gpu_check", "the whole GPU check: tests on CuPy, benchmarks, one CNN epoch"),
}


def usage() -> str:
    from xpgrad import __version__
    width = max(map(len, COMMANDS))
    lines = [f"usage: xpgrad <command> [options]      (xpgrad {__version__})", "",
             "Reverse-mode autograd and a deep-learning mini-framework on NumPy (CPU) or CuPy (GPU).", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "options:", "  -h, --help  show this message and exit", "  --version   show the version and exit",
              "", "'xpgrad <command> --help' lists a command's options."]
    return "\n".join(lines)


def _exit_code(value) -> int:
    """A command's result as an exit status: its int, else 0 (the training job returns its metrics)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def main(argv=None) -> int:
    """Run ``xpgrad argv...``; returns the exit status (never raises SystemExit, so it can be called in-process)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(usage(), file=sys.stderr)
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd in ("-h", "--help", "help"):
        print(usage())
        return 0
    if cmd == "--version":
        from xpgrad import __version__
        print(f"xpgrad {__version__}")
        return 0
    if cmd not in COMMANDS:
        print(f"xpgrad: unknown command {cmd!r}; choose from {', '.join(COMMANDS)}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[cmd][0])
    try:
        return _exit_code(module.main(rest))
    except SystemExit as exc:         # argparse's --help and errors, or a command stopping with a message
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
