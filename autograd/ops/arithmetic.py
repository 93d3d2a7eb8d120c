"""Elementwise binary ops with NumPy broadcasting and PyTorch's semantics: arithmetic, division and its rounded
forms, powers, maximum/minimum, clamp, lerp, where, comparisons and bitwise/logical ops.

Gradients are returned at the broadcast shape; ``Function.apply``'s engine reduces them to each input's shape
(once, centrally). Dtypes follow PyTorch: Python scalars never promote a float tensor (``_util.pair``), true
division of integer or bool tensors gives the default float dtype, the rounded divisions of integers stay
integers. Gradients at NaN, ±inf, zeros and ties are PyTorch's (tests/test_elementwise_torch.py compares them
with torch): masks *select* the upstream gradient (``where``) rather than multiply it, so a masked-off element
gets 0 even under an infinite upstream gradient; maximum/minimum split ties in halves and give a NaN comparison
to both sides; the piecewise-constant ops (rounded quotients) have zero gradients.
"""
from __future__ import annotations

import numbers

from backends import DeviceError

from ..function import Function, is_grad_enabled
from ..spec import OpSpec, public
from ..tensor import Tensor, get_default_dtype
from ._util import as_tensor, const, pair
from .unary import PiecewiseConstant, log

__all__ = ["add", "sub", "mul", "div", "floor_divide", "remainder", "fmod", "neg", "pow", "square",
           "maximum", "minimum", "where", "nonzero", "argwhere", "clamp", "clamp_min", "clamp_max", "lerp",
           "eq", "ne", "lt", "le", "gt", "ge", "equal", "isclose", "allclose",
           "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not",
           "logical_and", "logical_or", "logical_xor", "logical_not"]


def _kind(t: Tensor) -> str:
    return t.array.dtype.kind


def _as_float(t: Tensor, dtype) -> Tensor:
    """An integer or bool tensor (never requiring grad) as a constant of float ``dtype``."""
    return const(t.array.astype(dtype), t)


def _select(mask, gy: Tensor, value: float = 0.0) -> Tensor:
    """``gy`` where the boolean array ``mask`` is False, ``value`` where it is True: PyTorch's masked gradient
    (a select, so an infinite upstream gradient stays out of the masked-off elements)."""
    return where(const(mask, gy), value, gy)


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


def _quotient_apart(np, arrays):
    """Same-shape (x, y) with |y| >= 0.5 and x/y at least 0.2 from an integer (the jumps of floor, trunc,
    remainder and fmod)."""
    a, b = arrays
    y = np.where(b < 0, b - 0.5, b + 0.5)
    q = np.floor(a) + 0.2 + 0.6 * (a - np.floor(a))
    return [q * y, y]


def _rounded_ref(np, x, y, rounding_mode):
    return np.floor_divide(x, y) if rounding_mode == "floor" else np.trunc(x / y)


class RoundedDiv(PiecewiseConstant):
    """f = floor(x / y) or trunc(x / y) (``mode``): ``//``, ``floor_divide`` and ``div(..., rounding_mode=)``;
    df/dx = df/dy = 0 (PyTorch's gradient of ``div`` with a rounding mode)."""
    elementwise = True
    spec = OpSpec(ref=_rounded_ref, nargs=2, shapes="same", prepare=_quotient_apart,
                  call=lambda x, y, rounding_mode: div(x, y, rounding_mode=rounding_mode),
                  kwargs=lambda d, shapes: {"rounding_mode": d.choice(["floor", "trunc"])})

    def forward(self, x, y):
        xp = self.xp
        if self.mode == "floor":
            return xp.floor_divide(x, y)        # Python's //: the quotient of the remainder with y's sign
        if x.dtype.kind == "f":
            return xp.trunc(x / y)
        return xp.floor_divide(x - xp.fmod(x, y), y)    # exact for integers (x − fmod is a multiple of y)


class Remainder(Function):
    """f = x − y·floor(x/y) (Python's ``%``: the sign of y);  df/dx = 1, df/dy = −floor(x/y)."""
    elementwise = True
    spec = OpSpec(ref=lambda np, x, y: np.remainder(x, y), nargs=2, shapes="same", prepare=_quotient_apart,
                  call=lambda x, y: x % y)

    def forward(self, x, y):
        return self.xp.remainder(x, y)

    def backward(self, gy):
        x, y = self.inputs
        q = const(self.xp.floor_divide(x.array, y.array), gy)
        return gy, -gy * q


class Fmod(Function):
    """f = x − y·trunc(x/y) (C's fmod: the sign of x);  df/dx = 1, df/dy = −trunc(x/y)."""
    elementwise = True
    spec = OpSpec(ref=lambda np, x, y: np.fmod(x, y), nargs=2, shapes="same", prepare=_quotient_apart)

    def forward(self, x, y):
        return self.xp.fmod(x, y)

    def backward(self, gy):
        x, y = self.inputs
        q = const(self.xp.trunc(x.array / y.array), gy)
        return gy, -gy * q


class Neg(Function):
    """f = -x;  df/dx = -1."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x: -x, call=lambda x: -x)

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """f = x ** y;  df/dx = y x^(y-1) (0 where y = 0), df/dy = x^y log x (0 where x = 0 and y >= 0), PyTorch's
    values at those points instead of NaN."""
    elementwise = True
    save_output = True
    spec = OpSpec(ref=lambda np, x, y: x ** y, nargs=2, call=lambda x, y: x ** y,
                  domain=[(0.2, 3.0), (-2.0, 2.0)])

    def forward(self, x, y):
        return self.xp.power(x, y)

    def backward(self, gy):
        x, y = self.inputs
        xa, ya = x.array, y.array
        # y x^(y-1) is 0 at y = 0 except where x^-1 is inf or NaN: mask only those, so the second derivative
        # (d/dy of this gradient) stays right at y = 0
        gx = _select((ya == 0) & ((xa == 0) | self.xp.isnan(xa)), gy * y * x ** (y - 1)) if x._rg else None
        gyy = _select((xa == 0) & (ya >= 0), gy * self.output() * log(x)) if y._rg else None
        return gx, gyy


def _pow_const(xp, x, c):
    """x ** c for a constant c as PyTorch computes it: its special exponents take sqrt, rsqrt, products and
    reciprocals, other exponents pow. They differ at −0.5: (−inf) ** −0.5 is NaN (pow: 0) and (−0.0) ** −0.5 is
    −inf (pow: inf), which is x ** 0.5's gradient at −inf and −0.0."""
    if x.dtype.kind != "f":
        return xp.power(x, c)
    if c == 2:
        return x * x
    if c == 0.5:
        return xp.sqrt(x)
    if c == 3:
        return x * x * x
    if c == -0.5:
        return xp.reciprocal(xp.sqrt(x))
    if c == -1:
        return xp.reciprocal(x)
    if c == -2:
        return xp.reciprocal(x * x)
    return xp.power(x, x.dtype.type(c))


class PowConst(Function):
    """f = x ** c for a constant c;  df/dx = c x^(c-1) (0 for c = 0)."""
    spec = OpSpec(
        ref=lambda np, x, c: x ** c, call=lambda x, c: x ** c,
        sample=lambda d: (lambda c: ([d.array(d.shape(), *((-3.0, 3.0) if float(c).is_integer() else (0.2, 3.0)),
                                              avoid=(0.0,) if c < 1 else ())], {"c": c}))(
            d.choice([2, 3, 1, 0, -1, 0.5, 1.5, -2.5, -0.5, -2])))

    def forward(self, x):
        return _pow_const(self.xp, x, self.c)

    def backward(self, gy):
        x, = self.inputs
        c = self.c
        if c == 0:
            return const(self.xp.zeros_like(gy.array), gy)
        if c == 1:
            return gy
        if c == 2:
            return gy * x * 2.0
        return gy * c * x ** (c - 1)


def _extreme_grads(gy: Tensor, x: Tensor, y: Tensor, x_loses, y_loses):
    """PyTorch's maximum/minimum gradients: the loser of a comparison gets 0, a tie gives each side half, and
    where the comparison fails (a NaN on either side) both sides get all of it."""
    tie = x.array == y.array
    half = where(const(tie, gy), gy * 0.5, gy)
    gx = _select(x_loses, half) if x._rg else None
    gyy = _select(y_loses, half) if y._rg else None
    return gx, gyy


class Maximum(Function):
    """f = max(x, y) (NaN if either is);  df/dx = [x > y] + [x = y]/2 + [x or y NaN], df/dy likewise."""
    elementwise = True
    spec = OpSpec(ref=lambda np, x, y: np.maximum(x, y), nargs=2,
                  prepare=lambda np, a: [np.round(a[0] * 2) / 2, np.round(a[1] * 2) / 2 + 0.25])

    def forward(self, x, y):
        return self.xp.maximum(x, y)

    def backward(self, gy):
        x, y = self.inputs
        return _extreme_grads(gy, x, y, x.array < y.array, x.array > y.array)


class Minimum(Function):
    """f = min(x, y) (NaN if either is);  df/dx = [x < y] + [x = y]/2 + [x or y NaN], df/dy likewise."""
    elementwise = True
    spec = OpSpec(ref=lambda np, x, y: np.minimum(x, y), nargs=2,
                  prepare=lambda np, a: [np.round(a[0] * 2) / 2, np.round(a[1] * 2) / 2 + 0.25])

    def forward(self, x, y):
        return self.xp.minimum(x, y)

    def backward(self, gy):
        x, y = self.inputs
        return _extreme_grads(gy, x, y, x.array > y.array, x.array < y.array)


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


class Clamp(Function):
    """f = min(max(x, lo), hi) for numbers lo, hi (either may be None);  df/dx = [lo <= x <= hi] (0 at NaN)."""
    spec = OpSpec(ref=lambda np, x, min=None, max=None: np.clip(x, min, max), avoid=(-1.0, 1.0),
                  call=lambda x, **kw: clamp(x, **kw),
                  kwargs=lambda d, shapes: d.choice([{"min": -1.0, "max": 1.0}, {"min": None, "max": 1.0},
                                                     {"min": -1.0, "max": None}]))

    def forward(self, x):
        out = x
        if self.lo is not None:
            out = self.xp.maximum(out, self.lo)
        if self.hi is not None:
            out = self.xp.minimum(out, self.hi)
        return out

    def backward(self, gy):
        x = self.inputs[0].array
        inside = self.xp.ones(x.shape, dtype=bool)
        if self.lo is not None:
            inside &= x >= self.lo
        if self.hi is not None:
            inside &= x <= self.hi
        return _select(~inside, gy)


def _clamp_apart(np, a):
    """x, lo, hi on interleaved half-grids: no two within 0.125 of each other (kinks out of finite differences'
    reach), lo > hi drawn as often as lo < hi."""
    return [np.round(a[0] * 2) / 2, np.round(a[1] * 2) / 2 + 0.25, np.round(a[2] * 2) / 2 + 0.125]


class ClampTensor(Function):
    """f = min(max(x, lo), hi) with tensor bounds (``which``: "both", "min" or "max", the inputs present), PyTorch's
    gradients: df/dx = [lo <= x <= hi], df/dlo = [x < lo and lo < hi], df/dhi = [x > hi or hi < lo] (when
    lo > hi the result is hi, as PyTorch); NaN anywhere selects no side."""
    elementwise = True
    spec = OpSpec(ref=lambda np, x, lo, hi: np.minimum(np.maximum(x, lo), hi), nargs=3, prepare=_clamp_apart,
                  call=lambda x, lo, hi: clamp(x, lo, hi))

    def forward(self, x, *bounds):
        xp = self.xp
        if self.which == "both":
            lo, hi = bounds
            return xp.minimum(xp.maximum(x, lo), hi)
        if self.which == "min":
            return xp.maximum(x, bounds[0])
        return xp.minimum(x, bounds[0])

    def backward(self, gy):
        x, *bounds = self.inputs
        xa = x.array
        if self.which == "both":
            (lo, hi), (la, ha) = bounds, (bounds[0].array, bounds[1].array)
            gx = _select(~((xa >= la) & (xa <= ha)), gy) if x._rg else None
            glo = _select(~((xa < la) & (la < ha)), gy) if lo._rg else None
            ghi = _select(~((xa > ha) | (ha < la)), gy) if hi._rg else None
            return gx, glo, ghi
        b = bounds[0]
        ba = b.array
        if self.which == "min":
            return (_select(~(xa >= ba), gy) if x._rg else None), (_select(~(xa < ba), gy) if b._rg else None)
        return (_select(~(xa <= ba), gy) if x._rg else None), (_select(~(xa > ba), gy) if b._rg else None)


def _lerp_array(xp, x, end, w):
    """PyTorch's lerp: x + w (end − x) for |w| < 0.5, else end − (end − x)(1 − w) (exact at both ends)."""
    d = end - x
    return xp.where(xp.abs(w) < 0.5, x + w * d, end - d * (1 - w))


class Lerp(Function):
    """f = x + w (end − x);  df/dx = 1 − w, df/dend = w, df/dw = end − x."""
    elementwise = True
    spec = OpSpec(ref=lambda np, x, end, w: x + w * (end - x), nargs=3, call=lambda x, e, w: lerp(x, e, w))

    def forward(self, x, end, w):
        return _lerp_array(self.xp, x, end, w)

    def backward(self, gy):
        x, end, w = self.inputs
        gx = gy * (1.0 - w) if x._rg else None
        gend = gy * w if end._rg else None
        gw = gy * (end - x) if w._rg else None
        return gx, gend, gw


# --- public functions ---------------------------------------------------------------------------------------


def _scaled(y, alpha, op: str):
    """alpha·y for add/sub's ``alpha`` (other than 1)."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"{op}: alpha must be a number, got {alpha!r}")
    return mul(y, alpha) if isinstance(y, Tensor) else y * alpha


@public(Add, method=True, operators=('__add__',), roperators=('__radd__',))
def add(x, y, *, alpha=1) -> Tensor:
    """x + alpha·y."""
    if alpha != 1:
        y = _scaled(y, alpha, "add")
    return Add.apply(*pair(x, y))


@public(Sub, method=True, operators=('__sub__',), roperators=('__rsub__',), aliases=("subtract",))
def sub(x, y, *, alpha=1) -> Tensor:
    """x − alpha·y."""
    if alpha != 1:
        y = _scaled(y, alpha, "sub")
    return Sub.apply(*pair(x, y))


@public(Mul, method=True, operators=('__mul__',), roperators=('__rmul__',), aliases=("multiply",))
def mul(x, y) -> Tensor:
    return Mul.apply(*pair(x, y))


_ROUNDING_MODES = (None, "trunc", "floor")


def _integer_division(op: str, x: Tensor, y: Tensor) -> None:
    """PyTorch refuses two bool operands of the rounded divisions and raises on an integer division by zero
    (NumPy would give 0 with a warning)."""
    if _kind(x) in "fc":
        return
    if _kind(x) == "b" and _kind(y) == "b":
        raise TypeError(f"{op}: not defined for two bool tensors (shapes {x.shape}, {y.shape}), as in PyTorch")
    if bool((y.array == 0).any()):
        raise ZeroDivisionError(f"{op}: integer division by zero (divisor of shape {y.shape}, dtype {y.dtype})")


def _quotient_operands(op: str, x, y) -> tuple[Tensor, Tensor]:
    x, y = pair(x, y)
    if _kind(x) not in "fc" and _kind(y) in "fc":    # pair leaves a bool operand beside a float one
        x = _as_float(x, y.dtype)
    elif _kind(y) not in "fc" and _kind(x) in "fc":
        y = _as_float(y, x.dtype)
    _integer_division(op, x, y)
    return x, y


@public(Div, method=True, operators=('__truediv__',), roperators=('__rtruediv__',),
        aliases=("divide", "true_divide"))
def div(x, y, *, rounding_mode=None) -> Tensor:
    """x / y. ``rounding_mode``: None (true division: integer and bool tensors give the default float dtype, as
    PyTorch), ``"trunc"`` (rounded toward zero) or ``"floor"`` (rounded down, as ``//``); the rounded quotients of
    integers stay integers (division by zero raises) and have zero gradients."""
    if rounding_mode not in _ROUNDING_MODES:
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    if rounding_mode is not None:
        return RoundedDiv.apply(*_quotient_operands("div", x, y), mode=rounding_mode)
    x, y = pair(x, y)
    if _kind(x) not in "fc" or _kind(y) not in "fc":
        dt = get_default_dtype() if _kind(x) not in "fc" and _kind(y) not in "fc" else \
            (x.dtype if _kind(x) in "fc" else y.dtype)
        x = x if _kind(x) in "fc" else _as_float(x, dt)
        y = y if _kind(y) in "fc" else _as_float(y, dt)
    return Div.apply(x, y)


@public(RoundedDiv, method=True, operators=('__floordiv__',), roperators=('__rfloordiv__',))
def floor_divide(x, y) -> Tensor:
    """x // y: the quotient rounded down (Python's and PyTorch's ``//``), ``div(x, y, rounding_mode="floor")``.
    Zero gradient (PyTorch has no derivative for ``floor_divide`` and raises in backward; its ``div`` with a
    rounding mode gives zeros, as here)."""
    return RoundedDiv.apply(*_quotient_operands("floor_divide", x, y), mode="floor")


@public(Remainder, method=True, operators=('__mod__',), roperators=('__rmod__',))
def remainder(x, y) -> Tensor:
    """x % y, with the sign of the divisor (Python's and PyTorch's ``%``): x − y·floor(x/y)."""
    return Remainder.apply(*_quotient_operands("remainder", x, y))


@public(Fmod, method=True)
def fmod(x, y) -> Tensor:
    """C's fmod: x − y·trunc(x/y), with the sign of the dividend."""
    return Fmod.apply(*_quotient_operands("fmod", x, y))


@public(Neg, method=True, operators=('__neg__',), aliases=("negative",))
def neg(x) -> Tensor:
    return Neg.apply(x)


@public(method=True, operators=('__pow__',), roperators=('__rpow__',))
def pow(x, y) -> Tensor:
    """``x ** y``; a Python-number exponent uses the faster constant-power op. An integer or bool tensor with a
    float exponent gives the default float dtype, a bool tensor with an integer exponent int64 (PyTorch's
    dtypes)."""
    if isinstance(x, Tensor) and isinstance(y, (int, float)) and not isinstance(y, bool):
        if _kind(x) not in "fc" and (isinstance(y, float) or _kind(x) == "b"):
            x = _as_float(x, get_default_dtype()) if isinstance(y, float) else const(x.array.astype("int64"), x)
        return PowConst.apply(x, c=y)
    return Pow.apply(*pair(x, y))


@public(method=True, spec=OpSpec(ref=lambda np, x: x * x))
def square(x) -> Tensor:
    """x², as ``x ** 2`` (bool tensors give int64, as PyTorch)."""
    return pow(x, 2)


@public(Maximum, method=True)
def maximum(x, y) -> Tensor:
    return Maximum.apply(*pair(x, y))


@public(Minimum, method=True)
def minimum(x, y) -> Tensor:
    return Minimum.apply(*pair(x, y))


@public(Where)
def where(condition, input=None, other=None):
    """Elementwise ``input`` where ``condition`` else ``other`` (broadcasting); ``where(condition)`` alone is
    ``nonzero(condition, as_tuple=True)``, as in PyTorch."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    cond, x, y = condition, input, other
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


def _bound(v, x: Tensor, name: str):
    """A clamp bound: None, a Tensor, or a real number (Python's or NumPy's); arrays and lists become tensors."""
    if v is None or isinstance(v, Tensor):
        return v
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        return v
    if isinstance(v, (bool, str, bytes)) or not (hasattr(v, "__array__") or isinstance(v, (list, tuple))):
        raise TypeError(f"clamp: {name} must be a number, a Tensor or None, got {type(v).__name__}")
    return as_tensor(v, x)


@public(Clamp, method=True, aliases=("clip",))
def clamp(x, min=None, max=None) -> Tensor:
    """Limit values to ``[min, max]``: numbers or tensors (broadcast), either may be None; where min > max the
    result is max (PyTorch's rule). NaN stays NaN. Gradient: 1 where min <= x <= max (inclusive), and with
    tensor bounds to the bound that is active. An integer tensor with a float bound gives the default float
    dtype."""
    if not isinstance(x, Tensor):
        raise TypeError(f"clamp: expected a Tensor, got {type(x).__name__}")
    lo, hi = _bound(min, x, "min"), _bound(max, x, "max")
    if lo is None and hi is None:
        raise ValueError("clamp/clip: at least one of min and max must be given")
    if isinstance(lo, Tensor) or isinstance(hi, Tensor):
        lo = None if lo is None else as_tensor(lo, x)
        hi = None if hi is None else as_tensor(hi, x)
        if lo is not None:
            x, lo = pair(x, lo)
        if hi is not None:
            x, hi = pair(x, hi)
            if lo is not None:
                x, lo = pair(x, lo)
        if _kind(x) == "b":
            x = const(x.array.astype("int64"), x)
        which = "both" if lo is not None and hi is not None else "min" if lo is not None else "max"
        return ClampTensor.apply(x, *[b for b in (lo, hi) if b is not None], which=which)
    if _kind(x) not in "fc":
        if any(b is not None and not isinstance(b, numbers.Integral) for b in (lo, hi)):
            x = _as_float(x, get_default_dtype())
        elif _kind(x) == "b":
            x = const(x.array.astype("int64"), x)
    dt = x.array.dtype.type
    return Clamp.apply(x, lo=None if lo is None else dt(lo), hi=None if hi is None else dt(hi))


@public(method=True)
def clamp_min(x, min) -> Tensor:
    """``clamp(x, min=min)``."""
    return clamp(x, min=min)


@public(method=True)
def clamp_max(x, max) -> Tensor:
    """``clamp(x, max=max)``."""
    return clamp(x, max=max)


@public(Lerp, method=True)
def lerp(input, end, weight) -> Tensor:
    """input + weight·(end − input), PyTorch's formula (exact at weight 0 and 1); weight a number or a tensor,
    all broadcast. Differentiable in all three."""
    if not isinstance(input, Tensor):
        raise TypeError(f"lerp: expected a Tensor input, got {type(input).__name__}")
    for t in (input, end):
        if isinstance(t, Tensor) and _kind(t) not in "fc":
            raise TypeError(f"lerp: expected floating-point tensors, got dtype {t.dtype} (shape {t.shape})")
    input, end = pair(input, end)
    input, weight = pair(input, weight)
    if _kind(weight) not in "fc":
        weight = _as_float(weight, input.dtype)
    return Lerp.apply(input, end, weight)


# --- comparisons and bitwise/logical ops: results outside the graph ----------------------------------------


def _operands(op: str, a, b) -> tuple[Tensor, Tensor]:
    """(a, b) as tensors of one dtype by the arithmetic rules (``pair``: a Python scalar takes the tensor's
    dtype, an integer tensor meets a float one at the float dtype, as PyTorch compares)."""
    for v in (a, b):
        if v is None or isinstance(v, (str, bytes)):
            raise TypeError(f"{op}: expected a Tensor or a number, got {type(v).__name__}")
    a, b = pair(a, b)
    if a._backend is not b._backend:
        raise DeviceError(f"{op}: tensors on different devices ({a._backend.name}, {b._backend.name})")
    return a, b


def _compare(op: str, ufunc: str, a, b) -> Tensor:
    a, b = _operands(op, a, b)
    try:
        return const(getattr(a.xp, ufunc)(a.array, b.array), a)
    except ValueError as e:
        raise ValueError(f"{op}: {e} (shapes {a.shape} and {b.shape})") from e


@public(method=True, operators=("__lt__",), aliases=("less",))
def lt(input, other) -> Tensor:
    """input < other, elementwise (a bool tensor, no gradient)."""
    return _compare("lt", "less", input, other)


@public(method=True, operators=("__le__",), aliases=("less_equal",))
def le(input, other) -> Tensor:
    """input <= other, elementwise."""
    return _compare("le", "less_equal", input, other)


@public(method=True, operators=("__gt__",), aliases=("greater",))
def gt(input, other) -> Tensor:
    """input > other, elementwise."""
    return _compare("gt", "greater", input, other)


@public(method=True, operators=("__ge__",), aliases=("greater_equal",))
def ge(input, other) -> Tensor:
    """input >= other, elementwise."""
    return _compare("ge", "greater_equal", input, other)


@public(method=True)
def eq(input, other) -> Tensor:
    """input == other, elementwise (``==`` on tensors)."""
    return _compare("eq", "equal", input, other)


@public(method=True, aliases=("not_equal",))
def ne(input, other) -> Tensor:
    """input != other, elementwise (``!=`` on tensors)."""
    return _compare("ne", "not_equal", input, other)


def _comparable(other) -> bool:
    return other is not None and not isinstance(other, (str, bytes))


@public(operators=("__eq__",), export=False)
def tensor_eq(self, other):
    """``self == other``: :func:`eq`; with None or a string, NotImplemented, so that Python answers False
    (PyTorch's ``t == None``)."""
    return eq(self, other) if _comparable(other) else NotImplemented


@public(operators=("__ne__",), export=False)
def tensor_ne(self, other):
    """``self != other``: :func:`ne`; with None or a string, NotImplemented (Python answers True)."""
    return ne(self, other) if _comparable(other) else NotImplemented


@public(method=True)
def equal(input, other) -> bool:
    """True when both tensors have the same shape and equal values (a Python bool; NaN is never equal)."""
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError(f"equal: expected two Tensors, got {type(input).__name__} and {type(other).__name__}")
    if input.shape != other.shape:
        return False
    a, b = _operands("equal", input, other)
    return bool(a.xp.all(a.array == b.array))


def _close(op: str, input, other, rtol, atol, equal_nan):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(input).__name__}")
    if isinstance(other, Tensor) and other.dtype != input.dtype:
        raise TypeError(f"{op}: the tensors' dtypes differ ({input.dtype} and {other.dtype}), as PyTorch refuses; "
                        "cast one first")
    if rtol < 0 or atol < 0:
        raise ValueError(f"{op}: rtol and atol must be non-negative, got rtol={rtol}, atol={atol}")
    a, b = _operands(op, input, other)
    try:
        return a.xp.isclose(a.array, b.array, rtol=rtol, atol=atol, equal_nan=equal_nan), a
    except ValueError as e:
        raise ValueError(f"{op}: {e} (shapes {a.shape} and {b.shape})") from e


@public(method=True)
def isclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    """|input − other| <= atol + rtol·|other| elementwise (equal infinities close; NaNs close to each other only
    with ``equal_nan``); a bool tensor. Tensors of different dtypes raise, as in PyTorch."""
    close, like = _close("isclose", input, other, rtol, atol, equal_nan)
    return const(close, like)


@public(method=True)
def allclose(input, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """``isclose(...)`` everywhere (a Python bool)."""
    close, like = _close("allclose", input, other, rtol, atol, equal_nan)
    return bool(like.xp.all(close))


def _integers(op: str, *ts: Tensor) -> None:
    for t in ts:
        if _kind(t) not in "biu":
            raise TypeError(f"{op}: expected integer or bool tensors, got dtype {t.dtype} (shape {t.shape}); "
                            f"bitwise ops are not defined for floating point")


def _bitwise(op: str, ufunc: str, a, b) -> Tensor:
    if isinstance(a, float) or isinstance(b, float):
        raise TypeError(f"{op}: expected integer or bool operands, got a float")
    _integers(op, *_operands(op, a, b))
    return _compare(op, ufunc, a, b)


@public(method=True, operators=("__and__",), roperators=("__rand__",))
def bitwise_and(input, other) -> Tensor:
    """input & other (integer or bool tensors; for bool, logical and)."""
    return _bitwise("bitwise_and", "bitwise_and", input, other)


@public(method=True, operators=("__or__",), roperators=("__ror__",))
def bitwise_or(input, other) -> Tensor:
    """input | other (integer or bool tensors)."""
    return _bitwise("bitwise_or", "bitwise_or", input, other)


@public(method=True, operators=("__xor__",), roperators=("__rxor__",))
def bitwise_xor(input, other) -> Tensor:
    """input ^ other (integer or bool tensors)."""
    return _bitwise("bitwise_xor", "bitwise_xor", input, other)


@public(method=True, operators=("__invert__",))
def bitwise_not(input) -> Tensor:
    """~input: bitwise not of integers, logical not of bools."""
    if not isinstance(input, Tensor):
        raise TypeError(f"bitwise_not: expected a Tensor, got {type(input).__name__}")
    _integers("bitwise_not", input)
    return const(input.xp.invert(input.array), input)


@public(method=True)
def logical_and(input, other) -> Tensor:
    """Both nonzero (any dtype; a bool tensor)."""
    return _compare("logical_and", "logical_and", input, other)


@public(method=True)
def logical_or(input, other) -> Tensor:
    """Either nonzero."""
    return _compare("logical_or", "logical_or", input, other)


@public(method=True)
def logical_xor(input, other) -> Tensor:
    """Exactly one nonzero."""
    return _compare("logical_xor", "logical_xor", input, other)


@public(method=True)
def logical_not(input) -> Tensor:
    """Zero (any dtype; a bool tensor)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"logical_not: expected a Tensor, got {type(input).__name__}")
    return const(input.xp.logical_not(input.array), input)


@public(method=True)
def nonzero(input: Tensor, *, as_tuple: bool = False):
    """Indices of the nonzero elements: an (n, ndim) int64 tensor, or with ``as_tuple=True`` one 1-D index tensor
    per dim (usable as ``x[nonzero(m, as_tuple=True)]``). Not differentiable."""
    idx = input.xp.nonzero(input.array.reshape(1) if input.ndim == 0 else input.array)
    if as_tuple:
        return tuple(const(i.astype("int64", copy=False), input) for i in idx)
    return const(input.xp.stack(idx, axis=1).astype("int64", copy=False), input)


@public(method=True)
def argwhere(input: Tensor) -> Tensor:
    """``nonzero(input)``: the (n, ndim) indices of the nonzero elements."""
    return nonzero(input)
