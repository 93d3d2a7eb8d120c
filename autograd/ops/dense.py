"""The fused dense (fully connected) layer op: matmul and bias in one node."""
from __future__ import annotations

from ..function import Function, is_grad_enabled
from ..spec import OpSpec, public
from ..tensor import Tensor
from ._util import const
from .linalg import matmul
from .reduction import sum as _sum
from .shape import reshape, t

__all__ = ["linear"]


def _linear_sample(d):
    n_in, n_out = d.int(1, 4), d.int(1, 4)
    batch = () if d.int(0, 4) == 0 else d.shape(max_dims=2)
    arrays = [d.array(batch + (n_in,)), d.array((n_out, n_in))]
    if d.bool():
        arrays.append(d.array((n_out,)))
    return arrays, {}


def _linear_ref(np, x, w, b=None):
    y = x @ w.T
    return y if b is None else y + b


class Linear(Function):
    """f = x Wᵀ + b (W is (out, in));  df/dx = g W, df/dW = gᵀ x (batch axes summed), df/db = Σ g."""
    spec = OpSpec(ref=_linear_ref, call=lambda *a: linear(*a), sample=_linear_sample)

    def forward(self, x, w, b=None):
        if x.ndim == 0 or w.ndim != 2 or x.shape[-1] != w.shape[1] or (b is not None and b.shape != w.shape[:1]):
            bias = "" if b is None else f" and bias {b.shape}"
            raise ValueError(f"linear: input of shape {x.shape} does not fit weight {w.shape}{bias} "
                             f"(expected input (..., {w.shape[-1] if w.ndim else '?'}), weight (out, in), "
                             "bias (out,))")
        if x.ndim > 2:      # one 2-D product: NumPy's stacked matmul is slower for (..., n, k) @ (k, m)
            y = self.xp.matmul(x.reshape(-1, x.shape[-1]), w.T).reshape(x.shape[:-1] + (w.shape[0],))
        else:
            y = self.xp.matmul(x, w.T)
        if b is not None:
            y += b
        return y

    def backward(self, gy):
        x, w = self.inputs[0], self.inputs[1]
        n_out, n_in = w.shape
        if not is_grad_enabled():
            return self._backward_arrays(gy, x, w, n_out, n_in)
        gx = matmul(gy, w) if x._rg else None
        gw = gb = None
        if w._rg or (len(self.inputs) == 3 and self.inputs[2]._rg):
            g2 = gy if gy.ndim == 2 else reshape(gy, (-1, n_out))      # batch axes flattened into rows
            if w._rg:
                gw = matmul(t(g2), x if x.ndim == 2 else reshape(x, (-1, n_in)))
            if len(self.inputs) == 3 and self.inputs[2]._rg:
                gb = _sum(g2, dim=0)
        return (gx, gw) if len(self.inputs) == 2 else (gx, gw, gb)

    def _backward_arrays(self, gy, x, w, n_out, n_in):
        """The same products on the raw arrays, for a backward that records nothing: a layer's backward is
        then three BLAS/NumPy calls instead of four Tensor ops, each with its own dispatch."""
        xp, g = self.xp, gy.array
        b = self.inputs[2] if len(self.inputs) == 3 else None
        gx = const(xp.matmul(g, w.array), x) if x._rg else None
        gw = gb = None
        if w._rg or (b is not None and b._rg):
            g2 = g if g.ndim == 2 else g.reshape(-1, n_out)
            if w._rg:
                xd = x.array
                gw = const(xp.matmul(g2.T, xd if xd.ndim == 2 else xd.reshape(-1, n_in)), w)
            if b is not None and b._rg:
                gb = const(g2.sum(axis=0), b)
        return (gx, gw) if b is None else (gx, gw, gb)


@public(Linear, functional=True)
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` in one fused node (PyTorch's ``F.linear``); weight is (out, in)."""
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)
