"""Elementwise unary functions."""
from __future__ import annotations

from ..function import Function
from ..spec import OpSpec, public
from ..tensor import Tensor
from ._util import const

__all__ = ["exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "abs"]


class Exp(Function):
    """f = e^x;  df/dx = f."""
    save_output = True
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x: np.exp(x))

    def forward(self, x):
        return self.xp.exp(x)

    def backward(self, gy):
        return gy * self.output()


class Log(Function):
    """f = ln x;  df/dx = 1/x."""
    spec = OpSpec(ref=lambda np, x: np.log(x), domain=(0.1, 5.0))

    def forward(self, x):
        return self.xp.log(x)

    def backward(self, gy):
        return gy / self.inputs[0]


class Sqrt(Function):
    """f = √x;  df/dx = 1/(2f)."""
    save_output = True
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x: np.sqrt(x), domain=(0.1, 5.0))

    def forward(self, x):
        return self.xp.sqrt(x)

    def backward(self, gy):
        return gy / (self.output() * 2.0)


class Sin(Function):
    """f = sin x;  df/dx = cos x."""
    spec = OpSpec(ref=lambda np, x: np.sin(x))

    def forward(self, x):
        return self.xp.sin(x)

    def backward(self, gy):
        return gy * cos(self.inputs[0])


class Cos(Function):
    """f = cos x;  df/dx = -sin x."""
    spec = OpSpec(ref=lambda np, x: np.cos(x))

    def forward(self, x):
        return self.xp.cos(x)

    def backward(self, gy):
        return -gy * sin(self.inputs[0])


class Tanh(Function):
    """f = tanh x;  df/dx = 1 - f²."""
    save_output = True
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x: np.tanh(x))

    def forward(self, x):
        return self.xp.tanh(x)

    def backward(self, gy):
        return TanhGrad.apply(gy, self.output())


class Sigmoid(Function):
    """f = 1/(1+e^-x);  df/dx = f(1-f)."""
    save_output = True
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x: 1 / (1 + np.exp(-x)), domain=(-8.0, 8.0))

    def forward(self, x):
        return self.backend.fused.sigmoid(x)       # overflow-safe: e^-|x|, branch chosen by sign

    def backward(self, gy):
        return SigmoidGrad.apply(gy, self.output())


class ReLU(Function):
    """f = max(x, 0);  df/dx = [x > 0]."""
    spec = OpSpec(ref=lambda np, x: np.maximum(x, 0), avoid=(0.0,))

    def forward(self, x):
        return self.xp.maximum(x, 0)

    def backward(self, gy):
        return LeakyReLUGrad.apply(gy, self.inputs[0], negative_slope=0.0)


# --- fused backward helpers: one kernel on the GPU; their own backward is Tensor ops (differentiable again) ---


class SigmoidGrad(Function):
    """f = g y (1 − y), the backward of y = σ(x);  df/dg = y (1 − y), df/dy = g (1 − 2y)."""
    elementwise = True
    spec = OpSpec(ref=lambda np, g, y: g * y * (1 - y), nargs=2, shapes="same", domain=[(-3.0, 3.0), (0.05, 0.95)])

    def forward(self, g, y):
        return self.backend.fused.sigmoid_backward(y, g)

    def backward(self, ggx):
        g, y = self.inputs
        gg = SigmoidGrad.apply(ggx, y) if g._rg else None
        gyy = ggx * g * (1.0 - 2.0 * y) if y._rg else None
        return gg, gyy


class TanhGrad(Function):
    """f = g (1 − y²), the backward of y = tanh x;  df/dg = 1 − y², df/dy = −2 g y."""
    elementwise = True
    spec = OpSpec(ref=lambda np, g, y: g * (1 - y * y), nargs=2, shapes="same", domain=[(-3.0, 3.0), (-0.95, 0.95)])

    def forward(self, g, y):
        return self.backend.fused.tanh_backward(y, g)

    def backward(self, ggx):
        g, y = self.inputs
        gg = TanhGrad.apply(ggx, y) if g._rg else None
        gyy = ggx * g * y * -2.0 if y._rg else None
        return gg, gyy


class LeakyReLUGrad(Function):
    """f = g · (1 if x > 0 else a), the backward of relu (a = 0) and leaky_relu;  df/dg = f/g, df/dx = 0."""
    elementwise = True
    spec = OpSpec(ref=lambda np, g, x, negative_slope: g * np.where(x > 0, 1.0, negative_slope), nargs=2,
                  shapes="same", avoid=[(), (0.0,)],
                  kwargs=lambda d, shapes: {"negative_slope": d.choice([0.0, 0.01, 0.2, -0.5])})

    def forward(self, g, x):
        return self.backend.fused.leaky_relu_backward(x, g, self.negative_slope)

    def backward(self, ggx):
        return LeakyReLUGrad.apply(ggx, self.inputs[1], negative_slope=self.negative_slope), None


class Abs(Function):
    """f = |x|;  df/dx = sign x."""
    spec = OpSpec(ref=lambda np, x: np.abs(x), avoid=(0.0,))

    def forward(self, x):
        return self.xp.abs(x)

    def backward(self, gy):
        return gy * const(self.xp.sign(self.inputs[0].array), gy)


@public(Exp, method=True)
def exp(x) -> Tensor:
    return Exp.apply(x)


@public(Log, method=True)
def log(x) -> Tensor:
    return Log.apply(x)


@public(Sqrt, method=True)
def sqrt(x) -> Tensor:
    return Sqrt.apply(x)


@public(Sin, method=True)
def sin(x) -> Tensor:
    return Sin.apply(x)


@public(Cos, method=True)
def cos(x) -> Tensor:
    return Cos.apply(x)


@public(Tanh, method=True, functional=True)
def tanh(x) -> Tensor:
    return Tanh.apply(x)


@public(Sigmoid, method=True, functional=True)
def sigmoid(x) -> Tensor:
    return Sigmoid.apply(x)


@public(ReLU, method=True)
def relu(x) -> Tensor:
    return ReLU.apply(x)


@public(Abs, method=True, operators=('__abs__',))
def abs(x) -> Tensor:
    return Abs.apply(x)
