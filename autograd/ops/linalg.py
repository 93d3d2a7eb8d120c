"""Matrix products."""
from __future__ import annotations

from ..function import Function
from ..spec import OpSpec, public
from ..tensor import Tensor
from ._util import pair
from .shape import transpose, unsqueeze


def _matmul_sample(d):
    """Shapes for matmul: 1-D or (batched, broadcast) 2-D operands with a matching inner size."""
    n, k, m = d.int(1, 4), d.int(1, 4), d.int(1, 4)
    batch = d.shape(max_dims=2)
    a = (k,) if d.int(0, 4) == 0 else batch[d.int(0, len(batch)):] + (n, k)
    b = (k,) if d.int(0, 4) == 0 else tuple(1 if d.bool() else s for s in batch) + (k, m)
    return [d.array(a), d.array(b)], {}


def _mT(x: Tensor) -> Tensor:
    """Swap the last two axes."""
    return transpose(x, -2, -1)


class MatMul(Function):
    """f = x @ y (NumPy semantics, batched);  df/dx = g @ yᵀ, df/dy = xᵀ @ g."""
    spec = OpSpec(ref=lambda np, x, y: np.matmul(x, y), nargs=2, sample=_matmul_sample, call=lambda x, y: x @ y)

    def forward(self, x, y):
        if x.ndim == 0 or y.ndim == 0:
            raise ValueError("matmul: operands must be at least 1-D (use * for scalars)")
        return self.xp.matmul(x, y)

    def backward(self, gy):
        x, y = self.inputs
        if y.ndim == 1:              # (..., n, k) @ (k,) -> (..., n)
            g = unsqueeze(gy, -1)
            return g * y, g * x
        if x.ndim == 1:              # (k,) @ (..., k, m) -> (..., m)
            g = unsqueeze(gy, -2)
            return (g * y).sum(axis=-1), unsqueeze(x, -1) * g
        # batch axes that were broadcast are summed back by the engine
        return matmul(gy, _mT(y)), matmul(_mT(x), gy)


@public(MatMul, method=True, operators=('__matmul__',), roperators=('__rmatmul__',))
def matmul(x, y) -> Tensor:
    return MatMul.apply(*pair(x, y))


__all__ = ["matmul"]
