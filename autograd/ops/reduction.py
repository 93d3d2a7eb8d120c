"""Reductions over axes (NumPy's ``axis=`` / ``keepdims=`` conventions)."""
from __future__ import annotations

import builtins

from ..function import Function
from ..spec import OpSpec, composite, public
from ..tensor import Tensor
from ._util import const, keepdims_shape, normalize_axes, require_float
from .shape import broadcast_to, reshape

__all__ = ["sum", "mean", "max", "min", "logsumexp", "var", "std"]


def _axis_kwargs(d, shapes):
    return {"axis": d.axis(len(shapes[0])), "keepdims": d.bool()}


def _distinct(np, arrays):
    """Spread values so that no two are within 0.05 (max/min are not differentiable at ties)."""
    x = arrays[0]
    ranks = np.argsort(np.argsort(x.ravel(), kind="stable"), kind="stable")
    return [(x.ravel() + 0.1 * ranks).reshape(x.shape)]


def _restore(gy: Tensor, fn) -> Tensor:
    """Reshape an upstream gradient to the kept-dims shape of a reduction's output.

    A full reduction's 0-d gradient broadcasts as it is.
    """
    if not fn.keepdims and fn.axes and gy.data.ndim:
        gy = reshape(gy, keepdims_shape(fn.in_shape, fn.axes))
    return gy


class _Reduction(Function):
    exempt = "abstract base of the reductions"

    def _setup(self, x):
        """Record the input shape and normalised axes; returns the ``axis`` argument for NumPy."""
        self.in_shape = x.shape
        if self.axis is None:
            self.axes = tuple(range(x.ndim))
            return None
        self.axes = normalize_axes(self.axis, x.ndim, type(self).__name__.lower())
        return self.axes


class Sum(_Reduction):
    """f = Σ x over axes;  df/dx = 1 (the gradient broadcasts back)."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, axis=None, keepdims=False: np.sum(x, axis=axis, keepdims=keepdims),
                  call=lambda x, **kw: sum(x, **kw), kwargs=_axis_kwargs)

    def forward(self, x):
        return x.sum(axis=self._setup(x), keepdims=self.keepdims)

    def backward(self, gy):
        return broadcast_to(_restore(gy, self), self.in_shape)


class Mean(_Reduction):
    """f = (1/n) Σ x over axes;  df/dx = 1/n."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, axis=None, keepdims=False: np.mean(x, axis=axis, keepdims=keepdims),
                  call=lambda x, **kw: mean(x, **kw), kwargs=_axis_kwargs)

    def forward(self, x):
        axes = self._setup(x)
        n = 1
        for a in self.axes:
            n *= x.shape[a]
        self.n = n
        return x.mean(axis=axes, keepdims=self.keepdims)

    def backward(self, gy):
        return broadcast_to(_restore(gy, self) * (1.0 / builtins.max(self.n, 1)), self.in_shape)


class Max(_Reduction):
    """f = max x over axes;  df/dx = [x = f] / (number of maxima), ties share the gradient."""
    save_output = True
    spec = OpSpec(ref=lambda np, x, axis=None, keepdims=False: np.max(x, axis=axis, keepdims=keepdims),
                  call=lambda x, **kw: max(x, **kw), kwargs=_axis_kwargs, prepare=_distinct, shapes="nonempty")
    _reduce = "max"

    def forward(self, x):
        return getattr(self.xp, self._reduce)(x, axis=self._setup(x), keepdims=self.keepdims)

    def backward(self, gy):
        x = self.inputs[0].data
        y = self.saved if self.keepdims else self.saved.reshape(keepdims_shape(self.in_shape, self.axes))
        mask = (x == y).astype(gy.dtype)
        mask /= mask.sum(axis=self.axes, keepdims=True)
        return broadcast_to(_restore(gy, self), self.in_shape) * const(mask, gy)


class Min(Max):
    """f = min x over axes;  df/dx = [x = f] / (number of minima)."""
    spec = OpSpec(ref=lambda np, x, axis=None, keepdims=False: np.min(x, axis=axis, keepdims=keepdims),
                  call=lambda x, **kw: min(x, **kw), kwargs=_axis_kwargs, prepare=_distinct, shapes="nonempty")
    _reduce = "min"


class LogSumExp(_Reduction):
    """f = log Σ e^x (overflow-safe: shift by the max);  df/dx = e^(x - f) = softmax(x)."""
    save_output = True
    spec = OpSpec(ref=lambda np, x, axis=None, keepdims=False: np.log(np.sum(np.exp(x), axis=axis,
                                                                               keepdims=keepdims)),
                  call=lambda x, **kw: logsumexp(x, **kw), kwargs=_axis_kwargs, shapes="nonempty")

    def forward(self, x):
        xp = self.xp
        axes = self._setup(x)
        m = xp.max(x, axis=axes, keepdims=True) if x.size else xp.zeros(keepdims_shape(x.shape, self.axes), x.dtype)
        m = xp.where(xp.isfinite(m), m, 0)        # rows of -inf (or inf) must not give nan
        y = xp.log(xp.sum(xp.exp(x - m), axis=axes, keepdims=True)) + m
        return y if self.keepdims else y.reshape(tuple(n for i, n in enumerate(x.shape) if i not in self.axes))

    def backward(self, gy):
        from .unary import exp
        y = _restore(self.output(), self)
        return _restore(gy, self) * exp(self.inputs[0] - y)


@public(Sum, method=True)
def sum(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (None: all)."""
    return Sum.apply(x, axis=axis, keepdims=keepdims)


@public(Mean, method=True)
def mean(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    return Mean.apply(x, axis=axis, keepdims=keepdims)


@public(Max, method=True)
def max(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    """Largest values over ``axis`` (values only, as in NumPy)."""
    return Max.apply(x, axis=axis, keepdims=keepdims)


@public(Min, method=True)
def min(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    return Min.apply(x, axis=axis, keepdims=keepdims)


@public(LogSumExp, method=True)
def logsumexp(x: Tensor, axis=None, keepdims: bool = False) -> Tensor:
    require_float(x, "logsumexp")
    return LogSumExp.apply(x, axis=axis, keepdims=keepdims)


@public(method=True)
def var(x: Tensor, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance, ``ddof=0`` by default as in NumPy: Σ(x - x̄)² / max(0, n - ddof).

    As in PyTorch, ``ddof >= n`` divides by zero: inf where the sum of squares is positive, nan where it is 0.
    """
    axes = normalize_axes(axis, x.ndim, "var")
    n = 1
    for a in axes:
        n *= x.shape[a]
    dev = x - mean(x, axis=axis, keepdims=True)
    return sum(dev * dev, axis=axis, keepdims=keepdims) * (1.0 / (n - ddof) if n > ddof else float("inf"))


@public(method=True)
def std(x: Tensor, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Standard deviation: √var; d/dx is 0 where var is 0 (a constant input), PyTorch's convention.

    The double ``where`` keeps √ away from 0, so its infinite slope there never multiplies the zero slope
    of var and makes nan; a nan variance (``ddof >= n`` on a constant) stays nan.
    """
    from .arithmetic import where
    from .unary import sqrt
    v = var(x, axis, keepdims, ddof)
    zero = v.data == 0
    if not zero.any():
        return sqrt(v)
    z = const(zero, v)
    return where(z, 0.0, sqrt(where(z, 1.0, v)))


def _var_kwargs(d, shapes):
    return {**_axis_kwargs(d, shapes), "ddof": d.choice([0, 1])}


composite("var", OpSpec(ref=lambda np, x, **kw: np.var(x, **kw), call=lambda x, **kw: var(x, **kw),
                        kwargs=_var_kwargs, shapes="min2"))
composite("std", OpSpec(ref=lambda np, x, **kw: np.std(x, **kw), call=lambda x, **kw: std(x, **kw),
                        kwargs=_var_kwargs, shapes="min2", prepare=_distinct, rtol=1e-3))
