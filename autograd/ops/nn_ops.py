"""Fused, numerically delicate primitives used by neural networks."""
from __future__ import annotations

from ..function import Function
from ..spec import OpSpec, public
from ..tensor import Tensor
from ._util import require_float

__all__ = ["softmax", "log_softmax"]


def _axis_kw(d, shapes):
    return {"axis": d.int(-len(shapes[0]), len(shapes[0]) - 1)}


def _np_log_softmax(np, x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


class Softmax(Function):
    """f = e^(x - max) / Σ e^(x - max) (overflow-safe);  df/dx·g = f (g - Σ f g)."""
    save_output = True
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, axis: np.exp(_np_log_softmax(np, x, axis)),
                  call=lambda x, axis: softmax(x, axis), kwargs=_axis_kw, shapes="min1dim")

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
    spec = OpSpec(ref=lambda np, x, axis: _np_log_softmax(np, x, axis),
                  call=lambda x, axis: log_softmax(x, axis), kwargs=_axis_kw, shapes="min1dim")

    def forward(self, x):
        xp = self.xp
        s = x - x.max(axis=self.axis, keepdims=True)
        s -= xp.log(xp.exp(s).sum(axis=self.axis, keepdims=True))
        return s

    def backward(self, gy):
        from .unary import exp
        return gy - exp(self.output()) * gy.sum(axis=self.axis, keepdims=True)


@public(Softmax, method=True)
def softmax(x: Tensor, axis: int = -1) -> Tensor:
    require_float(x, "softmax")
    return Softmax.apply(x, axis=axis)


@public(LogSoftmax, method=True)
def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    require_float(x, "log_softmax")
    return LogSoftmax.apply(x, axis=axis)
