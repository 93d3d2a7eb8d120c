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
        y = self.output()
        return gy * (1.0 - y * y)


class Sigmoid(Function):
    """f = 1/(1+e^-x);  df/dx = f(1-f)."""
    save_output = True
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x: 1 / (1 + np.exp(-x)), domain=(-8.0, 8.0))

    def forward(self, x):
        xp = self.xp
        # overflow-safe: e^-|x| never overflows; choose the branch by sign
        z = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, 1 / (1 + z), z / (1 + z))

    def backward(self, gy):
        y = self.output()
        return gy * y * (1.0 - y)


class Relu(Function):
    """f = max(x, 0);  df/dx = [x > 0]."""
    spec = OpSpec(ref=lambda np, x: np.maximum(x, 0), avoid=(0.0,))

    def forward(self, x):
        return self.xp.maximum(x, 0)

    def backward(self, gy):
        return gy * const(self.inputs[0].data > 0, gy)


class Abs(Function):
    """f = |x|;  df/dx = sign x."""
    spec = OpSpec(ref=lambda np, x: np.abs(x), avoid=(0.0,))

    def forward(self, x):
        return self.xp.abs(x)

    def backward(self, gy):
        return gy * const(self.xp.sign(self.inputs[0].data), gy)


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


@public(Relu, method=True)
def relu(x) -> Tensor:
    return Relu.apply(x)


@public(Abs, method=True, operators=('__abs__',))
def abs(x) -> Tensor:
    return Abs.apply(x)
