"""Argument checking shared by every ``xpgrad`` command: the parser and the ``type=`` helpers.

Every command builds its options with :class:`ArgumentParser` and checks each value where it is parsed, with
the helpers below, so that a mistake on the command line stops the command before any work starts (a
benchmark that cannot write its results fails in its first second, not after its whole run). A bad value
raises :class:`UsageError`; :func:`xpgrad.cli.run` prints it as one line, ``xpgrad <command>: error: ...``,
and returns the usage status 2. Called directly (``xpgrad.train.main([...])``), a command raises it, a
:class:`SystemExit` with code 2 like argparse's own errors.

Output paths are probed with a real file rather than ``os.access``, which answers "writable" to root for
read-only mounts. A folder that does not exist yet is fine when the nearest folder above it that does exist is
writable (the command creates it); a path below a regular file or on a read-only file system is not.
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile

__all__ = ["UsageError", "ArgumentParser", "positive_float", "nonneg_float", "positive_int", "nonneg_int",
           "device", "device_name", "torch_device", "writable_dir", "writable_file", "existing_dir"]


class UsageError(SystemExit):
    """A command was called with arguments it cannot run with: exit status 2, message ``message``.

    A :class:`SystemExit` (code 2), as argparse's errors are, so code that called a command's ``main`` and
    expected argparse's exit keeps working; :func:`xpgrad.cli.run` prints it as one line."""

    def __init__(self, message: str, prog: str | None = None):
        super().__init__(2)
        self.message = message
        self.prog = prog

    def __str__(self) -> str:
        return self.message


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose errors raise :class:`UsageError` instead of printing the usage and exiting
    (``--help`` still prints and exits 0)."""

    def error(self, message: str):
        raise UsageError(message, self.prog)


# --- numbers -------------------------------------------------------------------------------------------------

def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None


def positive_float(text: str) -> float:
    """A finite number > 0 (a learning rate, a time budget)."""
    x = _float(text)
    if not (math.isfinite(x) and x > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return x


def nonneg_float(text: str) -> float:
    """A finite number >= 0 (a weight decay)."""
    x = _float(text)
    if not (math.isfinite(x) and x >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return x


def positive_int(text: str) -> int:
    """An integer >= 1 (a batch size, a number of steps or samples)."""
    n = _int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return n


def nonneg_int(text: str) -> int:
    """An integer >= 0 (a number of epochs, a seed)."""
    n = _int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return n


# --- devices -------------------------------------------------------------------------------------------------

def device_name(text: str) -> str:
    """A device spec the backends know (``cpu``, ``cuda``, ``cuda:N``), whether or not it is present here."""
    import backends
    try:
        backends.parse_device(text)
    except backends.DeviceError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip().lower()


def device(text: str) -> str:
    """A device spec that is present here, so ``cuda`` without CuPy or a GPU, or ``cuda:3`` on a machine with
    one GPU, is refused up front with the backends' own reason. ``cuda:N`` is resolved as the commands resolve
    it (``backends.get_backend``); plain ``cuda`` only asks ``backends.cuda_available()``, which opens no
    context on GPU 0 (under ``--distributed`` each rank then takes the GPU of its local rank)."""
    import backends
    name = device_name(text)
    kind, _ = backends.parse_device(name)
    if kind == "cuda" and (":" in name or not backends.cuda_available()):
        try:
            backends.get_backend(name)
        except backends.DeviceError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return name


def torch_device(text: str) -> str:
    """A device spec for the PyTorch twin (``torch-train``): ``cpu``, or ``cuda``/``cuda:N`` when PyTorch sees
    that GPU. Without torch installed any known name passes (the command then says it skips)."""
    import backends
    name = device_name(text)
    kind, index = backends.parse_device(name)
    if kind == "cuda":
        try:
            import torch
        except ImportError:
            return name
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if index >= count:
            raise argparse.ArgumentTypeError(f"device {text!r} is not available: PyTorch sees "
                                             f"{count} CUDA device(s)")
    return name


# --- paths ---------------------------------------------------------------------------------------------------

def _probe(folder: str, what: str) -> None:
    """Create and remove a file in ``folder``: the one reliable test that files can be written there."""
    try:
        fd, path = tempfile.mkstemp(prefix=".xpgrad-probe-", dir=folder)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{what}: cannot write into {folder!r} ({exc.strerror})") from None
    os.close(fd)
    os.unlink(path)


def writable_dir(text: str) -> str:
    """A folder to write into: an existing writable folder, or one that can be created (the nearest existing
    folder above it is writable). A regular file, a path below one, or a read-only place is refused."""
    path = os.path.abspath(os.path.expanduser(text))
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise argparse.ArgumentTypeError(f"{text!r} exists and is not a directory")
        _probe(path, repr(text))
        return text
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError(f"cannot create directory {text!r}: {parent!r} is not a directory")
    _probe(parent, f"cannot create directory {text!r}")
    return text


def writable_file(text: str) -> str:
    """A file to write: not a folder, in an existing folder where files can be written."""
    path = os.path.abspath(os.path.expanduser(text))
    if os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{text!r} is a directory, not a file")
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        why = "is not a directory" if os.path.exists(parent) else "does not exist"
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: the folder {parent!r} {why}")
    _probe(parent, f"cannot write {text!r}")
    return text


def existing_dir(text: str) -> str:
    """A folder that exists (an input such as ``--data-root``)."""
    path = os.path.expanduser(text)
    if not os.path.isdir(path):
        why = "is not a directory" if os.path.exists(path) else "does not exist"
        raise argparse.ArgumentTypeError(f"{text!r} {why}")
    return text
