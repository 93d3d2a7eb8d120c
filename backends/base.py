"""The backend interface: everything the engine asks of an array library."""
from __future__ import annotations

import contextlib

_NOTHING = contextlib.nullcontext()     # reusable and re-entrant: one object serves every activate()


def memory_order(a) -> tuple:
    """The axes of ``a`` from outermost to innermost in memory (largest stride first; axes of length 1 keep
    their place, since their stride means nothing)."""
    big = sorted((k for k in range(a.ndim) if a.shape[k] > 1), key=lambda k: -abs(a.strides[k]))
    it = iter(big)
    return tuple(next(it) if a.shape[k] > 1 else k for k in range(a.ndim))


def inverse_order(order) -> tuple:
    """The permutation that undoes ``order``."""
    inv = [0] * len(order)
    for pos, k in enumerate(order):
        inv[k] = pos
    return tuple(inv)


class DeviceError(RuntimeError):
    """Raised for unknown or unavailable devices and for mixing devices in one op."""


class Backend:
    """An array library bound to one device.

    Attributes:
        kind: ``"cpu"`` or ``"cuda"``.
        index: device ordinal (0 for the CPU).
        xp: the array module (``numpy`` or ``cupy``).
        fused: fused operations on this device's arrays (:class:`backends.fused.ArrayFused`; CUDA kernels on
            CuPy), called by ops and optimizers as ``backend.fused.<name>(...)``.
        buffers: where ops get their large scratch arrays and results (``take``, ``give``, ``result``; see
            :mod:`backends.buffers`): recycled per thread on the CPU, plain allocations on a GPU.
    """

    kind = "cpu"
    index = 0
    xp = None
    fused = None    # a backends.fused.ArrayFused: the fused operations (activations, cross-entropy, ...)
    buffers = None

    @property
    def name(self) -> str:
        """Device string, e.g. ``"cpu"`` or ``"cuda:0"``."""
        return "cpu" if self.kind == "cpu" else f"{self.kind}:{self.index}"

    @property
    def type(self) -> str:
        """``"cpu"`` or ``"cuda"`` (PyTorch's ``device.type``)."""
        return self.kind

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    def __eq__(self, other) -> bool:
        if other is self:
            return True
        if isinstance(other, Backend):
            return False
        from . import device, parse_device
        if not isinstance(other, (str, device)):
            return NotImplemented
        try:
            return parse_device(other) == (self.kind, self.index)
        except DeviceError:
            return False

    # one live object per device (copies and pickles resolve to it, see __reduce__), so identity is the
    # hash: dicts keyed by backends (the optimizers' scratch buffers) then hash in C, with no Python call
    __hash__ = object.__hash__

    def __reduce__(self):
        # copies and pickles resolve to the one live backend of the device, so copied tensors still match
        from . import get_backend
        return get_backend, (self.name,)

    def __str__(self) -> str:
        return self.name

    # --- to be provided by each backend -------------------------------------------------
    def available(self) -> bool:
        raise NotImplementedError

    def asarray(self, data, dtype=None):
        """An array on this device from host data or another backend's array."""
        raise NotImplementedError

    def to_host(self, array):
        """A NumPy array with the same values (a copy when the data lives elsewhere)."""
        raise NotImplementedError

    def seed(self, seed: int) -> None:
        """Reseed this backend's random generator."""
        raise NotImplementedError

    @property
    def rng(self):
        """A ``Generator`` with ``random``, ``standard_normal``, ``uniform``, ``integers``, ``permutation``.

        One generator per device, shared by every thread (like PyTorch's default generator). NumPy's
        Generator holds its bit generator's lock for each draw, so threads never corrupt its state or get
        the same numbers, but which thread draws first is up to the scheduler: threaded code that needs
        reproducible randomness draws before starting the threads or uses its own generator. CuPy's
        generator makes no thread-safety promise; draw from one thread per GPU.
        """
        raise NotImplementedError

    def scatter_add(self, target, index, values) -> None:
        """``target[index] += values`` with repeated indices accumulated (unbuffered)."""
        raise NotImplementedError

    def relayout(self, a, order):
        """A copy of ``a`` stored in memory ``order`` (axes from outermost to innermost), seen in ``a``'s
        shape: how an elementwise op gets operands stored alike (operands in different orders make every
        step of the op strided)."""
        out = self.xp.empty(tuple(a.shape[k] for k in order), a.dtype).transpose(inverse_order(order))
        out[...] = a
        return out

    def synchronize(self) -> None:
        """Block until queued device work is done (no-op on the CPU)."""

    def activate(self):
        """Context manager making this device current for allocations."""
        return _NOTHING
