"""Fused, numerically delicate primitives used by neural networks."""
from __future__ import annotations

from ..function import Function
from ..spec import OpSpec, public
from ..tensor import Tensor
from ._util import require_float

__all__ = ["softmax", "log_softmax"]


def _dim_kw(d, shapes):
    return {"dim": d.int(-len(shapes[0]), len(shapes[0]) - 1)}


def _np_log_softmax(np, x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


class Softmax(Function):
    """f = e^(x - max) / Σ e^(x - max) (overflow-safe);  df/dx·g = f (g - Σ f g)."""
    save_output = True
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, dim: np.exp(_np_log_softmax(np, x, dim)),
                  call=lambda x, dim: softmax(x, dim), kwargs=_dim_kw, shapes="min1dim")

    def forward(self, x):
        xp = self.xp
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))
        e /= e.sum(axis=self.axis, keepdims=True)
        return e

    def backward(self, gy):
        y = self.output()
        gyy = gy * y
        return gyy - y * gyy.sum(axis=self.axis, keepdims=True)


class LogSoftmax(Function):
    """f = x - logsumexp(x) (overflow-safe);  df/dx·g = g - softmax(x) Σ g."""
    save_output = True
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, dim: _np_log_softmax(np, x, dim),
                  call=lambda x, dim: log_softmax(x, dim), kwargs=_dim_kw, shapes="min1dim")

    def forward(self, x):
        xp = self.xp
        s = x - x.max(axis=self.axis, keepdims=True)
        s -= xp.log(xp.exp(s).sum(axis=self.axis, keepdims=True))
        return s

    def backward(self, gy):
        from .unary import exp
        return gy - exp(self.output()) * gy.sum(axis=self.axis, keepdims=True)


def _in_dtype(x: Tensor, dtype) -> Tensor:
    return x if dtype is None else x.astype(dtype)


@public(Softmax, method=True)
def softmax(input: Tensor, dim: int = -1, dtype=None) -> Tensor:
    """exp(x) / Σ exp(x) along ``dim`` (overflow-safe), in ``dtype`` when given."""
    require_float(input, "softmax")
    return Softmax.apply(_in_dtype(input, dtype), axis=dim)


@public(LogSoftmax, method=True)
def log_softmax(input: Tensor, dim: int = -1, dtype=None) -> Tensor:
    """x − logsumexp(x) along ``dim``, in ``dtype`` when given."""
    require_float(input, "log_softmax")
    return LogSoftmax.apply(_in_dtype(input, dtype), axis=dim)
