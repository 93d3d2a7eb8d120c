"""The ``xpgrad`` command: one entry point to the training job, the benchmarks and the checks.

    xpgrad train --model cnn --epochs 1            # the main job (xpgrad.train)
    xpgrad bench --quick                           # every benchmark suite (xpgrad.bench.run)
    mpiexec -n 2 xpgrad train --distributed       # the main job, data parallel over 2 MPI ranks
    xpgrad bench-parallel                          # data-parallel scaling and allreduce bandwidth
    xpgrad gradcheck --quick                       # every op's gradient checks (xpgrad.gradcheck)
    xpgrad convert resnet18.pth resnet18.npz       # PyTorch weights to npz (nn.convert)
    xpgrad <command> --help                        # a command's options
    xpgrad --debug <command> ...                   # errors with their traceback (also XPGRAD_DEBUG=1)

Each command is the ``main(argv)`` of one module, imported only when that command runs, so ``xpgrad --help``
needs nothing beyond the package and a missing optional dependency only matters to the command that uses it.
``python -m xpgrad ...`` is the same command, also from a source checkout that was never installed.

Errors take one path, :func:`run`. Arguments are checked while they are parsed (:mod:`xpgrad.args`), so a bad
one stops the command before any work with one line on stderr, ``xpgrad <command>: error: <what is wrong>``,
and exit status 2. An error of the library while the command runs (a damaged checkpoint, a file that cannot be
read or written, a device that fails: see :func:`expected_error`) prints one line of the same form and exits
with status 1; of chained exceptions only the outermost message is shown. ``--debug`` (anywhere before ``--``)
or ``XPGRAD_DEBUG=1`` prints the traceback as well; an exception that is not one of those (a bug) keeps its
traceback. Ctrl-C prints one line and exits with 130.
"""
from __future__ import annotations

import importlib
import os
import sys
import traceback

from xpgrad.args import UsageError

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
              "  --debug     show the traceback of an error (also XPGRAD_DEBUG=1)",
              "", "'xpgrad <command> --help' lists a command's options."]
    return "\n".join(lines)


def _exit_code(value) -> int:
    """A command's result as an exit status: its int, else 0 (the training job returns its metrics)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# the packages whose own exception types are errors a run may meet (not bugs): DeviceError, CheckpointError,
# DatasetNotFoundError, IDXFormatError, GradientAuditError, ...
_LIBRARY = ("autograd", "backends", "nn", "xpgrad")


def expected_error(exc: BaseException) -> bool:
    """True for an error a command may meet on a good day, reported in one line: ``ValueError`` (bad values or
    files; ``CheckpointError`` is one), ``OSError`` (files, folders, permissions), ``ImportError`` (a missing
    optional dependency) and the library's own exception types. Anything else is a bug and keeps its
    traceback."""
    if isinstance(exc, (ValueError, OSError, ImportError)):
        return True
    return type(exc).__module__.split(".")[0] in _LIBRARY


def _text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        names = [os.fsdecode(f) for f in (exc.filename, exc.filename2) if f is not None]
        return f"{exc.strerror}: " + " -> ".join(repr(n) for n in names)
    return str(exc).strip()


def error_message(exc: BaseException, command: str = "") -> str:
    """The message to print for ``exc``: its own, else the first non-empty one down its chain of causes, else
    its type's name; without a leading ``"<command>: "`` (the line already starts with the command)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    text = ""
    while e is not None and id(e) not in seen and not text:
        seen.add(id(e))
        text = _text(e)
        e = e.__cause__ or e.__context__
    text = text or type(exc).__name__
    if command and text.startswith(command + ": "):
        text = text[len(command) + 2:]
    return text


def _say(prog: str, message: str) -> None:
    """``<prog>: error: <message>`` on stderr; the first line of the message on that line, any further lines (a
    message that lists places looked in, say) as written below it."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)


def pop_debug(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without its ``--debug`` flags (those before a ``--``), and whether debugging is on: a flag, or
    ``XPGRAD_DEBUG`` set to anything but empty or ``0``."""
    stop = argv.index("--") if "--" in argv else len(argv)
    flagged = "--debug" in argv[:stop]
    rest = [a for a in argv[:stop] if a != "--debug"] + argv[stop:]
    return rest, flagged or os.environ.get("XPGRAD_DEBUG", "") not in ("", "0")


def run(func, argv, prog: str, debug: bool | None = None) -> int:
    """Call a command's ``func(argv)`` and turn what it raises into a message and an exit status (never raises
    SystemExit): see the module docstring. ``prog`` starts each message (``xpgrad train``); ``debug`` None reads
    ``--debug`` from ``argv`` and ``XPGRAD_DEBUG``. Also what each command module's ``__main__`` runs."""
    argv = list(sys.argv[1:] if argv is None else argv)
    argv, flagged = pop_debug(argv)
    debug = flagged if debug is None else debug
    command = prog.split()[-1].rpartition(".")[2]          # "xpgrad convert", "python -m nn.convert": "convert"
    try:
        return _exit_code(func(argv))
    except UsageError as exc:           # a bad argument: argparse's errors and the commands' own checks
        _say(exc.prog or prog, exc.message)
        return 2
    except SystemExit as exc:           # argparse's --help, or a command stopping with a message
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        _say(prog, error_message(exc, command))
        return 1
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as exc:  # noqa: BLE001  (sorted by expected_error: the rest is re-raised)
        if not expected_error(exc):
            raise
        if debug:
            traceback.print_exc()
        _say(prog, error_message(exc, command))
        return 1


def main(argv=None) -> int:
    """Run ``xpgrad argv...``; returns the exit status (never raises SystemExit, so it can be called in-process)."""
    argv, debug = pop_debug(list(sys.argv[1:] if argv is None else argv))
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
    return run(module.main, rest, f"xpgrad {cmd}", debug)


if __name__ == "__main__":
    sys.exit(main())
