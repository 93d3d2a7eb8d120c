"""Elementwise binary arithmetic with NumPy broadcasting.

Gradients are returned at the broadcast shape; ``Function.apply``'s engine
reduces them to each input's shape (once, centrally).
"""
from __future__ import annotations

from ..function import Function, is_grad_enabled
from ..spec import OpSpec, public
from ..tensor import Tensor
from ._util import const, pair

__all__ = ["add", "sub", "mul", "div", "neg", "pow", "maximum", "minimum", "where", "clip"]


class Add(Function):
    """f = x + y;  df/dx = 1, df/dy = 1."""
    elementwise = True
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, y: x + y, nargs=2, call=lambda x, y: x + y)

    def forward(self, x, y):
        return x + y

    def backward(self, gy):
        return gy, gy


class Sub(Function):
    """f = x - y;  df/dx = 1, df/dy = -1."""
    elementwise = True
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, y: x - y, nargs=2, call=lambda x, y: x - y)

    def forward(self, x, y):
        return x - y

    def backward(self, gy):
        return gy, -gy


class Mul(Function):
    """f = x * y;  df/dx = y, df/dy = x."""
    elementwise = True
    spec = OpSpec(ref=lambda np, x, y: x * y, nargs=2, call=lambda x, y: x * y)

    def forward(self, x, y):
        return x * y

    def backward(self, gy):
        x, y = self.inputs
        if not is_grad_enabled():      # nothing recorded: plain array products, only for inputs that need one
            g = gy.array
            return (const(g * y.array, gy) if x._rg else None), (const(g * x.array, gy) if y._rg else None)
        return gy * y, gy * x


class Div(Function):
    """f = x / y;  df/dx = 1/y, df/dy = -x/y^2."""
    elementwise = True
    spec = OpSpec(ref=lambda np, x, y: x / y, nargs=2, call=lambda x, y: x / y,
                  domain=[(-3.0, 3.0), (-3.0, 3.0)], avoid=[(), (0.0,)], margin=0.5)

    def forward(self, x, y):
        return x / y

    def backward(self, gy):
        x, y = self.inputs
        gx = gy / y
        return gx, -gx * x / y


class Neg(Function):
    """f = -x;  df/dx = -1."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x: -x, call=lambda x: -x)

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """f = x ** y (x > 0);  df/dx = y x^(y-1), df/dy = x^y log x."""
    elementwise = True
    save_output = True
    spec = OpSpec(ref=lambda np, x, y: x ** y, nargs=2, call=lambda x, y: x ** y,
                  domain=[(0.2, 3.0), (-2.0, 2.0)])

    def forward(self, x, y):
        return self.xp.power(x, y)

    def backward(self, gy):
        x, y = self.inputs
        from .unary import log
        out = self.output()
        return gy * y * x ** (y - 1), gy * out * log(x)


class PowConst(Function):
    """f = x ** c for a constant c;  df/dx = c x^(c-1)."""
    spec = OpSpec(
        ref=lambda np, x, c: x ** c, call=lambda x, c: x ** c,
        sample=lambda d: (lambda c: ([d.array(d.shape(), *((-3.0, 3.0) if float(c).is_integer() else (0.2, 3.0)),
                                              avoid=(0.0,) if c < 1 else ())], {"c": c}))(
            d.choice([2, 3, 1, 0, -1, 0.5, 1.5, -2.5])))

    def forward(self, x):
        c = self.c
        if c == 2:
            return x * x
        return self.xp.power(x, x.dtype.type(c) if x.dtype.kind == "f" else c)

    def backward(self, gy):
        x, = self.inputs
        c = self.c
        if c == 0:
            return gy * 0.0
        if c == 1:
            return gy
        if c == 2:
            return gy * x * 2.0
        return gy * c * x ** (c - 1)


class Maximum(Function):
    """f = max(x, y);  df/dx = [x >= y], df/dy = [x < y] (ties go to x)."""
    elementwise = True
    spec = OpSpec(ref=lambda np, x, y: np.maximum(x, y), nargs=2,
                  prepare=lambda np, a: [np.round(a[0] * 2) / 2, np.round(a[1] * 2) / 2 + 0.25])

    def forward(self, x, y):
        return self.xp.maximum(x, y)

    def backward(self, gy):
        x, y = self.inputs
        mask = (x.array >= y.array).astype(gy.dtype)
        return gy * const(mask, gy), gy * const(1 - mask, gy)


class Minimum(Function):
    """f = min(x, y);  df/dx = [x <= y], df/dy = [x > y] (ties go to x)."""
    elementwise = True
    spec = OpSpec(ref=lambda np, x, y: np.minimum(x, y), nargs=2,
                  prepare=lambda np, a: [np.round(a[0] * 2) / 2, np.round(a[1] * 2) / 2 + 0.25])

    def forward(self, x, y):
        return self.xp.minimum(x, y)

    def backward(self, gy):
        x, y = self.inputs
        mask = (x.array <= y.array).astype(gy.dtype)
        return gy * const(mask, gy), gy * const(1 - mask, gy)


class Where(Function):
    """f = cond ? x : y;  df/dx = [cond], df/dy = [not cond] (cond is not differentiated)."""
    elementwise = True
    needs_inputs = False
    spec = OpSpec(ref=lambda np, c, x, y: np.where(c > 0, x, y), nargs=3,
                  call=lambda c, x, y: where(c > 0, x, y), grad_inputs=(1, 2), avoid=[(0.0,), (), ()])

    def forward(self, cond, x, y):
        self.cond = cond
        return self.xp.where(cond, x, y)

    def backward(self, gy):
        c = const(self.cond, gy)
        return None, where(c, gy, 0.0), where(c, 0.0, gy)


class Clip(Function):
    """f = min(max(x, lo), hi);  df/dx = [lo <= x <= hi]."""
    spec = OpSpec(ref=lambda np, x, min=None, max=None: np.clip(x, min, max), avoid=(-1.0, 1.0),
                  call=lambda x, **kw: clip(x, **kw),
                  kwargs=lambda d, shapes: d.choice([{"min": -1.0, "max": 1.0}, {"min": None, "max": 1.0},
                                                     {"min": -1.0, "max": None}]))

    def forward(self, x):
        return self.xp.clip(x, self.lo, self.hi)

    def backward(self, gy):
        x = self.inputs[0].array
        inside = self.xp.ones(x.shape, dtype=bool)
        if self.lo is not None:
            inside &= x >= self.lo
        if self.hi is not None:
            inside &= x <= self.hi
        return gy * const(inside.astype(gy.dtype), gy)


@public(Add, operators=('__add__',), roperators=('__radd__',))
def add(x, y) -> Tensor:
    return Add.apply(*pair(x, y))


@public(Sub, operators=('__sub__',), roperators=('__rsub__',))
def sub(x, y) -> Tensor:
    return Sub.apply(*pair(x, y))


@public(Mul, operators=('__mul__',), roperators=('__rmul__',))
def mul(x, y) -> Tensor:
    return Mul.apply(*pair(x, y))


@public(Div, operators=('__truediv__',), roperators=('__rtruediv__',))
def div(x, y) -> Tensor:
    return Div.apply(*pair(x, y))


@public(Neg, operators=('__neg__',))
def neg(x) -> Tensor:
    return Neg.apply(x)


@public(operators=('__pow__',), roperators=('__rpow__',))
def pow(x, y) -> Tensor:
    """``x ** y``; a Python-number exponent uses the faster constant-power op."""
    if isinstance(x, Tensor) and isinstance(y, (int, float)) and not isinstance(y, bool):
        return PowConst.apply(x, c=y)
    return Pow.apply(*pair(x, y))


@public(Maximum, method=True)
def maximum(x, y) -> Tensor:
    return Maximum.apply(*pair(x, y))


@public(Minimum, method=True)
def minimum(x, y) -> Tensor:
    return Minimum.apply(*pair(x, y))


@public(Where)
def where(cond, x, y) -> Tensor:
    """Elementwise ``x`` where ``cond`` else ``y`` (NumPy broadcasting)."""
    like = x if isinstance(x, Tensor) else y if isinstance(y, Tensor) else cond
    if not isinstance(like, Tensor):
        raise TypeError("where: at least one argument must be a Tensor")
    if not isinstance(cond, Tensor):
        cond = const(like._backend.asarray(cond), like)
    if cond.array.dtype.kind != "b":
        raise TypeError(f"where: condition must be boolean, got dtype {cond.dtype} (shape {cond.shape}); "
                        "compare first, e.g. where(x > 0, ...)")
    x, y = pair(x, y)
    return Where.apply(cond, x, y)


@public(Clip, method=True)
def clip(x, min=None, max=None) -> Tensor:
    """Limit values to ``[min, max]`` (either may be None)."""
    if min is None and max is None:
        raise ValueError("clip: at least one of min and max must be given")
    return Clip.apply(x, lo=min, hi=max)
