"""A fused Elman recurrence: the whole time loop of one RNN layer in one node.

Unrolled into per-step ops, an RNN layer costs a handful of graph nodes per step and one small
weight-gradient product per step. Fused, the forward loop runs on raw arrays, and backpropagation
through time sums the weight gradient of all steps in a single matrix product:

    H_t = φ(A_t + H_{t−1} Wᵀ)                     A = x W_ihᵀ + b (all steps, computed outside)
    dZ_t = (G_t + dH_t) ⊙ φ'(H_t),  dH_{t−1} = dZ_t W,  dA_t = dZ_t
    dW = Σ_t dZ_tᵀ H_{t−1} = dZᵀ H_prev          (one product over all T·N rows)

The backward is written in Tensor ops, so it differentiates again (double backward works).
"""
from __future__ import annotations

from ..function import Function
from ..spec import OpSpec, public
from ..tensor import Tensor
from ._util import const
from .linalg import matmul
from .shape import cat, reshape, split, transpose

__all__ = ["rnn_layer"]


def _sample(d):
    T, N, H = d.int(1, 3), d.int(1, 2), d.int(1, 3)
    return [d.array((T, N, H), -1.0, 1.0), d.array((N, H), -1.0, 1.0), d.array((H, H), -0.8, 0.8)], \
        {"nonlinearity": "tanh"}


def _ref(np, a, h0, w, nonlinearity="tanh"):
    h, out = h0, []
    for t in range(a.shape[0]):
        z = a[t] + h @ w.T
        h = np.tanh(z) if nonlinearity == "tanh" else np.maximum(z, 0)
        out.append(h)
    return np.stack(out)


class RNNLayer(Function):
    """f = (H_1..H_T), H_t = φ(A_t + H_{t−1} Wᵀ);  BPTT as in the module docstring."""
    save_output = True
    spec = OpSpec(ref=_ref, nargs=3, sample=_sample, call=lambda a, h0, w, **kw: rnn_layer(a, h0, w, **kw))

    def forward(self, a, h0, w):
        xp = self.xp
        out = xp.empty(a.shape, a.dtype)
        wt = w.T
        h = h0
        for t in range(a.shape[0]):
            z = xp.matmul(h, wt, out=out[t])
            z += a[t]
            if self.nonlinearity == "tanh":
                xp.tanh(z, out=z)
            else:
                xp.maximum(z, 0, out=z)
            h = z
        return out

    def backward(self, g):
        a, h0, w = self.inputs
        hs = self.output()
        T, N, Hn = a.shape
        # φ'(H) for all steps at once, then one small product and two elementwise ops per step
        if self.nonlinearity == "tanh":
            dphi = 1.0 - hs * hs                          # tanh' = 1 − H²
        else:
            dphi = const((hs.array > 0).astype(hs.dtype), hs)   # relu' = [H > 0]
        gs = split(g, 1, dim=0) if T > 1 else [g]
        ds = split(dphi, 1, dim=0) if T > 1 else [dphi]
        dh = None
        dz = [None] * T
        for t in range(T - 1, -1, -1):
            d = gs[t] if dh is None else gs[t] + dh
            dz[t] = d = d * ds[t]
            dh = matmul(d, w)
        dA = cat(dz, dim=0) if T > 1 else dz[0]
        # dW = Σ_t dZ_tᵀ H_{t−1}: the first step pairs with h0, the rest with H[:-1], in one product each
        dW = matmul(transpose(reshape(dz[0], (N, Hn)), 0, 1), h0)
        if T > 1:
            dW = dW + matmul(transpose(reshape(dA[1:], ((T - 1) * N, Hn)), 0, 1), reshape(hs[:-1], ((T - 1) * N, Hn)))
        return dA, reshape(dh, (N, Hn)), dW


@public(RNNLayer)
def rnn_layer(a: Tensor, h0: Tensor, w: Tensor, nonlinearity: str = "tanh") -> Tensor:
    """All hidden states of an Elman layer given its input projections ``a`` (T, N, H), ``h0`` (N, H), W_hh (H, H)."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"rnn_layer: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    if a.ndim != 3 or h0.shape != a.shape[1:] or w.shape != (a.shape[2], a.shape[2]):
        raise ValueError(f"rnn_layer: expected a (T, N, H), h0 (N, H), w (H, H); got {a.shape}, {h0.shape}, {w.shape}")
    return RNNLayer.apply(a, h0, w, nonlinearity=nonlinearity)
