"""Helpers shared by the op modules: scalar wrapping, dtype rules, axis normalisation, int-tuple arguments."""
from __future__ import annotations

import collections
import functools

from ..errors import AxisError, OpTypeError, OpValueError
from ..tensor import Tensor, _make, get_default_dtype


def const(array, like: Tensor) -> Tensor:
    """Wrap a raw array on ``like``'s backend as a tensor outside the graph."""
    return _make(array, like._backend, False)


def as_tensor(x, like: Tensor) -> Tensor:
    """``x`` as a Tensor on ``like``'s backend.

    Python scalars take ``like``'s dtype when it is floating (so ``0.5 * x`` stays
    float32); a float scalar with an integer tensor takes the default float dtype.
    """
    if isinstance(x, Tensor):
        return x
    xp = like._backend.xp
    dt = like.array.dtype
    if isinstance(x, (bool, int, float)):
        if dt.kind not in "fc" and isinstance(x, float):
            dt = get_default_dtype()
        elif dt.kind == "b" and not isinstance(x, bool):
            dt = xp.asarray(x).dtype
        return _make(xp.asarray(x, dtype=dt), like._backend, False)
    arr = like._backend.asarray(x)
    if arr.dtype.kind == "f" and not hasattr(x, "dtype"):
        arr = arr.astype(dt if dt.kind == "f" else get_default_dtype())
    return _make(arr, like._backend, False)


def pair(a, b) -> tuple[Tensor, Tensor]:
    """Two Tensors of one dtype for a binary op.

    A float and a non-float operand meet at the float dtype (integer labels never
    promote float32 to float64); two float dtypes follow NumPy's promotion.
    """
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            raise TypeError(f"expected at least one Tensor, got {type(a).__name__} and {type(b).__name__}")
        a = as_tensor(a, b)
    elif not isinstance(b, Tensor):
        b = as_tensor(b, a)
    da, db = a.array.dtype, b.array.dtype
    if da is not db and da != db:
        fa, fb = da.kind in "fc", db.kind in "fc"
        if fa and db.kind in "iu":      # bool operands never promote, integers would
            b = _cast_const(b, da)
        elif fb and da.kind in "iu":
            a = _cast_const(a, db)
    return a, b


def require_float(x, op: str) -> None:
    """Ops defined only on real numbers (softmax, logsumexp) refuse integer and bool tensors, as PyTorch
    does, instead of letting NumPy promote them to float64."""
    if isinstance(x, Tensor) and x.array.dtype.kind not in "fc":
        raise OpTypeError(f"expected a floating-point tensor, got dtype {x.dtype} (shape {x.shape}); "
                          f"cast it first, e.g. x.astype('float32')", op=op)


def _cast_const(t: Tensor, dtype) -> Tensor:
    return _make(t.array.astype(dtype), t._backend, False)


def normalize_axes(axis, ndim: int, op: str) -> tuple:
    """``axis`` (None, int or sequence) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise AxisError(f"dim {a} is out of range for a tensor of {ndim} dims", op=op)
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise OpValueError(f"repeated dim in {axis}", op=op)
    return tuple(sorted(out))


def normalize_axis(axis: int, ndim: int, op: str) -> int:
    if not -ndim <= axis < ndim:
        raise AxisError(f"dim {axis} is out of range for a tensor of {ndim} dims", op=op)
    return axis % ndim


def keepdims_shape(shape: tuple, axes: tuple) -> tuple:
    """``shape`` with the reduced ``axes`` kept as size 1."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def int_tuple(v, n: int, name: str, op: str) -> tuple:
    """An int, or a length-``n`` tuple or list of ints, as an ``n``-tuple of ints (window sizes, strides,
    paddings). Bools are not ints here; the error names ``op`` and the argument ``name``."""
    if isinstance(v, (tuple, list)):
        if len(v) == n and all(isinstance(e, int) and not isinstance(e, bool) for e in v):
            return tuple(int(e) for e in v)
    elif isinstance(v, int) and not isinstance(v, bool):
        return (int(v),) * n
    what = "a pair of ints" if n == 2 else f"a tuple of {n} ints"
    raise OpValueError(f"{name} must be an int or {what}, got {v!r}", op=op, value=v)


def int_pair(v, name: str, op: str) -> tuple[int, int]:
    """``int_tuple(v, 2, name, op)``: an int or a pair of ints as a pair."""
    return int_tuple(v, 2, name, op)


@functools.lru_cache(maxsize=None)
def return_type(name: str):
    """The named tuple ``(values, indices)`` that ``name`` returns (PyTorch's ``torch.return_types.<name>``)."""
    return collections.namedtuple(name, ["values", "indices"])
