"""Reductions over dims, PyTorch's conventions: ``dim=``/``keepdim=`` (NumPy's ``axis=``/``keepdims=`` are
accepted as aliases, see ``autograd/spec.py``); ``max``/``min`` with a dim give ``(values, indices)``; sums and
products of bool and integer tensors are int64, as in PyTorch. Scans (``cumsum``, ``cumprod``) live here too."""
from __future__ import annotations

import builtins
import collections
import math
import numbers
import operator

from ..function import Function, is_grad_enabled
from ..spec import OpSpec, composite, public
from ..tensor import Tensor, _make
from ._util import const, keepdims_shape, normalize_axes, normalize_axis, require_float, return_type
from .shape import broadcast_to, cat, flip, getitem, reshape

__all__ = ["sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "logsumexp", "var", "std",
           "prod", "cumsum", "cumprod", "norm", "any", "all", "count_nonzero", "nansum", "nanmean", "aminmax"]


def _axis_kwargs(d, shapes):
    return {"dim": d.axis(len(shapes[0])), "keepdim": d.bool()}


def _np_reduce(name):
    """The NumPy reference of a reduction, taking PyTorch's keyword names."""
    return lambda np, x, dim=None, keepdim=False: getattr(np, name)(x, axis=dim, keepdims=keepdim)


def _distinct(np, arrays):
    """Spread values so that no two are within 0.05 (max/min are not differentiable at ties)."""
    x = arrays[0]
    ranks = np.argsort(np.argsort(x.ravel(), kind="stable"), kind="stable")
    return [(x.ravel() + 0.1 * ranks).reshape(x.shape)]


def _restore(gy: Tensor, fn) -> Tensor:
    """Reshape an upstream gradient to the kept-dims shape of a reduction's output.

    A full reduction's 0-d gradient broadcasts as it is.
    """
    if not fn.keepdim and fn.axes and gy.array.ndim:
        gy = reshape(gy, keepdims_shape(fn.in_shape, fn.axes))
    return gy


class _Reduction(Function):
    exempt = "abstract base of the reductions"

    def _setup(self, x):
        """Record the input shape and normalised dims; returns the ``axis`` argument for NumPy."""
        self.in_shape = x.shape
        if self.dim is None:
            self.axes = tuple(range(x.ndim))
            return None
        self.axes = normalize_axes(self.dim, x.ndim, type(self).__name__.lower())
        return self.axes


class Sum(_Reduction):
    """f = Σ x over axes;  df/dx = 1 (the gradient broadcasts back)."""
    needs_inputs = False
    spec = OpSpec(ref=_np_reduce("sum"), call=lambda x, **kw: sum(x, **kw), kwargs=_axis_kwargs)

    def forward(self, x):
        return x.sum(axis=self._setup(x), keepdims=self.keepdim)

    def backward(self, gy):
        return broadcast_to(_restore(gy, self), self.in_shape)


class Mean(_Reduction):
    """f = (1/n) Σ x over axes;  df/dx = 1/n."""
    needs_inputs = False
    spec = OpSpec(ref=_np_reduce("mean"), call=lambda x, **kw: mean(x, **kw), kwargs=_axis_kwargs)

    def forward(self, x):
        axes = self._setup(x)
        n = 1
        for a in self.axes:
            n *= x.shape[a]
        self.n = n
        return x.mean(axis=axes, keepdims=self.keepdim)

    def backward(self, gy):
        return broadcast_to(_restore(gy, self) * (1.0 / builtins.max(self.n, 1)), self.in_shape)


class Max(_Reduction):
    """f = max x over dims;  df/dx = [x = f] / (number of maxima): ties share the gradient, and where the
    maximum is nan (NumPy and PyTorch propagate it) the gradient goes to the nan elements, as in PyTorch."""
    save_output = True
    spec = OpSpec(ref=_np_reduce("max"), call=lambda x, **kw: amax(x, **kw), kwargs=_axis_kwargs, prepare=_distinct,
                  shapes="nonempty")
    _reduce = "max"

    def forward(self, x):
        return getattr(self.xp, self._reduce)(x, axis=self._setup(x), keepdims=self.keepdim)

    def backward(self, gy):
        x = self.inputs[0].array
        y = self.saved if self.keepdim else self.saved.reshape(keepdims_shape(self.in_shape, self.axes))
        hit = x == y
        if x.dtype.kind == "f":
            hit |= self.xp.isnan(x) & self.xp.isnan(y)
        mask = hit.astype(gy.dtype)
        mask /= mask.sum(axis=self.axes, keepdims=True)
        return broadcast_to(_restore(gy, self), self.in_shape) * const(mask, gy)


class Min(Max):
    """f = min x over dims;  df/dx = [x = f] / (number of minima) (nan as in :class:`Max`)."""
    spec = OpSpec(ref=_np_reduce("min"), call=lambda x, **kw: amin(x, **kw), kwargs=_axis_kwargs, prepare=_distinct,
                  shapes="nonempty")
    _reduce = "min"


class LogSumExp(_Reduction):
    """f = log Σ e^x (overflow-safe: shift by the max);  df/dx = e^(x - f) = softmax(x)."""
    save_output = True
    spec = OpSpec(ref=lambda np, x, dim=None, keepdim=False: np.log(np.sum(np.exp(x), axis=dim, keepdims=keepdim)),
                  call=lambda x, **kw: logsumexp(x, **kw), kwargs=_axis_kwargs, shapes="nonempty")

    def forward(self, x):
        xp = self.xp
        axes = self._setup(x)
        m = xp.max(x, axis=axes, keepdims=True) if x.size else xp.zeros(keepdims_shape(x.shape, self.axes), x.dtype)
        m = xp.where(xp.isfinite(m), m, 0)        # rows of -inf (or inf) must not give nan
        y = xp.log(xp.sum(xp.exp(x - m), axis=axes, keepdims=True)) + m
        return y if self.keepdim else y.reshape(tuple(n for i, n in enumerate(x.shape) if i not in self.axes))

    def backward(self, gy):
        from .unary import exp
        y = _restore(self.output(), self)
        return _restore(gy, self) * exp(self.inputs[0] - y)


# --- products, scans and norms -------------------------------------------------------------------------------
def _along(axis: int, index) -> tuple:
    """A basic index applying ``index`` (a slice) to ``axis``."""
    return (slice(None),) * axis + (index,)


def _dim_kwargs(d, shapes):
    """One dim or None (PyTorch's prod and aminmax take a single int), and keepdim."""
    n = len(shapes[0])
    return {"dim": None if n == 0 or d.bool() else d.int(-n, n - 1), "keepdim": d.bool()}


def _some_zeros(np, arrays):
    """Values near 0 set to exactly 0, so that samples hold no, one and several zeros (products' special cases)."""
    return [np.where(np.abs(a) < 0.4, 0.0, a) for a in arrays]


def _exclusive_products(x: Tensor, axis: int) -> Tensor:
    """Π_{j≠i} x_j along ``axis``, for every i: the products before i times the products after i, two scans and
    no division, so exact where x has zeros (and differentiable again)."""
    n = x.shape[axis]
    one = const(x.xp.ones(keepdims_shape(x.shape, (axis,)), x.array.dtype), x)
    if n == 1:
        return one
    before = Cumprod.apply(cat([one, getitem(x, _along(axis, slice(0, n - 1)))], axis), dim=axis)
    after = Cumprod.apply(cat([one, getitem(x, _along(axis, slice(None, 0, -1)))], axis), dim=axis)
    return before * flip(after, axis)


class Prod(_Reduction):
    """f = Π x over one dim or all;  df/dx_i = Π_{j≠i} x_j (exclusive products from both ends, no f/x_i: exact with
    one or several zeros)."""
    spec = OpSpec(ref=_np_reduce("prod"), call=lambda x, **kw: prod(x, **kw), kwargs=_dim_kwargs, domain=(-2.0, 2.0),
                  prepare=_some_zeros)

    def forward(self, x):
        return self.xp.prod(x, axis=self._setup(x), keepdims=self.keepdim)

    def backward(self, gy):
        x = self.inputs[0]
        g = broadcast_to(_restore(gy, self), self.in_shape)
        if x.ndim == 0 or not x.array.size:
            return g
        if len(self.axes) == 1:
            return g * _exclusive_products(x, self.axes[0])
        return g * reshape(_exclusive_products(reshape(x, (-1,)), 0), self.in_shape)


def _np_scan(name):
    """The NumPy reference of a scan along ``dim`` (a 0-d tensor scans as one element)."""
    return lambda np, x, dim: getattr(np, name)(x.reshape(x.shape or (1,)), axis=dim).reshape(x.shape)


def _scan_sample(d):
    x = d.array(d.shape(max_dims=3), -2.0, 2.0)
    n = builtins.max(x.ndim, 1)
    return [x], {"dim": d.int(-n, n - 1)}


class _Scan(Function):
    exempt = "abstract base of the scans"

    def _axis(self, x):
        self.axis = normalize_axis(self.dim, builtins.max(x.ndim, 1), type(self).__name__.lower())
        return self.axis


class Cumsum(_Scan):
    """f_k = Σ_{j≤k} x_j along a dim (``reverse``: Σ_{j≥k});  df/dx = the scan of the gradient the other way."""
    needs_inputs = False
    reverse = False
    spec = OpSpec(ref=_np_scan("cumsum"), call=lambda x, **kw: cumsum(x, **kw), sample=_scan_sample)

    def forward(self, x):
        if x.ndim == 0:
            return x.copy()
        xp, axis = self.xp, self._axis(x)
        if self.reverse:
            return xp.flip(xp.cumsum(xp.flip(x, axis), axis=axis), axis)
        return xp.cumsum(x, axis=axis)

    def backward(self, gy):
        if gy.ndim == 0:
            return gy
        return Cumsum.apply(gy, dim=self.axis, reverse=not self.reverse)


def _cumprod_grad_at_zeros(xp, x, g, y, axis):
    """The cumprod gradient Σ_{k≥i} g_k Π_{j≤k, j≠i} x_j where x has zeros, in O(n) (values only, not
    differentiable again). Before a slice's first zero z every x_i ≠ 0, so dividing by it is exact; at z it is
    Π_{j<z} x_j · Σ_{z≤k<z'} g_k Π_{z<j≤k} x_j (z' the second zero); after z every term has the factor x_z = 0."""
    seen = xp.cumsum(x == 0, axis=axis)             # zeros up to and including each position
    before = seen == 0
    first = (x == 0) & (seen == 1)
    w = xp.where(before, g * y, 0)
    out = xp.where(before, xp.flip(xp.cumsum(xp.flip(w, axis), axis=axis), axis) / xp.where(before, x, 1), 0)
    span = seen == 1                                # from the first zero to just before the second
    tail = xp.cumprod(xp.where(span & ~first, x, 1), axis=axis)
    at_zero = xp.sum(xp.where(span, g * tail, 0), axis=axis, keepdims=True)
    at_zero = at_zero * xp.prod(xp.where(before, x, 1), axis=axis, keepdims=True)
    return xp.where(first, at_zero, out)


def _cumprod_grad_exact(x: Tensor, gy: Tensor, axis: int) -> Tensor:
    """The same gradient in Tensor ops, term by term (O(n²)): where x has zeros and a second derivative is wanted.
    For each i, Π_{j≤k, j≠i} x_j = Π_{j<i} x_j · Π_{i<j≤k} x_j for k = i, i+1, ..."""
    n = x.shape[axis]
    one = const(x.xp.ones(keepdims_shape(x.shape, (axis,)), x.array.dtype), x)
    parts = []
    for i in range(n):
        later = Cumprod.apply(cat([one, getitem(x, _along(axis, slice(i + 1, n)))], axis), dim=axis)
        if i:
            later = later * Prod.apply(getitem(x, _along(axis, slice(0, i))), dim=axis, keepdim=True)
        parts.append(sum(getitem(gy, _along(axis, slice(i, n))) * later, dim=axis, keepdim=True))
    return cat(parts, axis)


class Cumprod(_Scan):
    """f_k = Π_{j≤k} x_j along a dim;  df/dx_i = Σ_{k≥i} g_k Π_{j≤k, j≠i} x_j: the reversed cumsum of g·f over x_i
    without zeros, PyTorch's zero-safe forms where x has zeros (see :func:`_cumprod_grad_at_zeros`)."""
    save_output = True
    spec = OpSpec(ref=_np_scan("cumprod"), call=lambda x, **kw: cumprod(x, **kw), sample=_scan_sample,
                  prepare=_some_zeros)

    def forward(self, x):
        if x.ndim == 0:
            return x.copy()
        return self.xp.cumprod(x, axis=self._axis(x))

    def backward(self, gy):
        x = self.inputs[0]
        if x.ndim == 0 or x.shape[self.axis] <= 1:
            return gy
        axis, xa = self.axis, x.array
        if not bool((xa == 0).any()):
            return Cumsum.apply(gy * self.output(), dim=axis, reverse=True) / x
        if is_grad_enabled():
            return _cumprod_grad_exact(x, gy, axis)
        return const(_cumprod_grad_at_zeros(self.xp, xa, gy.array, self.saved, axis), gy)


def _np_norm(np, x, p="fro", dim=None, keepdim=False):
    """The reference vector norm (PyTorch's ``torch.norm`` with a number or 'fro')."""
    a, kw = np.abs(x), {"axis": dim, "keepdims": keepdim}
    if p in ("fro", 2):
        return np.sqrt(np.sum(a * a, **kw))
    if p == math.inf:
        return np.max(a, **kw)
    if p == -math.inf:
        return np.min(a, **kw)
    if p == 0:
        return np.sum(a != 0, **kw).astype(x.dtype)
    return np.sum(a ** p, **kw) ** (1.0 / p)


def _norm_sample(d):
    shape = d.shape(max_dims=3)
    p = d.choice(["fro", 2, 1, 3, 1.5, 0.5, -1, 0, math.inf, -math.inf])
    if 0 in shape and (p not in ("fro",) and (p == math.inf or p < 0)):
        p = 2
    dim = d.axis(len(shape))
    if p == "fro" and isinstance(dim, tuple) and len(dim) > 2:
        dim = dim[:2]
    return [d.array(shape)], {"p": p, "dim": dim, "keepdim": d.bool()}


def _apart_from_zero_and_ties(np, arrays):
    """Magnitudes at least 0.25 and pairwise distinct (norms kink at 0, and ∞-norms at ties of |x|)."""
    x = arrays[0]
    ranks = np.argsort(np.argsort(np.abs(x).ravel(), kind="stable"), kind="stable").reshape(x.shape)
    return [np.where(x < 0, -1.0, 1.0) * (0.25 + 0.1 * ranks)]


class Norm(_Reduction):
    """f = (Σ|x|^p)^(1/p) over dims (p = ∞: max |x|, -∞: min |x|, 0: the number of nonzeros);
    df/dx = sign(x)|x|^(p-1) f^(1-p) — x/f for p = 2, sign(x) for p = 1, sign(x)[|x| = f] / (number of ties) for
    ±∞, nothing for 0 — and, as in PyTorch, 0 where f = 0 (the 2-norm's subgradient at the zero vector) or x = 0."""
    save_output = True
    spec = OpSpec(ref=_np_norm, call=lambda x, **kw: norm(x, **kw), sample=_norm_sample,
                  prepare=_apart_from_zero_and_ties, rtol=1e-3)

    def forward(self, x):
        xp, p = self.xp, self.p
        kw = {"axis": self._setup(x), "keepdims": self.keepdim}
        if p == 2:
            return xp.sqrt(xp.sum(x * x, **kw))
        a = xp.abs(x)
        if p == 1:
            return xp.sum(a, **kw)
        if p == math.inf:
            return xp.max(a, **kw)
        if p == -math.inf:
            return xp.min(a, **kw)
        if p == 0:
            return xp.sum(x != 0, **kw).astype(x.dtype)
        if p < 0:                                   # |0|^p = inf without a division-by-zero warning
            zero = a == 0
            a = xp.where(zero, xp.inf, xp.power(xp.where(zero, 1, a), x.dtype.type(p)))
        else:
            a = xp.power(a, x.dtype.type(p))
        return xp.power(xp.sum(a, **kw), x.dtype.type(1.0 / p))

    def backward(self, gy):
        from .arithmetic import where
        from .unary import abs as _abs
        p, xp = self.p, self.xp
        if p == 0:
            return None
        x = self.inputs[0]
        xa = x.array
        g = _restore(gy, self)
        sign = const(xp.sign(xa), gy)
        if p == 1:
            return g * sign
        y = _restore(self.output(), self)
        ya = y.array
        if builtins.abs(p) == math.inf:
            hit = (xp.abs(xa) == ya) | xp.isnan(xa)
            share = hit / hit.sum(axis=self.axes, keepdims=True)
            return g * sign * const(share.astype(gy.dtype), gy)
        y_zero = ya == 0
        if p == 2:
            if not bool(y_zero.any()):
                return g * x / y
            z = const(y_zero, gy)
            return where(z, 0.0, g * x / where(z, 1.0, y))
        x_zero = const(xa == 0, gy)
        slope = where(x_zero, 0.0, sign * _abs(where(x_zero, 1.0, x)) ** (p - 1))     # d|x|^p/dx / p, 0 at 0
        z = const(y_zero, gy)
        return slope * where(z, 0.0, g * where(z, 1.0, y) ** (1 - p))


def _dtype_cast(x: Tensor, dtype) -> Tensor:
    from .shape import astype
    return x if dtype is None else astype(x, dtype)


def _accumulating(x: Tensor, dtype) -> Tensor:
    """``x`` in the dtype a sum or product accumulates in: ``dtype`` when given, else int64 for bool and integer
    tensors (PyTorch's rule: ``tensor([True, True]).sum()`` is int64 2, uint8 sums do not wrap), else its own."""
    if dtype is None and x.array.dtype.kind in "biu":
        dtype = "int64"
    return _dtype_cast(x, dtype)


def _require_float_or_dtype(x: Tensor, dtype, name: str) -> None:
    """Means, variances and standard deviations are defined on floating tensors only, as in PyTorch (a mean's
    ``dtype=`` may name one)."""
    if dtype is None and x.array.dtype.kind not in "fc":
        hint = f"pass dtype=, e.g. {name}(x, dtype=float32), or cast it first" if name == "mean" else "cast it first"
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype} (shape {x.shape}); {hint}")


@public(Sum, method=True)
def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum over ``dim`` (an int, a tuple of ints, or None for all), in ``dtype`` when given; bool and integer
    tensors sum in int64."""
    return Sum.apply(_accumulating(input, dtype), dim=dim, keepdim=keepdim)


@public(Mean, method=True)
def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean over ``dim`` (an int, a tuple of ints, or None for all), in ``dtype`` when given. A bool or integer
    tensor needs ``dtype`` (a floating one), as in PyTorch."""
    _require_float_or_dtype(input, dtype, "mean")
    return Mean.apply(_dtype_cast(input, dtype), dim=dim, keepdim=keepdim)


@public(Max, method=True)
def amax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Largest values over ``dim`` (int, tuple or None): values only, ties share the gradient."""
    return Max.apply(input, dim=dim, keepdim=keepdim)


@public(Min, method=True)
def amin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Smallest values over ``dim`` (int, tuple or None): values only, ties share the gradient."""
    return Min.apply(input, dim=dim, keepdim=keepdim)


def _arg(input: Tensor, dim, keepdim: bool, name: str) -> Tensor:
    from ..tensor import _make
    a = input.array
    if dim is None:
        out = getattr(input.xp, name)(a.reshape(-1))
        if keepdim:
            out = out.reshape((1,) * a.ndim)
    else:
        d = normalize_axis(dim, a.ndim if a.ndim else 1, name)
        out = getattr(input.xp, name)(a.reshape(a.shape or (1,)), axis=d, keepdims=keepdim)
        if not a.ndim:
            out = out.reshape(())
    return _make(out.astype("int64", copy=False), input.device, False)


@public(method=True)
def argmax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Index (int64) of the largest value over ``dim`` (None: of the flattened tensor); the first one on ties,
    a nan's where there is one. Not differentiable."""
    return _arg(input, dim, keepdim, "argmax")


@public(method=True)
def argmin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Index (int64) of the smallest value over ``dim`` (None: of the flattened tensor). Not differentiable."""
    return _arg(input, dim, keepdim, "argmin")


def _extreme(input: Tensor, dim, keepdim: bool, name: str):
    """``max``/``min``: PyTorch's three forms (all of it, ``(values, indices)`` over one dim, elementwise)."""
    if isinstance(dim, Tensor):
        from .arithmetic import maximum, minimum
        return (maximum if name == "max" else minimum)(input, dim)
    if dim is None:
        return (amax if name == "max" else amin)(input)
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"{name}: dim must be an int (or a Tensor for the elementwise {name}), got {dim!r}")
    values = (amax if name == "max" else amin)(input, dim, keepdim)
    return return_type(name)(values, _arg(input, dim, keepdim, f"arg{name}"))


def _values_sample(d):
    x = d.array(d.shape(min_dims=1, min_side=1))
    return [x], {"dim": d.int(-x.ndim, x.ndim - 1), "keepdim": d.bool()}


@public(method=True, spec=OpSpec(ref=_np_reduce("max"), call=lambda x, **kw: max(x, **kw).values,
                                 sample=_values_sample, prepare=_distinct))
def max(input: Tensor, dim=None, keepdim: bool = False):
    """``max(t)``: the largest value; ``max(t, dim, keepdim=False)``: the named tuple ``(values, indices)``
    over ``dim``; ``max(t, other)``: the elementwise maximum (:func:`maximum`)."""
    return _extreme(input, dim, keepdim, "max")


@public(method=True, spec=OpSpec(ref=_np_reduce("min"), call=lambda x, **kw: min(x, **kw).values,
                                 sample=_values_sample, prepare=_distinct))
def min(input: Tensor, dim=None, keepdim: bool = False):
    """``min(t)``, ``min(t, dim, keepdim=False)`` → ``(values, indices)``, ``min(t, other)``: as :func:`max`."""
    return _extreme(input, dim, keepdim, "min")


@public(LogSumExp, method=True)
def logsumexp(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """log Σ exp over ``dim`` (None: all), overflow-safe."""
    require_float(input, "logsumexp")
    return LogSumExp.apply(input, dim=dim, keepdim=keepdim)


def _correction(name: str, dim, unbiased, correction):
    """PyTorch's forms: ``var(t, dim, unbiased, keepdim)``, ``var(t, unbiased)`` and ``correction=`` (default 1,
    Bessel's correction; NumPy's ``ddof``)."""
    if isinstance(dim, bool):               # var(t, False): the old unbiased-only form
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise TypeError(f"{name}: give unbiased= or correction=, not both")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return dim, correction


@public(method=True)
def var(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    """Variance Σ(x - x̄)² / max(0, n - correction); unbiased (``correction=1``) by default, as in PyTorch.

    As in PyTorch, ``correction >= n`` divides by zero: inf where the sum of squares is positive, nan where it
    is 0.
    """
    _require_float_or_dtype(input, None, "var")
    dim, correction = _correction("var", dim, unbiased, correction)
    axes = normalize_axes(dim, input.ndim, "var")
    n = math.prod(input.shape[a] for a in axes)
    dev = input - mean(input, dim=dim, keepdim=True)
    return sum(dev * dev, dim=dim, keepdim=keepdim) * (1.0 / (n - correction) if n > correction else float("inf"))


@public(method=True)
def std(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    """Standard deviation: √var (unbiased by default); d/dx is 0 where var is 0 (a constant input), PyTorch's
    convention.

    The double ``where`` keeps √ away from 0, so its infinite slope there never multiplies the zero slope
    of var and makes nan; a nan variance (``correction >= n`` on a constant) stays nan.
    """
    from .arithmetic import where
    from .unary import sqrt
    _require_float_or_dtype(input, None, "std")
    dim, correction = _correction("std", dim, unbiased, correction)
    v = var(input, dim, keepdim=keepdim, correction=correction)
    zero = v.array == 0
    if not zero.any():
        return sqrt(v)
    z = const(zero, v)
    return where(z, 0.0, sqrt(where(z, 1.0, v)))


def _var_kwargs(d, shapes):
    return {**_axis_kwargs(d, shapes), "correction": d.choice([0, 1])}


def _np_var(name):
    return lambda np, x, dim=None, keepdim=False, correction=1: getattr(np, name)(x, axis=dim, keepdims=keepdim,
                                                                                  ddof=correction)


composite("var", OpSpec(ref=_np_var("var"), call=lambda x, **kw: var(x, **kw), kwargs=_var_kwargs, shapes="min2"))
composite("std", OpSpec(ref=_np_var("std"), call=lambda x, **kw: std(x, **kw), kwargs=_var_kwargs, shapes="min2",
                        prepare=_distinct, rtol=1e-3))


def _one_dim(dim, ndim: int, name: str) -> int:
    """A single dim (an int; a 0-d tensor has dims 0 and -1, as in PyTorch), normalised."""
    if isinstance(dim, bool) or not hasattr(dim, "__index__"):
        raise TypeError(f"{name}: dim must be an int, got {dim!r}")
    return normalize_axis(operator.index(dim), builtins.max(ndim, 1), name)


@public(Prod, method=True)
def prod(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Product over one ``dim`` (an int; None: of all elements), in ``dtype`` when given; bool and integer tensors
    multiply in int64. The gradient is exact where the input has zeros."""
    x = _accumulating(input, dtype)
    if dim is not None:
        dim = _one_dim(dim, x.ndim, "prod")
        if x.ndim == 0:
            dim = None
    return Prod.apply(x, dim=dim, keepdim=keepdim)


def _scan(cls, input: Tensor, dim, dtype, name: str) -> Tensor:
    x = _accumulating(input, dtype)
    return cls.apply(x, dim=_one_dim(dim, x.ndim, name))


@public(Cumsum, method=True)
def cumsum(input: Tensor, dim, *, dtype=None) -> Tensor:
    """Running sums along ``dim``: out[k] = x[0] + ... + x[k]; bool and integer tensors sum in int64."""
    return _scan(Cumsum, input, dim, dtype, "cumsum")


@public(Cumprod, method=True)
def cumprod(input: Tensor, dim, *, dtype=None) -> Tensor:
    """Running products along ``dim``: out[k] = x[0] · ... · x[k]; bool and integer tensors multiply in int64. The
    gradient is exact where the input has zeros."""
    return _scan(Cumprod, input, dim, dtype, "cumprod")


@public(Norm, method=True)
def norm(input: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """``torch.norm``: the vector p-norm over ``dim`` (an int, a tuple, or None for all elements).

    ``p``: ``'fro'`` (the default) or 2, 1, ``inf`` (max |x|), ``-inf`` (min |x|), 0 (the number of nonzeros, no
    gradient) or any other number ((Σ|x|^p)^(1/p)); ``'fro'`` reduces at most 2 dims. ``dtype`` casts the input
    first. The nuclear norm (``p='nuc'``) is not implemented. Gradients are 0 where the norm is 0, as in PyTorch.
    """
    require_float(input, "norm")
    if dtype is not None:
        input = _dtype_cast(input, dtype)
        require_float(input, "norm")
    if isinstance(dim, list):
        dim = tuple(dim)
    if p is None or (isinstance(p, str) and p == "fro"):
        if isinstance(dim, tuple) and len(dim) > 2:
            raise ValueError(f"norm: p='fro' reduces one or two dims, got dim={dim} (shape {input.shape}); use a "
                             "number p for a vector norm over more dims")
        p = 2.0
    elif isinstance(p, str):
        if p == "nuc":
            raise NotImplementedError("norm: the nuclear norm (p='nuc') is not implemented")
        raise ValueError(f"norm: p must be a number, 'fro' or 'nuc', got {p!r}")
    elif isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"norm: p must be a number, 'fro' or 'nuc', got {type(p).__name__} {p!r}")
    p = float(p)
    if math.isnan(p):
        raise ValueError("norm: p is nan")
    if input.ndim == 0:
        if dim is not None:
            for d in (dim if isinstance(dim, tuple) else (dim,)):
                _one_dim(d, 0, "norm")
        dim = None
    axes = normalize_axes(dim, input.ndim, "norm")
    if (p < 0 or p == math.inf) and builtins.any(input.shape[a] == 0 for a in axes):
        raise ValueError(f"norm: cannot compute the {p:g} norm over an empty dim (shape {input.shape}, dim {dim}): "
                         "the reduction has no identity")
    return Norm.apply(input, p=p, dim=dim, keepdim=keepdim)


def _no_grad_reduce(input: Tensor, dim, keepdim: bool, name: str, reduce):
    """``reduce(array, axes, keepdim)`` over ``dim`` (int, tuple or None; a 0-d tensor has dims 0 and -1), as a
    tensor outside the graph."""
    a = input.array
    if a.ndim == 0 and dim is not None:
        for d in (dim if isinstance(dim, (tuple, list)) else (dim,)):
            _one_dim(d, 0, name)
        dim = None
    axes = None if dim is None else normalize_axes(dim, a.ndim, name)
    return _make(input.xp.asarray(reduce(a, axes, keepdim)), input.device, False)


def _truth(input: Tensor, dim, keepdim: bool, name: str) -> Tensor:
    """``any``/``all`` of ``input != 0``: bool, uint8 for uint8 input (as in PyTorch)."""
    out_dtype = "uint8" if input.array.dtype == "uint8" else "bool"
    return _no_grad_reduce(input, dim, keepdim, name,
                           lambda a, axes, kd: getattr(a != 0, name)(axis=axes, keepdims=kd).astype(out_dtype))


@public(method=True)
def any(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Whether any element over ``dim`` (int, tuple or None for all) is nonzero: bool (uint8 for uint8, as in
    PyTorch). Not differentiable."""
    return _truth(input, dim, keepdim, "any")


@public(method=True)
def all(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Whether every element over ``dim`` (int, tuple or None for all) is nonzero: bool (uint8 for uint8, as in
    PyTorch). Not differentiable."""
    return _truth(input, dim, keepdim, "all")


@public(method=True)
def count_nonzero(input: Tensor, dim=None) -> Tensor:
    """The number of nonzero elements over ``dim`` (int, tuple or None for all), int64. Not differentiable."""
    return _no_grad_reduce(input, dim, False, "count_nonzero",
                           lambda a, axes, kd: (a != 0).sum(axis=axes).astype("int64"))


def _without_nan(x: Tensor) -> Tensor:
    from .arithmetic import where
    if x.array.dtype.kind not in "fc":
        return x
    return where(const(x.xp.isnan(x.array), x), 0.0, x)


@public(method=True)
def nansum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """:func:`sum` treating nan as 0 (its gradient there is 0); bool and integer tensors sum in int64."""
    return sum(_without_nan(input), dim, keepdim, dtype=dtype)


@public(method=True)
def nanmean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """:func:`mean` of the elements that are not nan (nan where all are), in ``dtype`` when given; floating tensors
    only (as in PyTorch, even with ``dtype=``)."""
    if input.array.dtype.kind not in "fc":
        raise TypeError(f"nanmean: expected a floating-point tensor, got dtype {input.dtype} (shape {input.shape}); "
                        "cast it first")
    x = _dtype_cast(input, dtype)
    kept = _no_grad_reduce(x, dim, keepdim, "nanmean",
                           lambda a, axes, kd: (~x.xp.isnan(a)).sum(axis=axes, keepdims=kd).astype(a.dtype))
    return nansum(x, dim, keepdim) / kept


_aminmax = collections.namedtuple("aminmax", ["min", "max"])


@public(method=True)
def aminmax(input: Tensor, *, dim=None, keepdim: bool = False):
    """The named tuple ``(min, max)`` over one ``dim`` (None: all elements); ties share the gradient."""
    if dim is not None:
        dim = _one_dim(dim, input.ndim, "aminmax")
        if input.ndim == 0:
            dim = None
    axes = normalize_axes(dim, input.ndim, "aminmax")
    if builtins.any(input.shape[a] == 0 for a in axes):
        raise ValueError(f"aminmax: cannot reduce an empty dim (shape {input.shape}, dim {dim}): the reduction has "
                         "no identity")
    return _aminmax(amin(input, dim, keepdim), amax(input, dim, keepdim))


def _nan_at_first(np, arrays):
    x = arrays[0].copy()
    x.reshape(-1)[:1] = np.nan
    return [x]


composite("nansum", OpSpec(ref=lambda np, x, dim=None, keepdim=False: np.nansum(x, axis=dim, keepdims=keepdim),
                           call=lambda x, **kw: nansum(x, **kw), kwargs=_axis_kwargs,
                           prepare=lambda np, a: [np.where(np.abs(a[0]) < 0.5, np.nan, a[0])]))
composite("nanmean", OpSpec(ref=lambda np, x, dim=None, keepdim=False: np.nanmean(x, axis=dim, keepdims=keepdim),
                            call=lambda x, **kw: nanmean(x, **kw), kwargs=_axis_kwargs, shapes="min2",
                            prepare=_nan_at_first))
composite("aminmax", OpSpec(ref=lambda np, x, dim=None, keepdim=False: (np.min(x, axis=dim, keepdims=keepdim),
                                                                       np.max(x, axis=dim, keepdims=keepdim)),
                            call=lambda x, **kw: aminmax(x, **kw), kwargs=_dim_kwargs, shapes="nonempty",
                            prepare=_distinct))
