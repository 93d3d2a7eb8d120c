"""The one seam between the engine and array libraries.

A :class:`Backend` wraps an array module (``xp``) plus the few things that are
not spelled the same in NumPy and CuPy: moving data to and from the host, the
random generator, scatter-add, synchronisation, the fused operations
(``backend.fused``: NumPy formulas and C kernels from ``cpu_kernels.py`` on the
CPU, CUDA kernels from ``kernels.py`` on the GPU) and buffers for ops' large
arrays (``backend.buffers``: recycled on the CPU, CuPy's pool on a GPU). Ops never import NumPy or CuPy; they use
``self.xp`` and ``self.backend`` of the backend resolved from their inputs.

Device strings: ``"cpu"`` (NumPy), ``"cuda"`` / ``"cuda:N"`` (CuPy).

Threads: the default device is per thread (``set_default_device`` and ``device()`` change only the
calling thread's; a new thread starts on the CPU, as in PyTorch). Backends themselves are shared, one
per device, and so are their random generators (see :attr:`Backend.rng`); the CPU's recycled buffers are
kept per thread.
"""
from __future__ import annotations

import threading

from .base import Backend, DeviceError
from .numpy_backend import NumpyBackend

__all__ = ["Backend", "DeviceError", "get_backend", "backend_of", "is_array", "cpu", "host",
           "default_device", "set_default_device", "device", "cuda_available", "cuda_backends",
           "parse_device"]

cpu = NumpyBackend()
# NumPy as the host array module: the one name through which autograd/ and nn/ do host-side work (dtype
# objects, checkpoint files, finite differences in float64, test draws). Device data never goes through it
# implicitly: host copies are explicit (``Backend.to_host``, ``Tensor.numpy()``); tests/test_backend_seam.py
# lists every place that uses it.
host = cpu.xp
_cuda_backends: dict[int, Backend] = {}
_cuda_lock = threading.Lock()     # two threads asking for a new GPU at once create one backend, not two


class _DefaultDevice(threading.local):
    """The default device, one per thread as in PyTorch: every new thread starts on the CPU."""
    backend: Backend = cpu


_state = _DefaultDevice()


def parse_device(dev) -> tuple[str, int]:
    """Split a device spec (``"cpu"``, ``"cuda"``, ``"cuda:1"``, Backend) into (kind, index)."""
    if isinstance(dev, Backend):
        return dev.kind, dev.index
    if isinstance(dev, device):
        return dev.type, dev.index
    if not isinstance(dev, str):
        raise DeviceError(f"device must be a string like 'cpu' or 'cuda:0', got {dev!r}")
    kind, _, idx = dev.strip().lower().partition(":")
    if kind not in ("cpu", "cuda") or (idx and not idx.isdigit()) or (kind == "cpu" and idx not in ("", "0")):
        raise DeviceError(f"unknown device {dev!r}; expected 'cpu', 'cuda' or 'cuda:N'")
    return kind, int(idx or 0)


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    from . import cupy_backend
    return cupy_backend.available()


def get_backend(dev=None) -> Backend:
    """The backend for a device spec; ``None`` gives the current default."""
    if dev is None:
        return _state.backend
    if isinstance(dev, Backend):
        return dev
    if isinstance(dev, device) and dev.backend is not None:
        return dev.backend
    kind, idx = parse_device(dev)
    if kind == "cpu":
        return cpu
    be = _cuda_backends.get(idx)
    if be is None:
        from . import cupy_backend
        with _cuda_lock:
            be = _cuda_backends.get(idx)
            if be is None:
                be = _cuda_backends[idx] = cupy_backend.CupyBackend(idx)
    return be


def cuda_backends() -> list[Backend]:
    """The CUDA backends created so far in this process (one per device used)."""
    return list(_cuda_backends.values())


def backend_of(array) -> Backend:
    """The backend owning a raw array (NumPy arrays and scalars are 'cpu')."""
    if type(array).__module__.startswith("cupy"):
        return get_backend(f"cuda:{array.device.id}")
    return cpu


def is_array(x) -> bool:
    """True for a raw array that a backend owns: a NumPy or a CuPy ndarray (what :func:`backend_of` places).

    Not NumPy scalars, not Tensors, and not other libraries' GPU arrays that merely expose
    ``__cuda_array_interface__`` (no backend holds those as they are).
    """
    return isinstance(x, cpu.xp.ndarray) or (type(x).__module__.startswith("cupy")
                                             and hasattr(x, "__cuda_array_interface__"))


def default_device() -> Backend:
    """The calling thread's default device (``cpu`` in a thread that never set one)."""
    return _state.backend


def set_default_device(dev) -> None:
    """Make ``dev`` the device that factories use when none is given, in the calling thread only."""
    _state.backend = get_backend(dev)


class device:
    """A device, PyTorch's ``torch.device``: ``device("cuda:1")``, ``device("cuda", 1)``, ``device("cpu")``.

    Accepted wherever a device is (``x.to(dev)``, ``model.to(dev)``, ``device=dev``) and compares equal to its
    name and to its backend; naming a GPU needs none until it is used. As a context manager it makes itself the
    calling thread's default device for factories (``with device("cuda"): ...``), restoring the previous one.
    """

    def __init__(self, type, index: int | None = None):
        spec = type.name if isinstance(type, (Backend, device)) else type
        if index is not None:
            if not isinstance(spec, str) or ":" in spec or isinstance(index, bool) or not isinstance(index, int):
                raise DeviceError(f"device: give 'kind:N' or (kind, index), got {type!r}, {index!r}")
            spec = f"{spec}:{index}"
        self.type, self.index = parse_device(spec)
        self.backend = type if isinstance(type, Backend) and index is None else None   # the very one, if given

    @property
    def name(self) -> str:
        return "cpu" if self.type == "cpu" else f"{self.type}:{self.index}"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"device(type='{self.type}'" + ("" if self.type == "cpu" else f", index={self.index}") + ")"

    def __eq__(self, other) -> bool:
        try:
            return parse_device(other) == (self.type, self.index)
        except DeviceError:
            return False

    def __hash__(self) -> int:
        return hash(self.name)          # equal to its name, so it hashes as its name (dict keys by string)

    def __enter__(self) -> "device":
        new = get_backend(self)
        stack = _state.__dict__.setdefault("stack", [])
        stack.append(_state.backend)
        _state.backend = new
        return self

    def __exit__(self, *exc) -> None:
        _state.backend = _state.stack.pop()
