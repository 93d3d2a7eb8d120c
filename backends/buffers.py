"""Buffers for ops' large arrays, a backend service: ``backend.buffers``.

Three calls, the same on every backend:

    take(shape, dtype, zero=False)   a scratch array (uninitialised, or zeros)
    give(array)                      hand a ``take`` array back once it and every view of it are dead
    result(shape, dtype)             an uninitialised array for an op's result

On the CPU (:class:`RecyclingBuffers`) a fresh multi-megabyte array costs a page fault per 4 KiB page on first
touch (dearer still on a virtual machine, and the allocator hands freed memory back to the system between
training steps, so the faults recur every step), often more than the work that fills it; so a few arrays per
size are kept for the next call, one store per thread. On a GPU (:class:`PlainBuffers`) CuPy's memory pool
already recycles device memory, so the calls allocate plainly.

Results are recycled only when no one can see them any more: every view of an array holds a reference to it,
so an array whose one holder is the store's list can be handed out again, and one that a live view still
reaches never is.
"""
from __future__ import annotations

import sys
import threading

__all__ = ["RecyclingBuffers", "PlainBuffers", "WORKSPACE_BYTES"]

WORKSPACE_BYTES = 256 * 2**20
"""Most memory one thread's store keeps for reuse between calls (scratch and results, each)."""

_SMALL = 2**18
"""Arrays under this many bytes are never kept: their allocation is cheap."""


def _size(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _refcounts(items: list) -> list:
    return [sys.getrefcount(a) for a in items]


_ONLY_LISTED = _refcounts([object()])[0]
"""What ``_refcounts`` reports for an object that only its list holds (measured, not assumed: the count
includes the interpreter's own temporary references, which differ between Python versions)."""


class RecyclingBuffers(threading.local):
    """Recycled flat arrays of one array module, per thread (each thread starts with an empty store)."""

    def __init__(self, xp):
        self.xp = xp
        self.free: dict = {}        # (dtype, size) -> flat scratch arrays given back
        self.bytes = 0
        self.results: dict = {}     # (dtype, shape) -> arrays handed out as results
        self.result_bytes = 0

    def take(self, shape, dtype, zero: bool = False):
        """A scratch array of ``shape`` (zeros when ``zero``): a given-back one of the same size, else new."""
        stack = self.free.get((dtype.str, _size(shape)))
        if stack:
            a = stack.pop()
            self.bytes -= a.nbytes
            if zero:
                a.fill(0)
            return a.reshape(shape)
        return (self.xp.zeros if zero else self.xp.empty)(shape, dtype)

    def give(self, a) -> None:
        """Return an array from ``take`` whose contents (and every view of it) are no longer needed."""
        if a is None or a.nbytes < _SMALL or self.bytes + a.nbytes > WORKSPACE_BYTES:
            return
        stack = self.free.setdefault((a.dtype.str, a.size), [])
        if len(stack) < 2:
            stack.append(a.reshape(-1))
            self.bytes += a.nbytes

    def result(self, shape, dtype):
        """An uninitialised array for an op's result: an earlier result of the same shape that nothing uses any
        more, else a new one (kept for reuse while the budget allows; at most a few per shape)."""
        shape = tuple(shape)
        if _size(shape) * dtype.itemsize < _SMALL:
            return self.xp.empty(shape, dtype)
        kept = self.results.setdefault((dtype.str, shape), [])
        for a, refs in zip(kept, _refcounts(kept)):
            if refs == _ONLY_LISTED:
                return a
        a = self.xp.empty(shape, dtype)
        if len(kept) < 4 and self.result_bytes + a.nbytes <= WORKSPACE_BYTES:
            kept.append(a)
            self.result_bytes += a.nbytes
        return a

    def clear(self) -> None:
        """Drop the calling thread's kept arrays."""
        self.free.clear()
        self.bytes = 0
        self.results.clear()
        self.result_bytes = 0


class PlainBuffers:
    """Plain allocations on a device whose array library pools memory itself (CuPy)."""

    def __init__(self, xp):
        self.xp = xp

    def take(self, shape, dtype, zero: bool = False):
        return (self.xp.zeros if zero else self.xp.empty)(shape, dtype)

    def give(self, a) -> None:
        """Nothing to keep: the library's pool gets the memory back when the last reference goes."""

    def result(self, shape, dtype):
        return self.xp.empty(tuple(shape), dtype)

    def clear(self) -> None:
        pass
