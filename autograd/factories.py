"""Tensor factories with PyTorch's signatures: ``dtype=``, ``device=`` and ``requires_grad=`` where PyTorch has
them. Floating results default to :func:`get_default_dtype` (float32), integer ones (``arange`` of ints,
``randint``, ``randperm``) to int64, and everything lands on the default device unless ``device`` says
otherwise. Random factories draw from the device's own generator (``backend.rng``), which
:func:`manual_seed` reseeds, so seeded runs repeat exactly.

Bad arguments (negative sizes or counts, ``high <= low``, a negative ``std``...) raise ``ValueError``
naming the function and the value; arguments of the wrong type raise ``TypeError``.
"""
from __future__ import annotations

import math

import backends

from .tensor import _DATA_KINDS, Tensor, _make, _to_array, get_default_dtype


def _be(device):
    return backends.get_backend(device)


def _dt(dtype):
    return get_default_dtype() if dtype is None else backends.host.dtype(dtype)


_INT64 = "int64"


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
        src = data.array if be is data._backend else be.asarray(data.array)
        return _make(src if dtype is None else src.astype(dtype), be, False)
    be, arr = _to_array(data, dtype, device, copy=False, op="as_tensor")
    return _make(arr, be, False)


# --- argument checks ---------------------------------------------------------------------------------

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


def _size(shape: tuple, size, op: str) -> tuple:
    """The shape of ``op(*shape)`` or ``op(size=...)`` (PyTorch takes either, not both), checked."""
    if size is not None:
        if shape:
            raise TypeError(f"{op}: give the size positionally or as size=, not both (got {shape} and "
                            f"size={size!r})")
        shape = (size,)
    return _shape(shape, op)


def _is_bool(v) -> bool:
    """Python and NumPy bools (numbers to NumPy, but never a size, a bound or a count here)."""
    return isinstance(v, bool) or type(v).__name__ in ("bool", "bool_")


def _int(v, op: str, name: str) -> int:
    """``v`` as a Python int (ints, NumPy integers, 0-d integer tensors); TypeError otherwise."""
    if isinstance(v, Tensor) and v.ndim == 0 and v.dtype.kind in "iu":
        v = v.item()
    if _is_bool(v) or not hasattr(v, "__index__"):
        raise TypeError(f"{op}: {name} must be an integer, got {v!r} ({type(v).__name__})")
    return v.__index__()


def _count(v, op: str, name: str) -> int:
    """A non-negative integer argument (a size, a number of steps)."""
    n = _int(v, op, name)
    if n < 0:
        raise ValueError(f"{op}: {name} must be non-negative, got {n}")
    return n


def _number(v, op: str, name: str):
    """``v`` as a Python int (integers) or float (other real numbers, 0-d tensors); TypeError otherwise."""
    if isinstance(v, Tensor):
        if v.ndim != 0:
            raise TypeError(f"{op}: {name} must be a number or a 0-d tensor, got a tensor of shape {v.shape}")
        v = v.item()
    if _is_bool(v) or isinstance(v, (str, bytes, complex)):
        raise TypeError(f"{op}: {name} must be a number, got {v!r} ({type(v).__name__})")
    if hasattr(v, "__index__"):
        return v.__index__()
    if hasattr(v, "__float__"):
        return float(v)
    raise TypeError(f"{op}: {name} must be a number, got {v!r} ({type(v).__name__})")


def _fill_dtype(value):
    """The dtype PyTorch gives ``full(size, value)``: bool, int64 for integers, else the default float."""
    if _is_bool(value):
        return "bool"
    if hasattr(value, "__index__"):
        return _INT64
    if isinstance(value, complex):
        return "complex64" if get_default_dtype().itemsize <= 4 else "complex128"
    return None


def _floats(be, method: str, shape: tuple, dt, op: str):
    """``be.rng.<method>(shape)`` (``random`` or ``standard_normal``) in the floating dtype ``dt``.

    The generators draw float32 and float64 only: other floating dtypes (float16) are drawn in float32
    and rounded.
    """
    if dt.kind != "f":
        raise TypeError(f"{op}: random values need a floating-point dtype, got {dt}")
    if dt.itemsize in (4, 8):
        return getattr(be.rng, method)(shape, dtype=dt)
    return getattr(be.rng, method)(shape, dtype=_dt("float32")).astype(dt)


# --- filled tensors ----------------------------------------------------------------------------------

def zeros(*shape, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Zeros of shape ``zeros(2, 3)``, ``zeros((2, 3))`` or ``zeros(size=(2, 3))``."""
    be = _be(device)
    with be.activate():
        return _leaf(be.xp.zeros(_size(shape, size, "zeros"), dtype=_dt(dtype)), be, requires_grad)


def ones(*shape, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Ones of shape ``ones(2, 3)``, ``ones((2, 3))`` or ``ones(size=(2, 3))``."""
    be = _be(device)
    with be.activate():
        return _leaf(be.xp.ones(_size(shape, size, "ones"), dtype=_dt(dtype)), be, requires_grad)


def empty(*shape, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of shape ``empty(2, 3)``, ``empty((2, 3))`` or ``empty(size=...)``, like ``torch.empty``.

    Unlike PyTorch's, its memory is not left uninitialised: it holds zeros (the same as :func:`zeros`), so
    code that reads it before writing gets repeatable results instead of stale buffer contents.
    """
    be = _be(device)
    with be.activate():
        return _leaf(be.xp.zeros(_size(shape, size, "empty"), dtype=_dt(dtype)), be, requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of shape ``size`` (an int or a sequence of ints) filled with ``fill_value``.

    As in PyTorch, without ``dtype`` a bool fill gives bool, an integer fill int64, a float fill the
    default dtype.
    """
    be = _be(device)
    shape = _shape((size,), "full")
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    if dtype is None:
        dtype = _fill_dtype(fill_value)
    with be.activate():
        return _leaf(be.xp.full(shape, fill_value, dtype=_dt(dtype)), be, requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """The ``n`` x ``m`` identity matrix (``m`` defaults to ``n``): ones on the diagonal, zeros elsewhere."""
    n = _count(n, "eye", "n")
    m = n if m is None else _count(m, "eye", "m")
    be = _be(device)
    with be.activate():
        return _leaf(be.xp.eye(n, m, dtype=_dt(dtype)), be, requires_grad)


# --- ranges ------------------------------------------------------------------------------------------

def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``[start, start + step, ...]`` up to ``end`` (excluded), like ``torch.arange``; ``arange(end)`` starts at 0.

    Without ``dtype``, all-integer arguments give int64 and any float argument the default dtype. Float
    ranges are computed in float64 and then cast, so ``arange(0, 1, 0.1)`` has PyTorch's values and length.

    Raises:
        TypeError: an argument is not a number.
        ValueError: ``step`` is zero, the step's sign points away from ``end``, or a bound is not finite.
    """
    if end is None:
        start, end = 0, start
    args = [_number(v, "arange", name) for name, v in zip(("start", "end", "step"), (start, end, step))]
    start, end, step = args
    if step == 0:
        raise ValueError(f"arange: step must be non-zero, got {step!r} (start={start!r}, end={end!r})")
    if not all(math.isfinite(v) for v in args):
        raise ValueError(f"arange: start, end and step must be finite, got start={start!r}, end={end!r}, "
                         f"step={step!r}")
    if (step > 0 and end < start) or (step < 0 and end > start):
        raise ValueError(f"arange: the sign of step={step!r} points away from end={end!r} "
                         f"(start={start!r})")
    integral = all(isinstance(v, int) for v in args)
    dt = _dt(_INT64 if dtype is None and integral else dtype)
    be = _be(device)
    with be.activate():
        if integral and dt.kind in "iu":
            arr = be.xp.arange(start, end, step, dtype=dt)
        else:
            arr = be.xp.arange(start, end, step, dtype=_dt("float64")).astype(dt, copy=False)
        return _leaf(arr, be, requires_grad)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` (both included), like ``torch.linspace``.

    Computed in float64, then cast to ``dtype`` (default: the default dtype).

    Raises:
        ValueError: ``steps`` is negative.
    """
    start, end = _number(start, "linspace", "start"), _number(end, "linspace", "end")
    steps = _count(steps, "linspace", "steps")
    be = _be(device)
    with be.activate():
        return _leaf(be.xp.linspace(start, end, steps, dtype=_dt(dtype)), be, requires_grad)


def logspace(start, end, steps, base=10.0, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``base ** linspace(start, end, steps)``, like ``torch.logspace``.

    Raises:
        ValueError: ``steps`` is negative.
    """
    start, end = _number(start, "logspace", "start"), _number(end, "logspace", "end")
    steps = _count(steps, "logspace", "steps")
    base = _number(base, "logspace", "base")
    be = _be(device)
    with be.activate():
        return _leaf(be.xp.logspace(start, end, steps, base=base, dtype=_dt(dtype)), be, requires_grad)


# --- random ------------------------------------------------------------------------------------------

def rand(*shape, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples in [0, 1) from the backend's seeded generator."""
    be = _be(device)
    shape = _size(shape, size, "rand")
    with be.activate():
        return _leaf(_floats(be, "random", shape, _dt(dtype), "rand"), be, requires_grad)


def randn(*shape, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples from the backend's seeded generator."""
    be = _be(device)
    shape = _size(shape, size, "randn")
    with be.activate():
        return _leaf(_floats(be, "standard_normal", shape, _dt(dtype), "randn"), be, requires_grad)


def _randint(low, high, shape, dtype, device, requires_grad, op) -> Tensor:
    low, high = _int(low, op, "low"), _int(high, op, "high")
    if high <= low:
        raise ValueError(f"{op}: high must be greater than low (values are drawn from [low, high)), got "
                         f"low={low}, high={high}")
    be = _be(device)
    dt = _dt(_INT64 if dtype is None else dtype)
    with be.activate():
        arr = be.rng.integers(low, high, size=shape, dtype=_dt(_INT64))
        return _leaf(arr.astype(dt, copy=False), be, requires_grad)


def randint(*args, low=None, high=None, size=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Integers drawn uniformly from ``[low, high)``, int64 unless ``dtype`` says otherwise.

    PyTorch's overloads: ``randint(high, size)``, ``randint(low, high, size)``, and the same with any of
    ``low=``, ``high=``, ``size=`` as keywords (``low`` defaults to 0).

    Raises:
        TypeError: a missing or repeated argument, or bounds that are not integers.
        ValueError: ``high <= low``, or a negative size.
    """
    if len(args) > 3:
        raise TypeError(f"randint: takes at most 3 positional arguments (low, high, size), got {len(args)}")
    names = {3: ("low", "high", "size"), 2: ("high", "size") if size is None else ("low", "high"),
             1: ("high",) if size is not None or high is None else ("size",), 0: ()}[len(args)]
    given = {"low": low, "high": high, "size": size}
    for name, v in zip(names, args):
        if given[name] is not None:
            raise TypeError(f"randint: got {name} both positionally and as a keyword")
        given[name] = v
    if given["high"] is None or given["size"] is None:
        missing = [n for n in ("high", "size") if given[n] is None]
        raise TypeError(f"randint: missing {' and '.join(missing)}; call randint(high, size) or "
                        f"randint(low, high, size)")
    shape = _shape((given["size"],), "randint")
    low = 0 if given["low"] is None else given["low"]
    return _randint(low, given["high"], shape, dtype, device, requires_grad, "randint")


def randint_like(input, low=0, high=None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Integers from ``[low, high)`` in ``input``'s shape, dtype and device: ``randint_like(x, high)`` or
    ``randint_like(x, low, high)``."""
    if high is None:
        low, high = 0, low
    return _randint(low, high, tuple(input.shape), input.dtype if dtype is None else dtype,
                    input.device if device is None else device, requires_grad, "randint_like")


def randperm(n, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A random permutation of ``0 .. n-1`` (int64 unless ``dtype`` says otherwise).

    Raises:
        ValueError: ``n`` is negative.
    """
    n = _count(n, "randperm", "n")
    be = _be(device)
    dt = _dt(_INT64 if dtype is None else dtype)
    with be.activate():
        permutation = getattr(be.rng, "permutation", None)
        if permutation is not None:
            arr = permutation(n)
        else:   # a generator without permutation: the order that sorts n uniform draws is uniform too
            arr = be.xp.argsort(be.rng.random((n,), dtype=_dt("float64")))
        return _leaf(arr.astype(dt, copy=False), be, requires_grad)


def normal(mean, std=1.0, size=None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Normal samples with the given ``mean`` and standard deviation ``std``, as ``torch.normal``.

    PyTorch's overloads:

    - ``normal(mean_tensor, std_tensor)``, ``normal(mean_tensor, std=1.0)``, ``normal(mean, std_tensor)``:
      one sample per element of the broadcast shape of the tensors, in their (promoted, floating) dtype on
      their device. ``size``, ``dtype``, ``device`` and ``requires_grad`` are not taken here.
    - ``normal(mean, std, size)`` with numbers: a tensor of shape ``size``, with ``dtype`` (default: the
      default dtype), ``device`` and ``requires_grad``.

    The result is a new leaf: no gradient flows back to ``mean`` or ``std`` (PyTorch's gives them zero).

    Raises:
        TypeError: numbers without ``size``, tensors with ``size``/``dtype``/``device``, or integer tensors.
        ValueError: ``std`` (or an element of it) is negative, or the shapes do not broadcast.
    """
    tensors = [t for t in (mean, std) if isinstance(t, Tensor)]
    if not tensors:
        m, s = _number(mean, "normal", "mean"), _number(std, "normal", "std")
        if size is None:
            raise TypeError("normal: with a number mean and std, give size: normal(mean, std, size)")
        if s < 0:
            raise ValueError(f"normal: std must be non-negative, got {s}")
        shape = _shape((size,), "normal")
        be = _be(device)
        with be.activate():
            z = _floats(be, "standard_normal", shape, _dt(dtype), "normal")
            z *= s
            z += m
            return _leaf(z, be, requires_grad)
    if size is not None or dtype is not None or device is not None or requires_grad:
        raise TypeError("normal: size, dtype, device and requires_grad are only taken with a number mean and "
                        "std; with tensors the result has their shape, dtype and device")
    be = tensors[0].device
    for t in tensors:
        if t.dtype.kind != "f":
            raise TypeError(f"normal: mean and std tensors must be floating-point, got dtype {t.dtype}")
        if t.device is not be:
            raise backends.DeviceError(f"normal: mean is on {mean.device} but std is on {std.device}")
    arrays = [t.array for t in tensors]
    if isinstance(std, Tensor):
        if std.array.size and bool((std.array < 0).any()):
            raise ValueError(f"normal: std must be non-negative, got a tensor with minimum "
                             f"{float(std.array.min())}")
        s = std.array
    else:
        s = _number(std, "normal", "std")
        if s < 0:
            raise ValueError(f"normal: std must be non-negative, got {s}")
    m = mean.array if isinstance(mean, Tensor) else _number(mean, "normal", "mean")
    xp = be.xp
    with be.activate():
        try:
            shape = xp.broadcast(*arrays).shape if len(arrays) == 2 else arrays[0].shape
        except ValueError:
            raise ValueError(f"normal: mean of shape {mean.shape} and std of shape {std.shape} do not "
                             f"broadcast") from None
        z = _floats(be, "standard_normal", tuple(shape), _dt(xp.result_type(*arrays)), "normal")
        z *= s
        z += m
        return _make(z, be, False)


# --- *_like ------------------------------------------------------------------------------------------

def _like(fn, x, dtype, device, requires_grad, *args):
    return fn(*args, x.shape, dtype=x.dtype if dtype is None else dtype,
              device=x.device if device is None else device, requires_grad=requires_grad)


def zeros_like(x, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(zeros, x, dtype, device, requires_grad)


def ones_like(x, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(ones, x, dtype, device, requires_grad)


def empty_like(x, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor like ``x`` (shape, dtype, device); zero-filled, as :func:`empty` is."""
    return _like(empty, x, dtype, device, requires_grad)


def full_like(x, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    return full(x.shape, fill_value, dtype=x.dtype if dtype is None else dtype,
                device=x.device if device is None else device, requires_grad=requires_grad)


def rand_like(x, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(rand, x, dtype, device, requires_grad)


def randn_like(x, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(randn, x, dtype, device, requires_grad)


# --- interop and queries -----------------------------------------------------------------------------

def from_dlpack(obj, device=None) -> Tensor:
    """A tensor sharing memory with any DLPack producer (NumPy, CuPy, PyTorch...)."""
    if device is None:
        kind = obj.__dlpack_device__()[0] if hasattr(obj, "__dlpack_device__") else 1
        device = "cpu" if kind == 1 else f"cuda:{obj.__dlpack_device__()[1]}"
    be = _be(device)
    return _make(be.xp.from_dlpack(obj), be, False)


def is_tensor(obj) -> bool:
    """True when ``obj`` is a Tensor (``torch.is_tensor``)."""
    return isinstance(obj, Tensor)


def _check_tensor(t, op: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(t).__name__}")


def is_floating_point(t) -> bool:
    """True when ``t``'s dtype is a floating-point one (float16/32/64; not complex, as in PyTorch)."""
    _check_tensor(t, "is_floating_point")
    return t.is_floating_point()


def numel(t) -> int:
    """The number of elements of ``t`` (the product of its shape; 1 for a 0-d tensor)."""
    _check_tensor(t, "numel")
    return t.numel()


def manual_seed(seed: int) -> None:
    """Seed every backend's generator that has been created (CPU always)."""
    backends.cpu.seed(seed)
    for be in backends.cuda_backends():
        be.seed(seed)
