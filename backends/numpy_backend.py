"""NumPy backend: the CPU and the default."""
from __future__ import annotations

import numpy

from .base import Backend
from .buffers import RecyclingBuffers
from .fused import ArrayFused


class NumpyBackend(Backend):
    kind = "cpu"
    index = 0
    xp = numpy
    fused = ArrayFused(numpy)     # the NumPy formulas: the implementation here, the reference for CUDA

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

    def scatter_add(self, target, index, values) -> None:
        numpy.add.at(target, index, values)
