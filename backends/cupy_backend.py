"""CuPy backend: one instance per GPU. Importing this module never fails; using it without CuPy does."""
from __future__ import annotations

from .base import Backend, DeviceError
from .buffers import PlainBuffers

try:  # CuPy is optional: the `gpu` extra
    import cupy
    import cupyx
except Exception as exc:  # ImportError, or a CUDA library failing to load
    cupy = None
    cupyx = None
    _import_error = exc
else:
    _import_error = None


def available() -> bool:
    """True when CuPy is importable and at least one CUDA device answers."""
    if cupy is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


class CupyBackend(Backend):
    kind = "cuda"

    def __init__(self, index: int = 0):
        if not available():
            why = f"CuPy could not be imported ({_import_error})" if cupy is None else "no CUDA device is visible"
            raise DeviceError(f"device 'cuda:{index}' is not available: {why}. "
                              "Install the 'gpu' extra on a machine with an NVIDIA GPU, or use device='cpu'.")
        n = cupy.cuda.runtime.getDeviceCount()
        if not 0 <= index < n:
            raise DeviceError(f"device 'cuda:{index}' does not exist; {n} CUDA device(s) visible")
        self.index = index
        self.xp = cupy
        self.buffers = PlainBuffers(cupy)           # CuPy's memory pool already recycles device memory
        self._device = cupy.cuda.Device(index)
        with self._device:
            self._rng = cupy.random.default_rng()

    def available(self) -> bool:
        return True

    def activate(self):
        return self._device

    def asarray(self, data, dtype=None):
        with self._device:
            return cupy.asarray(data, dtype=dtype)

    def to_host(self, array):
        return cupy.asnumpy(array)

    def seed(self, seed: int) -> None:
        with self._device:
            self._rng = cupy.random.default_rng(seed)

    @property
    def rng(self):
        return self._rng

    def scatter_add(self, target, index, values) -> None:
        cupyx.scatter_add(target, index, values)

    def synchronize(self) -> None:
        self._device.synchronize()

