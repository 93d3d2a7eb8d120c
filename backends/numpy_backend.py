"""NumPy backend: the CPU and the default."""
from __future__ import annotations

import numpy

from .base import Backend, inverse_order, memory_order
from .buffers import RecyclingBuffers
from .cpu_kernels import CpuFused

_BLOCK = 1 << 16
"""Elements per block of a reordering copy (a block of the source stays in the caches while it is written)."""


class NumpyBackend(Backend):
    kind = "cpu"
    index = 0
    xp = numpy
    fused = CpuFused()    # the NumPy formulas (the reference for CUDA), C kernels where they apply

    def __init__(self, seed: int | None = None):
        self._rng = numpy.random.default_rng(seed)
        self.buffers = RecyclingBuffers(numpy)      # fresh large arrays cost page faults: recycle them

    def available(self) -> bool:
        return True

    def asarray(self, data, dtype=None):
        if hasattr(data, "__cuda_array_interface__"):   # a CuPy array: copy to host
            data = data.get()
        return numpy.asarray(data, dtype=dtype)

    def to_host(self, array):
        return numpy.asarray(array)

    def seed(self, seed: int) -> None:
        self._rng = numpy.random.default_rng(seed)

    @property
    def rng(self):
        return self._rng

    def relayout(self, a, order):
        """As :meth:`Backend.relayout`. NumPy's copy walks the destination's order; when the destination's
        innermost axis is not the source's outermost one, that walk reads the source with short strides
        across all of it and misses the caches at every step (for a batch-last → channel-major copy of a
        few MB, many times slower than a plain copy). So the copy goes in blocks along the source's outermost
        axis, each block a contiguous piece of the source, which recovers most of that loss."""
        src = memory_order(a)
        if not a.ndim or order[-1] == src[0] or a.size <= _BLOCK:
            return super().relayout(a, order)       # NumPy's own walk is fast here
        out = numpy.empty(tuple(a.shape[k] for k in order), a.dtype).transpose(inverse_order(order))
        ax = src[0]
        step = max(1, _BLOCK * a.shape[ax] // a.size)
        for s in range(0, a.shape[ax], step):
            sl = (slice(None),) * ax + (slice(s, s + step),)
            out[sl] = a[sl]
        return out

    def scatter_add(self, target, index, values) -> None:
        numpy.add.at(target, index, values)
