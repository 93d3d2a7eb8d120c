"""``autograd.cuda``: the part of ``torch.cuda`` that training scripts call, on xpgrad's backends.

    import autograd as torch
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(0)
        torch.cuda.synchronize()

Built on the public API of :mod:`backends` only, so it imports (and answers) on machines without CuPy or a
GPU: there ``is_available()`` is False, ``device_count()`` is 0 and ``manual_seed*`` do nothing, as in
PyTorch; ``current_device()`` and ``synchronize()`` raise :class:`backends.DeviceError`.

"The current device" is the calling thread's default device (``ag.device(...)``, ``ag.set_default_device``)
when that is a GPU, and GPU 0 otherwise.
"""
from __future__ import annotations

import backends
from backends import DeviceError

__all__ = ["is_available", "device_count", "current_device", "synchronize", "manual_seed", "manual_seed_all"]


def is_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    return backends.cuda_available()


def device_count() -> int:
    """How many GPUs CuPy sees (0 without CuPy or a GPU)."""
    if not backends.cuda_available():
        return 0
    return int(backends.get_backend("cuda:0").xp.cuda.runtime.getDeviceCount())


def current_device() -> int:
    """The index of the current GPU: the thread's default device when it is one, else 0.

    Raises:
        DeviceError: no GPU is available.
    """
    be = backends.default_device()
    if be.kind == "cuda":
        return be.index
    return _backend(0).index


def _backend(dev):
    """The CUDA backend for ``dev``: ``None`` (the current GPU), an index, ``"cuda:N"`` or a Backend."""
    if dev is None:
        dev = current_device()
    be = backends.get_backend(f"cuda:{dev}" if isinstance(dev, int) and not isinstance(dev, bool) else dev)
    if be.kind != "cuda":
        raise DeviceError(f"expected a CUDA device, got {be.name!r}")
    return be


def synchronize(device=None) -> None:
    """Wait until the queued work of ``device`` (default: the current GPU) is done.

    Raises:
        DeviceError: no GPU is available, or ``device`` is not a GPU.
    """
    _backend(device).synchronize()


def manual_seed(seed: int) -> None:
    """Seed the current GPU's generator; nothing happens without a GPU (as in PyTorch)."""
    if backends.cuda_available():
        _backend(None).seed(int(seed))


def manual_seed_all(seed: int) -> None:
    """Seed the generators of the current GPU and of every GPU used so far; nothing happens without a GPU.

    GPUs this process has not touched yet are left alone rather than initialised here (which would open a
    CUDA context on each of them, from every process of a multi-GPU run); seed again after first using one.
    ``ag.manual_seed`` seeds the CPU and the GPUs used so far.
    """
    if backends.cuda_available():
        for be in {_backend(None), *backends.cuda_backends()}:
            be.seed(int(seed))
