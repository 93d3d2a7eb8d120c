"""Batch normalisation with batch statistics, as one fused node.

Channels are axis 1; statistics are taken over every other axis (N, and H, W, ... when present).
"""
from __future__ import annotations

from ..function import Function, is_grad_enabled
from ..spec import OpSpec, public
from ..tensor import Tensor
from ._util import const
from .reduction import mean as _mean
from .reduction import sum as _sum
from .shape import reshape
from .unary import sqrt

__all__ = ["batch_norm_train"]


def _bn_sample(d):
    n, c = d.int(1, 3), d.int(1, 3)
    spatial = d.shape(max_dims=2, min_side=1, max_side=3)
    if n * _prod(spatial) < 2:
        n = 2
    arrays = [d.array((n, c) + spatial)]
    if d.bool():
        arrays += [d.array((c,), 0.5, 2.0), d.array((c,))]
    return arrays, {"eps": d.choice([1e-5, 0.1])}


def _prod(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _spread(np, arrays):
    """Keep values of each channel at least 0.5 apart (a near-constant channel makes gradcheck ill-conditioned)."""
    x = arrays[0]
    xt = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
    ranks = np.argsort(np.argsort(xt, axis=1, kind="stable"), axis=1, kind="stable")
    xt = xt * 0.2 + 0.5 * ranks
    return [np.moveaxis(xt.reshape((x.shape[1], x.shape[0]) + x.shape[2:]), 0, 1)] + list(arrays[1:])


def _bn_ref(np, x, weight=None, bias=None, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    xhat = (x - x.mean(axis=axes, keepdims=True)) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    if weight is None:
        return xhat
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return xhat * weight.reshape(shape) + bias.reshape(shape)


class BatchNorm(Function):
    """f = γ x̂ + β, x̂ = (x − μ_B)/√(σ²_B + ε) (biased batch variance);
    df/dx = (γ/√(σ²_B+ε)) (g − mean(g) − x̂ mean(g x̂)), df/dγ = Σ g x̂, df/dβ = Σ g."""
    spec = OpSpec(ref=_bn_ref, call=lambda *a, eps: batch_norm_train(*a, eps=eps), sample=_bn_sample,
                  prepare=_spread)
    stats = None     # optional dict that receives the batch mean and (biased) variance, per channel

    def forward(self, x, weight=None, bias=None):
        if x.ndim < 2:
            raise ValueError(f"batch_norm: input must have a channel axis 1, got shape {x.shape}")
        c = x.shape[1]
        if weight is not None and (weight.shape != (c,) or bias is None or bias.shape != (c,)):
            raise ValueError(f"batch_norm: weight {weight.shape} and bias {getattr(bias, 'shape', None)} must both "
                             f"be ({c},) for input of shape {x.shape}")
        self.axes = (0,) + tuple(range(2, x.ndim))
        # per-channel statistics (one block per channel on the GPU), then normalise, scale and shift
        y, mu, var, self.ctx = self.backend.fused.batch_norm_forward(x, weight, bias, self.eps)
        if self.stats is not None:
            self.stats["mean"], self.stats["var"] = mu, var
        return y

    def backward(self, gy):
        x = self.inputs[0]
        affine = len(self.inputs) == 3
        axes = self.axes
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        if not is_grad_enabled():
            gx, gw, gb = self.backend.fused.batch_norm_backward(self.ctx, gy.array,
                                                                self.inputs[1].array if affine else None)
            return (const(gx, x), const(gw, x), const(gb, x)) if affine else const(gx, x)
        # recorded (create_graph) path: every term a Tensor op of x, so it differentiates again
        mu = _mean(x, dim=axes, keepdim=True)
        xc = x - mu
        rstd = 1.0 / sqrt(_mean(xc * xc, dim=axes, keepdim=True) + self.eps)
        xhat = xc * rstd
        gxhat = gy * reshape(self.inputs[1], shape) if affine else gy
        gx = rstd * (gxhat - _mean(gxhat, dim=axes, keepdim=True)
                     - xhat * _mean(gxhat * xhat, dim=axes, keepdim=True))
        if not affine:
            return gx
        return gx, _sum(gy * xhat, dim=axes), _sum(gy, dim=axes)


@public(BatchNorm)
def batch_norm_train(x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5,
                     stats: dict | None = None) -> Tensor:
    """Normalise ``x`` with its own batch statistics over every axis but 1, then scale and shift.

    Args:
        x: (N, C, ...) input.
        weight, bias: per-channel scale γ and shift β of shape (C,), or both None.
        eps: added to the variance.
        stats: a dict that receives the batch ``mean`` and biased ``var`` arrays (for running statistics).
    """
    if (weight is None) != (bias is None):
        raise ValueError("batch_norm: give both weight and bias, or neither")
    if weight is None:
        return BatchNorm.apply(x, eps=float(eps), stats=stats)
    return BatchNorm.apply(x, weight, bias, eps=float(eps), stats=stats)
