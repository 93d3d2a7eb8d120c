"""The core ops the engine itself needs: broadcasting and its adjoint, summing back to a shape.

They sit below the engine (which reduces a broadcast input's gradient with ``sum_to``) and above
``Function``; ``autograd.ops.shape`` re-exports them with the other shape ops.
"""
from __future__ import annotations

import math

from .function import Function
from .spec import OpSpec, public
from .tensor import Tensor

__all__ = ["broadcast_to", "sum_to"]


def _broadcast_sample(d):
    target = d.shape(max_dims=3)
    # a source shape broadcastable to target: drop leading dims, set some dims to 1
    src = list(target[d.int(0, len(target)):])
    for i in range(len(src)):
        if d.bool():
            src[i] = 1
    return [d.array(tuple(src))], {"shape": target}


_SMALL = 4096


class BroadcastTo(Function):
    """f = x broadcast to a shape;  df/dx = sum over the broadcast axes."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, shape: np.broadcast_to(x, shape), sample=_broadcast_sample,
                  call=lambda x, shape: broadcast_to(x, shape))

    def forward(self, x):
        self.in_shape = x.shape
        if math.prod(self.shape) <= _SMALL:   # a copy is cheaper than NumPy's broadcast_to for tiny arrays
            out = self.xp.empty(self.shape, x.dtype)
            out[...] = x
            return out
        return self.xp.broadcast_to(x, self.shape)

    def backward(self, gy):
        return sum_to(gy, self.in_shape)


def _sum_to_sample(d):
    [x], kw = _broadcast_sample(d)
    return [d.array(kw["shape"])], {"shape": x.shape}


def _sum_to_ref(np, x, shape):
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
    return np.sum(x, axis=axes, keepdims=True).reshape(shape)


class SumTo(Function):
    """f = x summed down to a shape it broadcasts from (the adjoint of broadcast_to);  df/dx: broadcast back."""
    needs_inputs = False
    spec = OpSpec(ref=_sum_to_ref, sample=_sum_to_sample, call=lambda x, shape: sum_to(x, shape))

    def forward(self, x):
        shape = tuple(self.shape)
        self.in_shape = x.shape
        lead = x.ndim - len(shape)
        if lead < 0 or any(n != 1 and n != m for n, m in zip(shape, x.shape[lead:])):
            raise ValueError(f"shape {x.shape} cannot be summed to {shape}")
        axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and x.shape[lead + i] != 1)
        y = x.sum(axis=axes, keepdims=True) if axes else x
        return y.reshape(shape) if lead else y

    def backward(self, gy):
        return broadcast_to(gy, self.in_shape)


@public(BroadcastTo, method=True)
def broadcast_to(x: Tensor, shape) -> Tensor:
    shape = tuple(shape)
    if shape == x.shape:
        return x
    return BroadcastTo.apply(x, shape=shape)


@public(SumTo)
def sum_to(x: Tensor, shape) -> Tensor:
    """Sum ``x`` down to ``shape`` (the adjoint of ``broadcast_to``)."""
    shape = tuple(shape)
    if shape == x.shape:
        return x
    return SumTo.apply(x, shape=shape)
