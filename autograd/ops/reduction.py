"""Reductions over dims, PyTorch's conventions: ``dim=``/``keepdim=`` (NumPy's ``axis=``/``keepdims=`` are
accepted as aliases, see ``autograd/spec.py``); ``max``/``min`` with a dim give ``(values, indices)``."""
from __future__ import annotations

import builtins

from ..function import Function
from ..spec import OpSpec, composite, public
from ..tensor import Tensor
from ._util import const, keepdims_shape, normalize_axes, normalize_axis, require_float, return_type
from .shape import broadcast_to, reshape

__all__ = ["sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "logsumexp", "var", "std"]


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


def _dtype_cast(x: Tensor, dtype) -> Tensor:
    from .shape import astype
    return x if dtype is None else astype(x, dtype)


@public(Sum, method=True)
def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum over ``dim`` (an int, a tuple of ints, or None for all), in ``dtype`` when given."""
    return Sum.apply(_dtype_cast(input, dtype), dim=dim, keepdim=keepdim)


@public(Mean, method=True)
def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean over ``dim`` (an int, a tuple of ints, or None for all), in ``dtype`` when given."""
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
    dim, correction = _correction("var", dim, unbiased, correction)
    axes = normalize_axes(dim, input.ndim, "var")
    n = 1
    for a in axes:
        n *= input.shape[a]
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
