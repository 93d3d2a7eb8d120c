"""Fused activation functions (one node each instead of a chain of primitives).

relu, sigmoid, tanh, softmax and log_softmax live in ``unary`` / ``nn_ops``;
these are the parameterised ones: leaky ReLU, PReLU (learnable slope, also
used for RReLU's random slopes), ELU, SiLU (Swish) and softplus.
"""
from __future__ import annotations

from ..function import Function
from ..spec import OpSpec, public
from ..tensor import Tensor
from ._util import as_tensor, const
from .arithmetic import where
from .unary import LeakyReLUGrad, exp, sigmoid

__all__ = ["leaky_relu", "prelu", "elu", "silu", "softplus"]


def _slope_kw(d, shapes):
    return {"negative_slope": d.choice([0.01, 0.2, -0.5, 1.5])}


class LeakyReLU(Function):
    """f = x if x > 0 else a·x;  df/dx = 1 if x > 0 else a."""
    spec = OpSpec(ref=lambda np, x, negative_slope: np.where(x > 0, x, negative_slope * x),
                  call=lambda x, **kw: leaky_relu(x, **kw), kwargs=_slope_kw, avoid=(0.0,))

    def forward(self, x):
        return self.backend.fused.leaky_relu(x, self.negative_slope)

    def backward(self, gy):
        return LeakyReLUGrad.apply(gy, self.inputs[0], negative_slope=self.negative_slope)


class PReLU(Function):
    """f = x if x > 0 else a·x, slope tensor a broadcast against x;  df/dx = [x > 0] + a[x <= 0], df/da = x[x <= 0]."""
    elementwise = True
    spec = OpSpec(ref=lambda np, x, a: np.where(x > 0, x, a * x), nargs=2, call=lambda x, a: PReLU.apply(x, a),
                  avoid=[(0.0,), ()])

    def forward(self, x, a):
        return self.xp.where(x > 0, x, a * x)

    def backward(self, gy):
        x, a = self.inputs
        pos = x.array > 0
        neg = const((~pos).astype(gy.dtype), gy)
        gx = gy * (const(pos.astype(gy.dtype), gy) + a * neg) if x._rg else None
        ga = gy * x * neg if a._rg else None
        return gx, ga


class ELU(Function):
    """f = x if x > 0 else α(eˣ - 1);  df/dx = α eˣ where x <= 0, else 1 (PyTorch's test: NaN and +inf take the
    linear branch, gradient 1)."""
    spec = OpSpec(ref=lambda np, x, alpha: np.where(x > 0, x, alpha * (np.exp(np.minimum(x, 0)) - 1)),
                  call=lambda x, **kw: elu(x, **kw), avoid=(0.0,),
                  kwargs=lambda d, shapes: {"alpha": d.choice([1.0, 0.5, 2.0])})

    def forward(self, x):
        xp = self.xp
        neg = xp.expm1(xp.minimum(x, 0)) * x.dtype.type(self.alpha)
        return xp.where(x > 0, x, neg)

    def backward(self, gy):
        x = self.inputs[0]
        neg = const(x.array <= 0, gy)
        # exp only of the x <= 0 values (never overflows, no inf·0 at +inf) and still differentiable for double
        # backward; the branches are selected, so NaN and +inf get the linear branch's gy
        return where(neg, gy * exp(where(neg, x, 0.0)) * self.alpha, gy)


class SiLU(Function):
    """f = x σ(x) (Swish);  df/dx = σ(x) (1 + x (1 - σ(x)))."""
    spec = OpSpec(ref=lambda np, x: x / (1 + np.exp(-x)), domain=(-6.0, 6.0))

    def forward(self, x):
        return self.backend.fused.silu(x)

    def backward(self, gy):
        return SiLUGrad.apply(gy, self.inputs[0])


class SiLUGrad(Function):
    """f = g h(x), h = σ(x)(1 + x(1 − σ(x))), the backward of silu (one kernel on the GPU);
    df/dg = h(x), df/dx = g σ(x)(1 − σ(x))(2 + x(1 − 2σ(x)))."""
    elementwise = True
    spec = OpSpec(ref=lambda np, g, x: g * (1 + np.exp(-x)) ** -1 * (1 + x * (1 - (1 + np.exp(-x)) ** -1)),
                  nargs=2, shapes="same", domain=[(-3.0, 3.0), (-6.0, 6.0)])

    def forward(self, g, x):
        return self.backend.fused.silu_backward(x, g)

    def backward(self, ggx):
        g, x = self.inputs
        gg = SiLUGrad.apply(ggx, x) if g._rg else None
        gx = None
        if x._rg:
            s = sigmoid(x)
            gx = ggx * g * (s * (1.0 - s) * (x * (1.0 - 2.0 * s) + 2.0))
        return gg, gx


class Softplus(Function):
    """f = log(1 + e^(βx)) / β (overflow-safe);  df/dx = σ(βx)."""
    spec = OpSpec(ref=lambda np, x, beta: np.log1p(np.exp(beta * x)) / beta,
                  call=lambda x, **kw: softplus(x, **kw), domain=(-6.0, 6.0),
                  kwargs=lambda d, shapes: {"beta": d.choice([1.0, 2.0, 0.5])})

    def forward(self, x):
        xp = self.xp
        bx = x * x.dtype.type(self.beta) if self.beta != 1 else x
        y = xp.maximum(bx, 0) + xp.log1p(xp.exp(-xp.abs(bx)))
        return y / x.dtype.type(self.beta) if self.beta != 1 else y

    def backward(self, gy):
        x = self.inputs[0]
        return gy * sigmoid(x * self.beta if self.beta != 1 else x)


@public(LeakyReLU)
def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else ``negative_slope``·x."""
    return LeakyReLU.apply(x, negative_slope=float(negative_slope))


@public(PReLU, functional=True)
def prelu(x: Tensor, weight) -> Tensor:
    """Parametric ReLU: x where x > 0, else weight·x.

    ``weight`` has one element (shared) or one per channel (axis 1 of ``x``, as in PyTorch);
    a slope tensor of any shape that broadcasts against ``x`` is also accepted.
    """
    weight = as_tensor(weight, x)
    if weight.ndim == 1 and weight.shape[0] != 1:
        if x.ndim < 2 or x.shape[1] != weight.shape[0]:
            raise ValueError(f"prelu: {weight.shape[0]} slopes need an input with {weight.shape[0]} channels on "
                             f"axis 1, got input shape {x.shape}")
        weight = weight.reshape((1, weight.shape[0]) + (1,) * (x.ndim - 2))
    if weight.dtype != x.dtype and weight.dtype.kind == "f" and x.dtype.kind == "f":
        weight = weight.astype(x.dtype)
    return PReLU.apply(x, weight)


@public(ELU)
def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha·(eˣ − 1)."""
    return ELU.apply(x, alpha=float(alpha))


@public(SiLU)
def silu(x: Tensor) -> Tensor:
    """x·σ(x), also called Swish."""
    return SiLU.apply(x)


@public(Softplus)
def softplus(x: Tensor, beta: float = 1.0) -> Tensor:
    """log(1 + e^(βx)) / β, a smooth ReLU."""
    return Softplus.apply(x, beta=float(beta))
