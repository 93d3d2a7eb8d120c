"""Tensor factories, all with ``dtype=`` and ``device=`` (default: float32 on the default device)."""
from __future__ import annotations

import backends

from .tensor import _DATA_KINDS, Tensor, _make, _to_array, get_default_dtype


def _be(device):
    return backends.get_backend(device)


def _dt(dtype):
    return get_default_dtype() if dtype is None else backends.host.dtype(dtype)


def _leaf(array, be, requires_grad):
    t = _make(array, be, False)
    if requires_grad:
        t.requires_grad = True
    return t


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new leaf tensor holding a copy of ``data``, as ``torch.tensor`` does.

    Python floats become the default dtype (float32); arrays keep their dtype. The copy means that
    changing the tensor (an optimizer step, ``x += 1``) never touches the caller's array; use
    :func:`from_numpy` or :func:`as_tensor` to share memory instead.

    Raises:
        TypeError: for strings, objects or other non-numeric data.
        ValueError: for ragged nested sequences.
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)


def from_numpy(array) -> Tensor:
    """A CPU tensor sharing memory with the NumPy array ``array`` (no copy), like ``torch.from_numpy``.

    Changes through either side are seen by the other; the tensor keeps the array's dtype and shape.

    Raises:
        TypeError: ``array`` is not a NumPy ndarray, or its dtype is not bool, integer or floating.
    """
    nd = backends.host.ndarray
    if not isinstance(array, nd):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__module__}."
                        f"{type(array).__name__}; use ag.tensor (copies) or ag.as_tensor for other data")
    if array.dtype.kind not in _DATA_KINDS:
        raise TypeError(f"from_numpy: only bool, integer, floating-point or complex arrays are supported, got dtype "
                        f"{array.dtype}")
    return _make(array, backends.cpu, False)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` as a tensor, sharing memory where it can, like ``torch.as_tensor``.

    A Tensor already of that dtype and device is returned as it is; a NumPy or CuPy array of that dtype
    on that device is wrapped without a copy (changes show through both ways). Anything else (a dtype
    change, a device transfer, Python lists and scalars) is copied, with the rules of :func:`tensor`.
    The result does not require grad unless it is the given Tensor itself.
    """
    if isinstance(data, Tensor):
        be = data._backend if device is None else backends.get_backend(device)
        if be is data._backend and (dtype is None or data.dtype == backends.host.dtype(dtype)):
            return data
        src = data.data if be is data._backend else be.asarray(data.data)
        return _make(src if dtype is None else src.astype(dtype), be, False)
    be, arr = _to_array(data, dtype, device, copy=False, op="as_tensor")
    return _make(arr, be, False)


def _shape(shape, op: str) -> tuple:
    """``shape`` (ints, or one sequence of ints) checked: non-negative integers only, named by ``op``."""
    if len(shape) == 1 and not isinstance(shape[0], int) and hasattr(shape[0], "__iter__"):
        shape = tuple(shape[0])
    out = []
    for n in shape:
        if isinstance(n, bool) or not hasattr(n, "__index__"):
            raise TypeError(f"{op}: sizes must be integers, got {n!r} ({type(n).__name__}) in shape "
                            f"{tuple(shape)}")
        n = n.__index__()
        if n < 0:
            raise ValueError(f"{op}: sizes must be non-negative, got {n} in shape {tuple(shape)}")
        out.append(n)
    return tuple(out)


def zeros(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    be = _be(device)
    with be.activate():
        return _leaf(be.xp.zeros(_shape(shape, "zeros"), dtype=_dt(dtype)), be, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    be = _be(device)
    with be.activate():
        return _leaf(be.xp.ones(_shape(shape, "ones"), dtype=_dt(dtype)), be, requires_grad)


def full(shape, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    be = _be(device)
    shape = _shape((shape,), "full")
    with be.activate():
        return _leaf(be.xp.full(shape, fill_value, dtype=_dt(dtype)), be, requires_grad)


def arange(start, stop=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Like ``numpy.arange``; integer arguments give int64 unless ``dtype`` says otherwise."""
    be = _be(device)
    if dtype is None and all(isinstance(v, int) for v in (start, stop if stop is not None else 0, step)):
        dtype = "int64"
    args = (start, stop, step) if stop is not None else (0, start, step)
    for name, v in zip(("start", "stop", "step"), args):
        if isinstance(v, bool) or not isinstance(v, (int, float)) and not hasattr(v, "__index__"):
            raise TypeError(f"arange: {name} must be a number, got {v!r} ({type(v).__name__})")
    if step == 0:
        raise ValueError(f"arange: step must be non-zero, got {step!r} (start={args[0]!r}, stop={args[1]!r})")
    with be.activate():
        return _leaf(be.xp.arange(*args, dtype=_dt(dtype)), be, requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1) from the backend's seeded generator."""
    be = _be(device)
    with be.activate():
        return _leaf(be.rng.random(_shape(shape, "rand"), dtype=_dt(dtype)), be, requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples from the backend's seeded generator."""
    be = _be(device)
    with be.activate():
        return _leaf(be.rng.standard_normal(_shape(shape, "randn"), dtype=_dt(dtype)), be, requires_grad)


def _like(fn, x, dtype, device, requires_grad, *args):
    return fn(*args, x.shape, dtype=x.dtype if dtype is None else dtype,
              device=x.device if device is None else device, requires_grad=requires_grad)


def zeros_like(x, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(zeros, x, dtype, device, requires_grad)


def ones_like(x, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(ones, x, dtype, device, requires_grad)


def full_like(x, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    return full(x.shape, fill_value, dtype=x.dtype if dtype is None else dtype,
                device=x.device if device is None else device, requires_grad=requires_grad)


def rand_like(x, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(rand, x, dtype, device, requires_grad)


def randn_like(x, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(randn, x, dtype, device, requires_grad)


def from_dlpack(obj, device=None) -> Tensor:
    """A tensor sharing memory with any DLPack producer (NumPy, CuPy, PyTorch...)."""
    if device is None:
        kind = obj.__dlpack_device__()[0] if hasattr(obj, "__dlpack_device__") else 1
        device = "cpu" if kind == 1 else f"cuda:{obj.__dlpack_device__()[1]}"
    be = _be(device)
    return _make(be.xp.from_dlpack(obj), be, False)


def manual_seed(seed: int) -> None:
    """Seed every backend's generator that has been created (CPU always)."""
    backends.cpu.seed(seed)
    for be in backends._cuda_backends.values():
        be.seed(seed)
