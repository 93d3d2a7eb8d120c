"""Grad mode: whether ops record the graph, per thread (the lowest floor of autograd: imports nothing of it)."""
from __future__ import annotations

import functools
import threading

__all__ = ["is_grad_enabled", "no_grad", "enable_grad", "set_grad_enabled"]


class _GradMode(threading.local):
    """Grad mode, one per thread as in PyTorch: a new thread starts with recording on.

    The default lives on the class, so reading it in a thread that never set it costs one
    attribute lookup and no per-thread initialisation.
    """
    enabled = True


_mode = _GradMode()


def is_grad_enabled() -> bool:
    """Whether ops in the calling thread record the graph (per thread)."""
    return _mode.enabled


class _GradSwitch:
    """Context manager and decorator that sets the calling thread's grad mode for its extent.

    Other threads are not affected; a thread started inside ``no_grad()`` still records.
    """

    value = True

    def __enter__(self):
        self._prev = _mode.enabled
        _mode.enabled = self.value

    def __exit__(self, *exc):
        _mode.enabled = self._prev

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with type(self)():
                return func(*args, **kwargs)
        return wrapper


class no_grad(_GradSwitch):
    """Ops inside record no graph: for evaluation and in-place updates."""
    value = False


class enable_grad(_GradSwitch):
    """Turn recording back on inside a ``no_grad`` region."""
    value = True


class set_grad_enabled(_GradSwitch):
    def __init__(self, mode: bool):
        self.value = bool(mode)

    def __call__(self, func):
        raise TypeError("set_grad_enabled(mode) is a context manager only")
