"""Elementwise unary functions, with PyTorch's dtypes and special values.

Integer and bool inputs of the real-valued functions (exp, log, sqrt, ...) are computed in the default float
dtype, as PyTorch does (NumPy would give float64). Values and gradients at NaN, ±inf and the kinks are
PyTorch's: ``abs``'s gradient at NaN is 0 (PyTorch's ``sgn``), ``sign(nan)`` is 0, and the piecewise-constant
ops (floor, ceil, round, trunc, sign) have zero gradients.
"""
from __future__ import annotations

import numbers

from ..function import Function
from ..spec import OpSpec, public
from ..tensor import Tensor, get_default_dtype
from ._util import const

__all__ = ["exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "abs",
           "exp2", "expm1", "log2", "log10", "log1p", "rsqrt", "reciprocal",
           "floor", "ceil", "round", "trunc", "frac", "sign",
           "isnan", "isinf", "isfinite", "isposinf", "isneginf", "signbit"]

_LN2 = 0.6931471805599453
_LN10 = 2.302585092994046


def _real(x: Tensor, op: str) -> Tensor:
    """``x`` in the default float dtype when it is an integer or bool tensor (PyTorch's ``exp(int_tensor)``);
    integer tensors never require grad, so the cast is a constant."""
    _require_tensor(x, op)
    if x.array.dtype.kind in "fc":
        return x
    return const(x.array.astype(get_default_dtype()), x)


def _require_tensor(x, op: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")


class Exp(Function):
    """f = e^x;  df/dx = f."""
    save_output = True
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x: np.exp(x))

    def forward(self, x):
        return self.xp.exp(x)

    def backward(self, gy):
        return gy * self.output()


class Exp2(Function):
    """f = 2^x;  df/dx = f ln 2."""
    save_output = True
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x: np.exp2(x))

    def forward(self, x):
        return self.xp.exp2(x)

    def backward(self, gy):
        return gy * self.output() * _LN2


class Expm1(Function):
    """f = e^x − 1;  df/dx = f + 1."""
    save_output = True
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x: np.expm1(x))

    def forward(self, x):
        return self.xp.expm1(x)

    def backward(self, gy):
        return gy * (self.output() + 1.0)


class Log(Function):
    """f = ln x;  df/dx = 1/x."""
    spec = OpSpec(ref=lambda np, x: np.log(x), domain=(0.1, 5.0))

    def forward(self, x):
        return self.xp.log(x)

    def backward(self, gy):
        return gy / self.inputs[0]


class Log2(Function):
    """f = log₂ x;  df/dx = 1/(x ln 2)."""
    spec = OpSpec(ref=lambda np, x: np.log2(x), domain=(0.1, 5.0))

    def forward(self, x):
        return self.xp.log2(x)

    def backward(self, gy):
        return gy / (self.inputs[0] * _LN2)


class Log10(Function):
    """f = log₁₀ x;  df/dx = 1/(x ln 10)."""
    spec = OpSpec(ref=lambda np, x: np.log10(x), domain=(0.1, 5.0))

    def forward(self, x):
        return self.xp.log10(x)

    def backward(self, gy):
        return gy / (self.inputs[0] * _LN10)


class Log1p(Function):
    """f = ln(1 + x);  df/dx = 1/(1 + x)."""
    spec = OpSpec(ref=lambda np, x: np.log1p(x), domain=(-0.9, 5.0))

    def forward(self, x):
        return self.xp.log1p(x)

    def backward(self, gy):
        return gy / (self.inputs[0] + 1.0)


class Sqrt(Function):
    """f = √x;  df/dx = 1/(2f)."""
    save_output = True
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x: np.sqrt(x), domain=(0.1, 5.0))

    def forward(self, x):
        return self.xp.sqrt(x)

    def backward(self, gy):
        return gy / (self.output() * 2.0)


class Rsqrt(Function):
    """f = 1/√x;  df/dx = −f³/2."""
    save_output = True
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x: 1 / np.sqrt(x), domain=(0.1, 5.0))

    def forward(self, x):
        return self.xp.reciprocal(self.xp.sqrt(x))

    def backward(self, gy):
        y = self.output()
        return gy * (y * y * y) * -0.5


class Reciprocal(Function):
    """f = 1/x;  df/dx = −f²."""
    save_output = True
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x: 1 / x, avoid=(0.0,), margin=0.3)

    def forward(self, x):
        return self.xp.reciprocal(x)

    def backward(self, gy):
        y = self.output()
        return -gy * (y * y)


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
    """f = max(x, 0);  df/dx = [x > 0].

    PyTorch's gradient is [not x <= 0] (1 at NaN) and selects rather than multiplies (0 where x <= 0 even for
    an infinite upstream gradient); the backends' fused ReLU backward multiplies by [x > 0], so both differ at
    NaN inputs or non-finite upstream gradients (tests/test_elementwise_torch.py)."""
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
    """f = g if x > 0 else a·g, the backward of leaky_relu, and for relu (a = 0) PyTorch's select 0 if x <= 0 else g
    (so a nan x passes g and an infinite g where x <= 0 gives 0);  df/dg = f/g, df/dx = 0."""
    elementwise = True
    spec = OpSpec(ref=lambda np, g, x, negative_slope: np.where(x > 0, g, g * negative_slope) if negative_slope
                  else np.where(x <= 0, 0.0, g), nargs=2,
                  shapes="same", avoid=[(), (0.0,)],
                  kwargs=lambda d, shapes: {"negative_slope": d.choice([0.0, 0.01, 0.2, -0.5])})

    def forward(self, g, x):
        return self.backend.fused.leaky_relu_backward(x, g, self.negative_slope)

    def backward(self, ggx):
        return LeakyReLUGrad.apply(ggx, self.inputs[1], negative_slope=self.negative_slope), None


def _sign_array(xp, x):
    """PyTorch's sign of an array: −1, 0 or 1 in x's dtype, and 0 at NaN (NumPy's ``sign`` gives NaN there)."""
    if x.dtype.kind != "f":
        return xp.sign(x)
    return (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)


class Abs(Function):
    """f = |x|;  df/dx = sign x (0 at 0 and at NaN, as PyTorch's ``sgn``)."""
    spec = OpSpec(ref=lambda np, x: np.abs(x), avoid=(0.0,))

    def forward(self, x):
        return self.xp.abs(x)

    def backward(self, gy):
        return gy * const(_sign_array(self.xp, self.inputs[0].array), gy)


class PiecewiseConstant(Function):
    """Base of the ops whose value is piecewise constant (floor, round, sign, the rounded quotients): PyTorch
    gives them zero gradients everywhere (not NaN, whatever the upstream gradient)."""
    exempt = "abstract base: each subclass has its own spec"
    needs_inputs = False

    def backward(self, gy):
        z = const(self.xp.zeros_like(gy.array), gy)
        n = len(self.inputs)
        return z if n == 1 else (z,) * n


def _apart(x, step: float = 1.0, offset: float = 0.0):
    """Host array ``x`` moved into the middle third between the jumps at ``offset + k·step``, so that finite
    differences see none (array operators only: ``//`` floors)."""
    k = (x - offset) // step
    return offset + step * (k + 1 / 3 + (x - offset - k * step) / step / 3)


class Floor(PiecewiseConstant):
    """f = ⌊x⌋;  df/dx = 0."""
    spec = OpSpec(ref=lambda np, x: np.floor(x), prepare=lambda np, a: [_apart(a[0])])

    def forward(self, x):
        return self.xp.floor(x)


class Ceil(PiecewiseConstant):
    """f = ⌈x⌉;  df/dx = 0."""
    spec = OpSpec(ref=lambda np, x: np.ceil(x), prepare=lambda np, a: [_apart(a[0])])

    def forward(self, x):
        return self.xp.ceil(x)


class Trunc(PiecewiseConstant):
    """f = x rounded toward 0;  df/dx = 0."""
    spec = OpSpec(ref=lambda np, x: np.trunc(x), prepare=lambda np, a: [_apart(a[0])])

    def forward(self, x):
        return self.xp.trunc(x)


def _round_sample(d):
    decimals = d.choice([0, 1, 2, -1])
    x = d.array(d.shape(), -3.0, 3.0)
    step = 10.0 ** -decimals
    return [_apart(x, step, step / 2)], {"decimals": decimals}


def _round_array(xp, x, decimals: int):
    """PyTorch's ``round``: half to even, at ``decimals`` digits (x·10^d rounded, then divided back; for d < 0
    x/10^−d rounded, then multiplied back, so both scales are exact powers of ten)."""
    if decimals == 0:
        return xp.rint(x)
    if decimals > 0:
        scale = x.dtype.type(10.0 ** decimals)
        return xp.rint(x * scale) / scale
    scale = x.dtype.type(10.0 ** -decimals)
    return xp.rint(x / scale) * scale


class Round(PiecewiseConstant):
    """f = x rounded to ``decimals`` digits, half to even;  df/dx = 0."""
    spec = OpSpec(ref=lambda np, x, decimals: np.round(x, decimals), sample=_round_sample)

    def forward(self, x):
        return _round_array(self.xp, x, self.decimals)


class Sign(PiecewiseConstant):
    """f = sign x (−1, 0, 1; 0 at NaN, as PyTorch);  df/dx = 0."""
    spec = OpSpec(ref=lambda np, x: np.sign(x), avoid=(0.0,))

    def forward(self, x):
        return _sign_array(self.xp, x)


class Frac(Function):
    """f = x − trunc(x) (the sign of x);  df/dx = 1."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x: x - np.trunc(x), prepare=lambda np, a: [_apart(a[0])])

    def forward(self, x):
        return x - self.xp.trunc(x)

    def backward(self, gy):
        return gy


@public(Exp, method=True)
def exp(x) -> Tensor:
    return Exp.apply(_real(x, "exp"))


@public(Exp2, method=True)
def exp2(x) -> Tensor:
    return Exp2.apply(_real(x, "exp2"))


@public(Expm1, method=True)
def expm1(x) -> Tensor:
    return Expm1.apply(_real(x, "expm1"))


@public(Log, method=True)
def log(x) -> Tensor:
    return Log.apply(_real(x, "log"))


@public(Log2, method=True)
def log2(x) -> Tensor:
    return Log2.apply(_real(x, "log2"))


@public(Log10, method=True)
def log10(x) -> Tensor:
    return Log10.apply(_real(x, "log10"))


@public(Log1p, method=True)
def log1p(x) -> Tensor:
    return Log1p.apply(_real(x, "log1p"))


@public(Sqrt, method=True)
def sqrt(x) -> Tensor:
    return Sqrt.apply(_real(x, "sqrt"))


@public(Rsqrt, method=True)
def rsqrt(x) -> Tensor:
    """1/√x."""
    return Rsqrt.apply(_real(x, "rsqrt"))


@public(Reciprocal, method=True)
def reciprocal(x) -> Tensor:
    """1/x (integer tensors give the default float dtype)."""
    return Reciprocal.apply(_real(x, "reciprocal"))


@public(Sin, method=True)
def sin(x) -> Tensor:
    return Sin.apply(_real(x, "sin"))


@public(Cos, method=True)
def cos(x) -> Tensor:
    return Cos.apply(_real(x, "cos"))


@public(Tanh, method=True, functional=True)
def tanh(x) -> Tensor:
    return Tanh.apply(_real(x, "tanh"))


@public(Sigmoid, method=True, functional=True)
def sigmoid(x) -> Tensor:
    return Sigmoid.apply(_real(x, "sigmoid"))


@public(ReLU, method=True)
def relu(x) -> Tensor:
    return ReLU.apply(x)


@public(Abs, method=True, operators=('__abs__',), aliases=("absolute",))
def abs(x) -> Tensor:
    _require_tensor(x, "abs")
    if x.array.dtype.kind == "b":
        raise TypeError(f"abs: not defined for bool tensors (shape {x.shape}), as in PyTorch")
    return Abs.apply(x)


def _rounding(x, op: str, integers_ok: bool = True):
    """The tensor itself (a copy) for integer inputs of floor/ceil/trunc/round, which leave integers as they are;
    None for floating inputs, which the op computes. Bool tensors raise, as in PyTorch."""
    _require_tensor(x, op)
    kind = x.array.dtype.kind
    if kind in "fc":
        return None
    if kind == "b" or not integers_ok:
        raise TypeError(f"{op}: not defined for {x.dtype} tensors (shape {x.shape}), as in PyTorch; "
                        f"cast to a floating dtype first")
    return const(x.array.copy(), x)


@public(Floor, method=True)
def floor(x) -> Tensor:
    """The largest integer ≤ x (integer tensors unchanged); zero gradient."""
    same = _rounding(x, "floor")
    return same if same is not None else Floor.apply(x)


@public(Ceil, method=True)
def ceil(x) -> Tensor:
    """The smallest integer ≥ x (integer tensors unchanged); zero gradient."""
    same = _rounding(x, "ceil")
    return same if same is not None else Ceil.apply(x)


@public(Trunc, method=True, aliases=("fix",))
def trunc(x) -> Tensor:
    """x rounded toward zero (integer tensors unchanged); zero gradient."""
    same = _rounding(x, "trunc")
    return same if same is not None else Trunc.apply(x)


@public(Round, method=True)
def round(x, decimals: int = 0) -> Tensor:
    """x rounded half to even (PyTorch's and NumPy's rule: 0.5 → 0, 1.5 → 2), at ``decimals`` decimal digits
    (negative: to tens, hundreds, ...); zero gradient."""
    if not isinstance(decimals, numbers.Integral) or isinstance(decimals, bool):
        raise TypeError(f"round: decimals must be an int, got {decimals!r}")
    same = _rounding(x, "round", integers_ok=decimals == 0)
    return same if same is not None else Round.apply(x, decimals=int(decimals))


@public(Frac, method=True)
def frac(x) -> Tensor:
    """x − trunc(x) (keeps x's sign); gradient 1. Floating tensors only, as in PyTorch."""
    _rounding(x, "frac", integers_ok=False)
    return Frac.apply(x)


@public(Sign, method=True)
def sign(x) -> Tensor:
    """−1, 0 or 1 in x's dtype (0 at NaN and at ±0, as PyTorch); zero gradient. Bool tensors are returned as
    they are."""
    _require_tensor(x, "sign")
    if x.array.dtype.kind in "biu":
        return const(x.array.copy() if x.array.dtype.kind == "b" else x.xp.sign(x.array), x)
    return Sign.apply(x)


# --- tests on values: bool tensors outside the graph --------------------------------------------------------


def _flags(x, op: str, float_test, int_value: bool | None = False) -> Tensor:
    """``float_test(xp, array)`` for floating tensors; for integer and bool tensors, all ``int_value``."""
    _require_tensor(x, op)
    xp, a = x.xp, x.array
    if a.dtype.kind in "fc":
        return const(float_test(xp, a), x)
    return const(xp.full(a.shape, int_value, dtype=bool), x)


@public(method=True)
def isnan(x) -> Tensor:
    """True where x is NaN (a bool tensor, no gradient)."""
    return _flags(x, "isnan", lambda xp, a: xp.isnan(a))


@public(method=True)
def isinf(x) -> Tensor:
    """True where x is +inf or −inf."""
    return _flags(x, "isinf", lambda xp, a: xp.isinf(a))


@public(method=True)
def isfinite(x) -> Tensor:
    """True where x is neither NaN nor ±inf (always for integer and bool tensors)."""
    return _flags(x, "isfinite", lambda xp, a: xp.isfinite(a), int_value=True)


@public(method=True)
def isposinf(x) -> Tensor:
    """True where x is +inf."""
    return _flags(x, "isposinf", lambda xp, a: xp.isinf(a) & (a > 0))


@public(method=True)
def isneginf(x) -> Tensor:
    """True where x is −inf."""
    return _flags(x, "isneginf", lambda xp, a: xp.isinf(a) & (a < 0))


@public(method=True)
def signbit(x) -> Tensor:
    """True where x's sign bit is set: negative values, −0.0 and NaNs with the sign bit (integers: x < 0)."""
    _require_tensor(x, "signbit")
    a = x.array
    if a.dtype.kind == "f":
        return const(x.xp.signbit(a), x)
    if a.dtype.kind == "b":
        return const(x.xp.zeros(a.shape, dtype=bool), x)
    return const(a < 0, x)
