"""Elementwise ops against PyTorch: its semantics and dtypes (issue 23) and its values and gradients at NaN, ±inf,
zeros, kinks and ties (issue 22 part 5).

- ``test_special_points_*``: every elementwise op of autograd/ops/{unary,arithmetic,activation}.py at special
  points in float64, values and gradients (an upstream gradient of ones), then again with infinite and NaN
  upstream gradients for the ops that mask gradients.
- ``test_matches_torch``: each function, method and operator on int, bool and float inputs, values and dtypes.
- The error cases need no torch.

relu's gradient is PyTorch's threshold_backward, a select (x <= 0 ? 0 : g), in all three backends'
implementations (backends/fused.py, backends/cpu_kernels.py, backends/kernels.py): g at NaN, and 0 where x <= 0
even for an infinite or NaN upstream gradient (``test_relu_*`` below).
Knowingly kept differences from PyTorch:
- elu's gradient at NaN is 1 (PyTorch's formula and its scalar loop); PyTorch's vectorised CPU loop gives NaN
  for longer tensors, so the test compares element by element there.
Differences below the tests' tolerance: ``ag.softplus`` has no threshold (exact log1p(e^βx)/β, PyTorch returns
x for βx > 20: relative difference < 1e-9); zeros' signs (relu(−0.0) is +0.0 here, −0.0 in PyTorch).
PyTorch-only restrictions not copied: ``floor_divide`` differentiates (zero gradient, as PyTorch's ``div`` with
a rounding mode; PyTorch raises in backward), ``lerp`` and the logical ops accept Python numbers.
"""
from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

import autograd as ag
import nn.functional as F

NAN, INF = math.nan, math.inf


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _np(t):
    if isinstance(t, ag.Tensor):
        return t.numpy()
    return t.detach().cpu().numpy()


def _run(M, fn, arrays, upstream=None):
    """Value of ``fn(M, *tensors)`` and the gradient of each input (zeros where there is none)."""
    if M is ag:
        xs = [ag.tensor(a, requires_grad=True) for a in arrays]
    else:
        xs = [M.tensor(a, requires_grad=True) for a in arrays]
    y = fn(M, *xs)
    g = np.ones(y.shape) if upstream is None else np.broadcast_to(upstream, y.shape).copy()
    if y.requires_grad:
        y.backward(M.tensor(g))
    grads = [np.zeros(np.shape(a)) if x.grad is None else _np(x.grad) for x, a in zip(xs, arrays)]
    return _np(y), grads


def _assert_same(ours, theirs, what, rtol=1e-12):
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=0, equal_nan=True, err_msg=what)
    # infinities and NaNs in the same places, with the same signs (assert_allclose already checks inf == inf)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=f"{what}: NaN positions")


def _fn(M):
    """nn.functional of ``M``."""
    return F if M is ag else M.nn.functional


# --- special points, one input ------------------------------------------------------------------------------
POINTS = np.array([NAN, INF, -INF, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, 1.5, 3.0, -2.0, 0.1, 25.0,
                   1e-300, -1e-300])

UNARY = {
    "exp": lambda M, x: M.exp(x),
    "exp2": lambda M, x: M.exp2(x),
    "expm1": lambda M, x: M.expm1(x),
    "log": lambda M, x: M.log(x),
    "log2": lambda M, x: M.log2(x),
    "log10": lambda M, x: M.log10(x),
    "log1p": lambda M, x: M.log1p(x),
    "sqrt": lambda M, x: M.sqrt(x),
    "rsqrt": lambda M, x: M.rsqrt(x),
    "reciprocal": lambda M, x: M.reciprocal(x),
    "square": lambda M, x: M.square(x),
    "sin": lambda M, x: M.sin(x),
    "cos": lambda M, x: M.cos(x),
    "tanh": lambda M, x: M.tanh(x),
    "sigmoid": lambda M, x: M.sigmoid(x),
    "abs": lambda M, x: M.abs(x),
    "absolute": lambda M, x: M.absolute(x),
    "neg": lambda M, x: -x,
    "floor": lambda M, x: M.floor(x),
    "ceil": lambda M, x: M.ceil(x),
    "trunc": lambda M, x: M.trunc(x),
    "round": lambda M, x: M.round(x),
    "round_2": lambda M, x: M.round(x, decimals=2),
    "round_-1": lambda M, x: M.round(x, decimals=-1),
    "sign": lambda M, x: M.sign(x),
    "frac": lambda M, x: M.frac(x),
    "clamp": lambda M, x: M.clamp(x, -1.0, 1.0),
    "clamp_min": lambda M, x: M.clamp(x, min=0.5),
    "clamp_max": lambda M, x: x.clamp(max=-0.5),
    "clamp_inverted": lambda M, x: M.clamp(x, 1.0, -1.0),
    "clip": lambda M, x: x.clip(-0.5, 2.5),
    "leaky_relu": lambda M, x: _fn(M).leaky_relu(x, 0.01),
    "leaky_relu_-0.5": lambda M, x: _fn(M).leaky_relu(x, -0.5),
    "elu": lambda M, x: _fn(M).elu(x),
    "elu_0.5": lambda M, x: _fn(M).elu(x, 0.5),
    "silu": lambda M, x: _fn(M).silu(x),
    "softplus": lambda M, x: _fn(M).softplus(x),
    "softplus_2": lambda M, x: _fn(M).softplus(x, 2.0),
    "prelu": lambda M, x: _fn(M).prelu(x, M.tensor([0.25], dtype=M.float64)),
    "where": lambda M, x: M.where(x > 0, x, x * 2.0),
    "maximum_0": lambda M, x: M.maximum(x, M.tensor(0.0, dtype=M.float64)),
    "minimum_1": lambda M, x: M.minimum(x, M.tensor(1.0, dtype=M.float64)),
    **{f"pow_{c}": (lambda c: lambda M, x: x ** c)(c) for c in [0, 1, 2, 3, -1, -2, 0.5, -0.5, 1.5, -2.5, 2.0, 0.0]},
    "rpow": lambda M, x: 2.0 ** x,
    "lerp_scalar": lambda M, x: M.lerp(x, M.ones(x.shape, dtype=M.float64), 0.3),
}
# relu through the public function and the functional form; its gradient at NaN is tested on its own
RELU = {"relu": lambda M, x: M.relu(x), "F.relu": lambda M, x: _fn(M).relu(x)}
TOL = {"softplus": 1e-9, "softplus_2": 1e-9, "silu": 1e-14}
# PyTorch's CPU elu backward at NaN depends on the tensor's length: its scalar loop (short tensors, tails)
# follows the formula (x <= 0 ? α eˣ g : g, so 1), its vectorised loop gives NaN. We follow the formula, and
# compare with torch element by element (the scalar loop) for these.
ELEMENT_BY_ELEMENT = {"elu", "elu_0.5"}


def _torch_reference(torch, name, fn, points):
    if name not in ELEMENT_BY_ELEMENT:
        return _run(torch, fn, [points])
    runs = [_run(torch, fn, [points[k:k + 1]]) for k in range(len(points))]
    return np.concatenate([v for v, _ in runs]), [np.concatenate([g for _, (g,) in runs])]


@pytest.mark.parametrize("name", sorted(UNARY))
def test_special_points_unary(name, torch):
    fn = UNARY[name]
    v, (g,) = _run(ag, fn, [POINTS])
    tv, (tg,) = _torch_reference(torch, name, fn, POINTS)
    rtol = TOL.get(name, 1e-12)
    _assert_same(v, tv, f"{name} value", rtol)
    _assert_same(g, tg, f"{name} gradient", rtol)


@pytest.mark.parametrize("name", sorted(RELU))
def test_special_points_relu(name, torch):
    fn = RELU[name]
    finite = POINTS[~np.isnan(POINTS)]
    v, (g,) = _run(ag, fn, [finite])
    tv, (tg,) = _run(torch, fn, [finite])
    _assert_same(v, tv, f"{name} value")
    _assert_same(g, tg, f"{name} gradient")
    v, (g,) = _run(ag, fn, [np.array([NAN])])
    tv, (tg,) = _run(torch, fn, [np.array([NAN])])
    _assert_same(v, tv, f"{name} value at NaN")


def test_relu_gradient_at_nan_is_torch_s(torch):
    _, (g,) = _run(ag, RELU["relu"], [np.array([NAN])])
    _, (tg,) = _run(torch, RELU["relu"], [np.array([NAN])])
    _assert_same(g, tg, "relu gradient at NaN")


# --- special points, two and three inputs: every pair of points ------------------------------------------------
PAIR_POINTS = [NAN, INF, -INF, 0.0, -0.0, 1.0, -1.0, 2.0, 0.5, -3.0]
_PAIRS = list(itertools.product(PAIR_POINTS, PAIR_POINTS))
X2 = np.array([a for a, _ in _PAIRS])
Y2 = np.array([b for _, b in _PAIRS])

BINARY = {
    "add": lambda M, x, y: x + y,
    "add_alpha": lambda M, x, y: M.add(x, y, alpha=2.0),
    "sub": lambda M, x, y: x - y,
    "subtract_alpha": lambda M, x, y: M.subtract(x, y, alpha=-0.5),
    "mul": lambda M, x, y: x * y,
    "multiply": lambda M, x, y: M.multiply(x, y),
    "div": lambda M, x, y: x / y,
    "divide": lambda M, x, y: M.divide(x, y),
    "div_floor": lambda M, x, y: M.div(x, y, rounding_mode="floor"),
    "div_trunc": lambda M, x, y: M.div(x, y, rounding_mode="trunc"),
    "remainder": lambda M, x, y: x % y,
    "fmod": lambda M, x, y: M.fmod(x, y),
    "pow": lambda M, x, y: x ** y,
    "maximum": lambda M, x, y: M.maximum(x, y),
    "minimum": lambda M, x, y: M.minimum(x, y),
    "max_elementwise": lambda M, x, y: M.max(x, y),
    "where": lambda M, x, y: M.where(x > y, x, y),
    "clamp_min": lambda M, x, y: M.clamp(x, min=y),
    "clamp_max": lambda M, x, y: M.clamp(x, max=y),
    "clamp_min_max": lambda M, x, y: M.clamp(x, y, y + 1.0),
    "clamp_inverted": lambda M, x, y: M.clamp(x, y + 1.0, y),
    "clamp_min_method": lambda M, x, y: x.clamp_min(y),
    "lerp_0.3": lambda M, x, y: M.lerp(x, y, 0.3),
    "lerp_0.7": lambda M, x, y: x.lerp(y, 0.7),
    "lerp_weight": lambda M, x, y: M.lerp(x * 0.5 + 1.0, y, x),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_special_points_binary(name, torch):
    fn = BINARY[name]
    v, gs = _run(ag, fn, [X2, Y2])
    tv, tgs = _run(torch, fn, [X2, Y2])
    where = [f"{a} {b}" for a, b in _PAIRS]
    _assert_same(v, tv, f"{name} value at (x, y) = {where}")
    for k, (g, tg) in enumerate(zip(gs, tgs)):
        bad = ~((g == tg) | (np.isnan(g) & np.isnan(tg)) | np.isclose(g, tg, rtol=1e-12, atol=0))
        assert not bad.any(), f"{name} d/d{'xy'[k]} differs at {[where[i] for i in np.flatnonzero(bad)]}: " \
                              f"{g[bad]} vs torch {tg[bad]}"


def test_special_points_floor_divide_value(torch):
    """``//`` equals PyTorch's; its gradient is zero here (PyTorch's floor_divide has no derivative: its
    ``div(..., rounding_mode="floor")`` twin, compared in the table above, gives zeros)."""
    v, (gx, gy) = _run(ag, lambda M, x, y: x // y, [X2, Y2])
    tv = _np(torch.tensor(X2) // torch.tensor(Y2))
    _assert_same(v, tv, "floor_divide value")
    assert not gx.any() and not gy.any()


def test_special_points_clamp_tensor_bounds(torch):
    """clamp(x, lo, hi) with all three tensors over a grid that includes ties, lo > hi and NaNs."""
    pts = [NAN, -INF, -1.0, 0.0, 1.0, INF]
    grid = np.array(list(itertools.product(pts, pts, pts))).T
    v, gs = _run(ag, lambda M, x, lo, hi: M.clamp(x, lo, hi), list(grid))
    tv, tgs = _run(torch, lambda M, x, lo, hi: M.clamp(x, lo, hi), list(grid))
    _assert_same(v, tv, "clamp value")
    for name, g, tg in zip(["x", "min", "max"], gs, tgs):
        _assert_same(g, tg, f"clamp d/d{name}")


@pytest.mark.parametrize("weight", [0.25, 0.5, 0.75, -1.0, 2.0])
def test_lerp_matches_torch_formula(weight, torch):
    """PyTorch's two-sided formula (exact at weight 1), bit for bit with a number weight."""
    rng = np.random.default_rng(0)
    x, e = rng.standard_normal(50) * 10, rng.standard_normal(50) * 10
    v, gs = _run(ag, lambda M, a, b: M.lerp(a, b, weight), [x, e])
    tv, tgs = _run(torch, lambda M, a, b: M.lerp(a, b, weight), [x, e])
    np.testing.assert_array_equal(v, tv)
    for g, tg in zip(gs, tgs):
        np.testing.assert_allclose(g, tg, rtol=1e-15)
    w = rng.uniform(-1, 2, 50)
    v, gs = _run(ag, lambda M, a, b, c: M.lerp(a, b, c), [x, e, w])
    tv, tgs = _run(torch, lambda M, a, b, c: M.lerp(a, b, c), [x, e, w])
    np.testing.assert_allclose(v, tv, rtol=1e-15, atol=1e-14)     # PyTorch fuses the multiply-add here
    for g, tg in zip(gs, tgs):
        np.testing.assert_allclose(g, tg, rtol=1e-15)


# --- masked gradients under non-finite upstream gradients -------------------------------------------------------
UPSTREAM = np.array([INF, -INF, NAN, INF, 1.0, NAN])
X6 = np.array([-2.0, 3.0, -1.0, 0.0, 1.0, 0.5])
MASKED = {
    "clamp": lambda M, x: M.clamp(x, -1.0, 0.75),
    "clamp_tensor": lambda M, x: M.clamp(x, M.zeros(6, dtype=M.float64)),
    "maximum": lambda M, x: M.maximum(x, M.zeros(6, dtype=M.float64)),
    "minimum": lambda M, x: M.minimum(x, M.zeros(6, dtype=M.float64)),
    "where": lambda M, x: M.where(x > 0, x, 1.0),
    "floor": lambda M, x: M.floor(x),
    "round": lambda M, x: M.round(x),
    "sign": lambda M, x: M.sign(x),
    "pow_0": lambda M, x: x ** 0,
    "div_floor": lambda M, x: M.div(x, 2.0, rounding_mode="floor"),
    "abs": lambda M, x: M.abs(x),
    "leaky_relu": lambda M, x: _fn(M).leaky_relu(x, 0.1),
    "elu": lambda M, x: _fn(M).elu(x),
}


@pytest.mark.parametrize("name", sorted(MASKED))
def test_masked_gradients_under_infinite_upstream(name, torch):
    fn = MASKED[name]
    _, (g,) = _run(ag, fn, [X6], UPSTREAM)
    _, (tg,) = _run(torch, fn, [X6], UPSTREAM)
    _assert_same(g, tg, f"{name} gradient")


def test_relu_masked_gradient_under_infinite_upstream(torch):
    _, (g,) = _run(ag, RELU["relu"], [X6], UPSTREAM)
    _, (tg,) = _run(torch, RELU["relu"], [X6], UPSTREAM)
    _assert_same(g, tg, "relu gradient")


# --- functions, methods and operators on int, bool and float inputs: values and dtypes ----------------------
def _inputs(M):
    t = M.tensor
    return {
        "i": t([-7, -3, 0, 3, 7, 1]),
        "j": t([2, -2, 3, -3, 2, -1]),
        "n": t([0, 1, 2, 3, 4, 5]),
        "i32": t([-7, -3, 0, 3, 7, 1], dtype=M.int32),
        "u8": t([0, 1, 7, 128, 250, 255], dtype=M.uint8),
        "b": t([True, False, True, False, True, True]),
        "c": t([False, False, True, True, False, True]),
        "f": t([-7.5, -3.0, 0.5, 3.0, 7.25, -0.5]),
        "g": t([2.0, -2.5, 0.75, -3.0, 1.5, 4.0]),
        "s": t([NAN, INF, -INF, -0.0, 1.0, -2.5]),
        "h": t([2.5, 0.5, 1.5, -0.5, -2.5, 0.125]),
        "w": t([0.0, 0.25, 0.5, 0.75, 1.0, 2.0]),
        "d": t([-7.5, -3.0, 0.5, 3.0, 7.25, -0.5], dtype=M.float64),
    }


CASES = {
    # true division: integer and bool operands give the default float dtype
    "int / int scalar": lambda M, d: d["i"] / 2,
    "int / int": lambda M, d: d["i"] / d["j"],
    "int32 / int scalar": lambda M, d: d["i32"] / 2,
    "int / float scalar": lambda M, d: d["i"] / 2.5,
    "bool / bool": lambda M, d: d["b"] / d["c"],
    "bool / int scalar": lambda M, d: d["b"] / 2,
    "int scalar / int": lambda M, d: 7 / d["j"],
    "float / int": lambda M, d: d["f"] / d["i"],
    "int / float": lambda M, d: d["i"] / d["g"],
    "true_divide": lambda M, d: M.true_divide(d["i"], d["j"]),
    "divide": lambda M, d: M.divide(d["i"], 2),
    "div method": lambda M, d: d["i"].div(d["j"]),
    "div trunc int": lambda M, d: M.div(d["i"], d["j"], rounding_mode="trunc"),
    "div floor int": lambda M, d: M.div(d["i"], d["j"], rounding_mode="floor"),
    "div trunc float": lambda M, d: M.div(d["f"], d["g"], rounding_mode="trunc"),
    "div floor float": lambda M, d: d["f"].div(d["g"], rounding_mode="floor"),
    "div floor int/float scalar": lambda M, d: M.div(d["i"], 2.5, rounding_mode="floor"),
    # floor division and remainders (the divisor's sign)
    "int // int": lambda M, d: d["i"] // d["j"],
    "int // int scalar": lambda M, d: d["i"] // 2,
    "int // negative scalar": lambda M, d: d["i"] // -2,
    "int scalar // int": lambda M, d: 5 // d["j"],
    "float // float": lambda M, d: d["f"] // d["g"],
    "float // int scalar": lambda M, d: d["f"] // 2,
    "float scalar // float": lambda M, d: 7.5 // d["g"],
    "floor_divide": lambda M, d: M.floor_divide(d["i"], d["j"]),
    "floor_divide method": lambda M, d: d["f"].floor_divide(-2.0),
    "int % int": lambda M, d: d["i"] % d["j"],
    "int % negative scalar": lambda M, d: d["i"] % -2,
    "int scalar % int": lambda M, d: 5 % d["j"],
    "float scalar % int": lambda M, d: 7.5 % d["j"],
    "float % float": lambda M, d: d["f"] % d["g"],
    "float % negative scalar": lambda M, d: d["f"] % -2,
    "remainder": lambda M, d: M.remainder(d["i"], d["j"]),
    "remainder method": lambda M, d: d["f"].remainder(d["g"]),
    "bool // int": lambda M, d: d["b"] // d["j"],
    "fmod int": lambda M, d: M.fmod(d["i"], d["j"]),
    "fmod int scalar": lambda M, d: M.fmod(d["i"], -2),
    "fmod float": lambda M, d: M.fmod(d["f"], d["g"]),
    "fmod method": lambda M, d: d["f"].fmod(-2.0),
    "int32 // int64": lambda M, d: d["i32"] // d["j"],
    # other arithmetic on int and bool
    "bool + bool": lambda M, d: d["b"] + d["c"],
    "bool * bool": lambda M, d: d["b"] * d["c"],
    "int * True": lambda M, d: d["i"] * True,
    "add alpha int": lambda M, d: M.add(d["i"], d["j"], alpha=2),
    "add alpha float": lambda M, d: M.add(d["f"], d["g"], alpha=2),
    "add method": lambda M, d: d["f"].add(d["g"]),
    "sub alpha": lambda M, d: M.sub(d["i"], d["j"], alpha=2),
    "sub method": lambda M, d: d["f"].sub(1.5),
    "subtract": lambda M, d: M.subtract(d["f"], d["i"]),
    "mul method": lambda M, d: d["i"].mul(d["j"]),
    "multiply": lambda M, d: M.multiply(d["f"], 2),
    "neg": lambda M, d: M.neg(d["i"]),
    "negative": lambda M, d: M.negative(d["f"]),
    "neg method": lambda M, d: d["f"].neg(),
    "abs int": lambda M, d: M.abs(d["i"]),
    "absolute": lambda M, d: M.absolute(d["f"]),
    "abs method": lambda M, d: d["f"].abs(),
    "maximum int float": lambda M, d: M.maximum(d["i"], d["f"]),
    "maximum int bool": lambda M, d: M.maximum(d["i"], d["b"]),
    "minimum": lambda M, d: M.minimum(d["f"], d["g"]),
    "where int float scalar": lambda M, d: M.where(d["b"], d["i"], 0.5),
    "where int int scalar": lambda M, d: M.where(d["b"], d["i"], 2),
    "where float": lambda M, d: M.where(d["b"], d["f"], d["g"]),
    # powers
    "int ** 2": lambda M, d: d["i"] ** 2,
    "int ** 0.5": lambda M, d: d["i"] ** 0.5,
    "int pow 2.0": lambda M, d: d["i"].pow(2.0),
    "2 ** int": lambda M, d: 2 ** d["n"],
    "2.0 ** int": lambda M, d: 2.0 ** d["i"],
    "bool ** 2": lambda M, d: d["b"] ** 2,
    "float ** int": lambda M, d: d["f"] ** d["n"],
    "int ** float": lambda M, d: d["n"] ** d["g"],
    "float ** -0.5": lambda M, d: d["s"] ** -0.5,
    "pow function": lambda M, d: M.pow(d["f"], 3),
    "square int": lambda M, d: M.square(d["i"]),
    "square bool": lambda M, d: M.square(d["b"]),
    "square method": lambda M, d: d["f"].square(),
    # real-valued functions of integers: the default float dtype
    **{f"{op} int": (lambda op: lambda M, d: getattr(M, op)(d["n"]))(op)
       for op in ["sqrt", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "rsqrt", "reciprocal", "sin",
                  "cos", "tanh", "sigmoid"]},
    "reciprocal negative int": lambda M, d: M.reciprocal(d["i"]),
    "exp bool": lambda M, d: M.exp(d["b"]),
    **{f"{op} method": (lambda op: lambda M, d: getattr(d["h"], op)())(op)
       for op in ["exp2", "expm1", "log2", "log10", "log1p", "rsqrt", "reciprocal", "floor", "ceil", "round",
                  "trunc", "frac", "sign"]},
    # bitwise
    "int & int": lambda M, d: d["i"] & d["j"],
    "int | int scalar": lambda M, d: d["i"] | 3,
    "int ^ int": lambda M, d: d["i"] ^ d["j"],
    "~int": lambda M, d: ~d["i"],
    "~bool": lambda M, d: ~d["b"],
    "~uint8": lambda M, d: ~d["u8"],
    "bool & bool": lambda M, d: d["b"] & d["c"],
    "bool | bool": lambda M, d: d["b"] | d["c"],
    "bool ^ bool": lambda M, d: d["b"] ^ d["c"],
    "bool & int": lambda M, d: d["b"] & d["i"],
    "bool | True": lambda M, d: d["b"] | True,
    "bool & int scalar": lambda M, d: d["b"] & 1,
    "int32 & int scalar": lambda M, d: d["i32"] & 1,
    "uint8 & int scalar": lambda M, d: d["u8"] & 7,
    "int scalar & int": lambda M, d: 3 & d["i"],
    "int scalar | int": lambda M, d: 6 | d["i"],
    "True ^ bool": lambda M, d: True ^ d["b"],
    "bitwise_and": lambda M, d: M.bitwise_and(d["i"], d["j"]),
    "bitwise_or method": lambda M, d: d["i"].bitwise_or(d["j"]),
    "bitwise_xor": lambda M, d: M.bitwise_xor(d["b"], d["c"]),
    "bitwise_not": lambda M, d: M.bitwise_not(d["u8"]),
    "bitwise_not method": lambda M, d: d["i32"].bitwise_not(),
    # logical
    "logical_and": lambda M, d: M.logical_and(d["i"], d["f"]),
    "logical_or": lambda M, d: M.logical_or(d["n"], d["b"]),
    "logical_xor": lambda M, d: M.logical_xor(d["b"], d["i"]),
    "logical_not float": lambda M, d: M.logical_not(d["s"]),
    "logical_not method": lambda M, d: d["n"].logical_not(),
    "logical_and method": lambda M, d: d["b"].logical_and(d["c"]),
    # comparisons
    "int == scalar": lambda M, d: d["i"] == 3,
    "int != int": lambda M, d: d["i"] != d["j"],
    "int < int": lambda M, d: d["i"] < d["j"],
    "int <= scalar": lambda M, d: d["i"] <= 0,
    "float > scalar": lambda M, d: d["f"] > 0.5,
    "float >= float": lambda M, d: d["f"] >= d["g"],
    "scalar < int": lambda M, d: 0 < d["i"],
    "float == float scalar": lambda M, d: M.tensor([0.1, 0.2]) == 0.1,
    "int == float": lambda M, d: d["i"] == d["f"],
    "float < int": lambda M, d: d["f"] < d["i"],
    "bool == True": lambda M, d: d["b"] == True,  # noqa: E712
    "bool < int": lambda M, d: d["b"] < d["n"],
    "nan comparisons": lambda M, d: (d["s"] == d["s"]) | (d["s"] < 0),
    "nan !=": lambda M, d: d["s"] != d["s"],
    "eq": lambda M, d: M.eq(d["i"], 3),
    "eq method": lambda M, d: d["i"].eq(d["j"]),
    "ne": lambda M, d: M.ne(d["f"], d["g"]),
    "lt": lambda M, d: M.lt(d["i"], d["f"]),
    "le method": lambda M, d: d["f"].le(d["g"]),
    "gt": lambda M, d: M.gt(d["f"], 0),
    "ge method": lambda M, d: d["i"].ge(0),
    "greater": lambda M, d: M.greater(d["i"], 0),
    "less": lambda M, d: M.less(d["f"], d["g"]),
    "greater_equal": lambda M, d: M.greater_equal(d["i"], d["j"]),
    "less_equal method": lambda M, d: d["i"].less_equal(d["j"]),
    "not_equal": lambda M, d: M.not_equal(d["b"], d["c"]),
    "greater method": lambda M, d: d["f"].greater(d["g"]),
    # tests on values
    **{f"{op} {k}": (lambda op, k: lambda M, d: getattr(M, op)(d[k]))(op, k)
       for op in ["isnan", "isinf", "isfinite", "isposinf", "isneginf", "signbit"] for k in ["s", "i", "b"]},
    "signbit zero": lambda M, d: M.signbit(M.tensor([0.0, -0.0, -1e-320, 5.0])),
    "isnan method": lambda M, d: d["s"].isnan(),
    "isfinite method": lambda M, d: d["s"].isfinite(),
    "signbit method": lambda M, d: d["s"].signbit(),
    "isclose": lambda M, d: M.isclose(d["s"], M.tensor([NAN, INF, INF, 1e-9, 1.0 + 1e-6, -2.6])),
    "isclose equal_nan": lambda M, d: M.isclose(d["s"], M.tensor([NAN, INF, INF, 1e-9, 1.0 + 1e-6, -2.6]),
                                                equal_nan=True),
    "isclose tolerances": lambda M, d: M.isclose(d["f"], d["f"] + 0.01, rtol=0.0, atol=0.02),
    "isclose int": lambda M, d: M.isclose(d["i"], d["i"] + 1, rtol=0.5, atol=0),
    "isclose bool": lambda M, d: M.isclose(d["b"], d["c"]),
    "isclose method": lambda M, d: d["f"].isclose(d["g"], rtol=0.5),
    # rounding
    "floor int": lambda M, d: M.floor(d["i"]),
    "ceil float": lambda M, d: M.ceil(d["f"]),
    "round int": lambda M, d: M.round(d["i"]),
    "round half even": lambda M, d: M.round(d["h"]),
    "round special": lambda M, d: M.round(d["s"]),
    "round decimals": lambda M, d: M.round(M.tensor([0.125, 2.675, 1.005, 12345.6789, -0.375, 0.045]), decimals=2),
    "round decimals 1": lambda M, d: d["f"].round(decimals=1),
    "round negative decimals": lambda M, d: M.round(M.tensor([1234.5, 1250.0, 1350.0, -150.0, 49.0, 0.0]),
                                                    decimals=-2),
    "round decimals float64": lambda M, d: M.round(d["d"] / 3, decimals=3),
    "trunc int": lambda M, d: M.trunc(d["i"]),
    "trunc special": lambda M, d: M.trunc(d["s"]),
    "fix": lambda M, d: M.fix(d["f"]),
    "frac": lambda M, d: M.frac(d["f"]),
    "frac special": lambda M, d: M.frac(d["s"]),
    "sign int": lambda M, d: M.sign(d["i"]),
    "sign bool": lambda M, d: M.sign(d["b"]),
    "sign special": lambda M, d: M.sign(d["s"]),
    # clamp
    "clamp int": lambda M, d: M.clamp(d["i"], 0, 5),
    "clamp int float bound": lambda M, d: M.clamp(d["i"], 0.5),
    "clamp int float max": lambda M, d: M.clamp(d["i"], max=2.5),
    "clamp bool": lambda M, d: M.clamp(d["b"], 0, 1),
    "clamp int tensor bound": lambda M, d: M.clamp(d["i"], M.tensor(1.5)),
    "clamp float tensor and number": lambda M, d: M.clamp(d["f"], M.tensor(0.0), 1.0),
    "clamp float int tensor": lambda M, d: M.clamp(d["f"], min=d["i"]),
    "clamp tensors": lambda M, d: M.clamp(d["f"], d["g"], d["g"] + 1.0),
    "clamp max tensor": lambda M, d: M.clamp(d["f"], max=d["g"]),
    "clamp inverted": lambda M, d: M.clamp(d["f"], 3, 0),
    "clamp nan bound": lambda M, d: M.clamp(d["f"], min=NAN),
    "clamp special": lambda M, d: M.clamp(d["s"], -1, 1),
    "clamp broadcast": lambda M, d: M.clamp(d["f"].reshape(2, 3), M.tensor([[-1.0], [0.0]]), M.tensor([0.5, 1.0, 2.0])),
    "clip": lambda M, d: M.clip(d["f"], -1, 1),
    "clip method": lambda M, d: d["f"].clip(min=0),
    "clamp method": lambda M, d: d["i"].clamp(max=0),
    "clamp_min": lambda M, d: M.clamp_min(d["f"], 0.5),
    "clamp_max method": lambda M, d: d["f"].clamp_max(d["g"]),
    # lerp
    "lerp": lambda M, d: M.lerp(d["f"], d["g"], 0.3),
    "lerp high weight": lambda M, d: M.lerp(d["f"], d["g"], 0.7),
    "lerp tensor weight": lambda M, d: M.lerp(d["f"], d["g"], d["w"]),
    "lerp method": lambda M, d: d["f"].lerp(d["g"], 0.5),
    "lerp broadcast": lambda M, d: M.lerp(d["f"].reshape(2, 3), d["g"][:3], M.tensor([[0.25], [0.75]])),
}
# float results may differ from PyTorch's in the last bit (its vectorised exp, lerp's fused multiply-add)
FLOAT_RTOL = {"float32": 1e-6, "float64": 1e-14}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name, torch):
    ours = CASES[name](ag, _inputs(ag))
    theirs = CASES[name](torch, _inputs(torch))
    assert isinstance(ours, ag.Tensor), type(ours)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", ""), (ours.dtype, theirs.dtype)
    assert not ours.requires_grad
    a, b = ours.numpy(), _np(theirs)
    assert a.shape == b.shape
    if a.dtype.kind == "f":
        np.testing.assert_allclose(a, b, rtol=FLOAT_RTOL[str(a.dtype)], atol=0, equal_nan=True, err_msg=name)
    else:
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_int_tensor_over_two_is_float32(torch):
    """The issue's example: an int64 tensor / 2 is float32 (the default dtype), and follows set_default_dtype."""
    assert (ag.arange(5) / 2).dtype == np.float32 == _np(torch.arange(5) / 2).dtype
    ag.set_default_dtype("float64")
    try:
        assert (ag.arange(5) / 2).dtype == np.float64
        assert ag.exp(ag.arange(3)).dtype == np.float64
    finally:
        ag.set_default_dtype("float32")


BOOL_CASES = {
    "equal": lambda M, d: M.equal(d["i"], d["i"]),
    "equal int float": lambda M, d: M.equal(d["i"], d["i"] * 1.0),
    "equal shapes": lambda M, d: M.equal(d["i"], d["i"][:2]),
    "equal values": lambda M, d: M.equal(d["i"], d["j"]),
    "equal nan": lambda M, d: M.equal(d["s"], d["s"]),
    "equal method": lambda M, d: d["b"].equal(d["b"]),
    "allclose": lambda M, d: M.allclose(d["f"], d["f"] + 1e-9),
    "allclose far": lambda M, d: M.allclose(d["f"], d["g"]),
    "allclose nan": lambda M, d: M.allclose(d["s"], d["s"]),
    "allclose equal_nan": lambda M, d: M.allclose(d["s"], d["s"], equal_nan=True),
    "allclose method": lambda M, d: d["f"].allclose(d["f"] * 1.5, rtol=0.6),
    "== None": lambda M, d: d["f"] == None,  # noqa: E711
    "!= None": lambda M, d: d["f"] != None,  # noqa: E711
    "None == ": lambda M, d: None == d["f"],  # noqa: E711
}


@pytest.mark.parametrize("name", sorted(BOOL_CASES))
def test_python_bool_results_match_torch(name, torch):
    ours = BOOL_CASES[name](ag, _inputs(ag))
    theirs = BOOL_CASES[name](torch, _inputs(torch))
    assert type(ours) is bool and ours == theirs, (ours, theirs)


# --- gradients of the new differentiable ops at ordinary points, against torch ----------------------------------
GRADS = {
    "remainder": (lambda M, x, y: x % y, 2),
    "fmod": (lambda M, x, y: M.fmod(x, y), 2),
    "div_trunc": (lambda M, x, y: M.div(x, y, rounding_mode="trunc"), 2),
    "floor": (lambda M, x: M.floor(x), 1),
    "round_1": (lambda M, x: M.round(x, decimals=1), 1),
    "frac": (lambda M, x: M.frac(x), 1),
    "sign": (lambda M, x: M.sign(x), 1),
    "lerp": (lambda M, x, y, w: M.lerp(x, y, w), 3),
    "clamp": (lambda M, x, y, w: M.clamp(x, y, w), 3),
    "clamp_max": (lambda M, x, y: M.clamp(x, max=y), 2),
    "pow": (lambda M, x, y: M.abs(x) ** y, 2),
    "rsqrt": (lambda M, x: M.rsqrt(M.abs(x)), 1),
    "exp2": (lambda M, x: M.exp2(x), 1),
    "log10": (lambda M, x: M.log10(M.abs(x)), 1),
    "log1p": (lambda M, x: M.log1p(M.abs(x)), 1),
    "expm1": (lambda M, x: M.expm1(x), 1),
    "reciprocal": (lambda M, x: M.reciprocal(x), 1),
}


@pytest.mark.parametrize("name", sorted(GRADS))
def test_gradients_match_torch(name, torch):
    fn, n = GRADS[name]
    rng = np.random.default_rng(1)
    arrays = [rng.uniform(-4, 4, (3, 4)) for _ in range(n)]
    v, gs = _run(ag, fn, arrays)
    tv, tgs = _run(torch, fn, arrays)
    np.testing.assert_allclose(v, tv, rtol=1e-12, err_msg=name)
    for g, tg in zip(gs, tgs):
        np.testing.assert_allclose(g, tg, rtol=1e-12, atol=1e-300, err_msg=name)


def test_non_differentiable_results_stay_out_of_the_graph():
    x = ag.tensor([1.5, -2.0, 0.0], requires_grad=True)
    for out in [x > 0, x == x, ag.isnan(x), ag.signbit(x), ag.isclose(x, x), ag.logical_not(x),
                ag.logical_and(x, x), x.isfinite()]:
        assert out.dtype == np.bool_ and not out.requires_grad and out.creator is None
    for out in [ag.floor(x), ag.sign(x), x // 2, ag.round(x)]:     # PyTorch's zero gradients, recorded
        assert out.requires_grad
        out.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), 0.0)
        x.grad = None


# --- errors: no torch needed ----------------------------------------------------------------------------------
def _i():
    return ag.tensor([-7, -3, 0, 3])


def _f():
    return ag.tensor([1.5, -2.0, 0.0, 4.0])


ERRORS = {
    "float & int": (lambda: _f() & 1, TypeError, r"bitwise_and: expected integer or bool tensors, got dtype float32"),
    "int | float": (lambda: _i() | _f(), TypeError, r"bitwise_or: .*dtype float32 \(shape \(4,\)\)"),
    "int ^ float scalar": (lambda: _i() ^ 1.5, TypeError, r"bitwise_xor: expected integer or bool operands"),
    "float scalar & int": (lambda: 1.5 & _i(), TypeError, r"bitwise_and"),
    "~float": (lambda: ~_f(), TypeError, r"bitwise_not: expected integer or bool tensors, got dtype float32"),
    "bitwise_not float64": (lambda: ag.bitwise_not(_f().double()), TypeError, r"bitwise_not: .*float64"),
    "int // 0": (lambda: _i() // 0, ZeroDivisionError, r"floor_divide: integer division by zero"),
    "int % 0": (lambda: _i() % ag.tensor([1, 0, 1, 1]), ZeroDivisionError, r"remainder: integer division by zero"),
    "fmod int 0": (lambda: ag.fmod(_i(), 0), ZeroDivisionError, r"fmod: integer division by zero"),
    "div trunc int 0": (lambda: ag.div(_i(), 0, rounding_mode="trunc"), ZeroDivisionError, r"div: integer division"),
    "int scalar // int": (lambda: 5 // _i(), ZeroDivisionError, r"floor_divide: integer division by zero"),
    "rounding_mode": (lambda: ag.div(_f(), 2, rounding_mode="round"), ValueError,
                      r"div: rounding_mode must be None, 'trunc' or 'floor', got 'round'"),
    "bool // bool": (lambda: ag.tensor([True]) // ag.tensor([True]), TypeError, r"floor_divide: .*two bool"),
    "bool % bool": (lambda: ag.tensor([True]) % ag.tensor([True]), TypeError, r"remainder: .*two bool"),
    "frac int": (lambda: ag.frac(_i()), TypeError, r"frac: not defined for int64 tensors"),
    "round int decimals": (lambda: ag.round(_i(), decimals=1), TypeError, r"round: not defined for int64"),
    "round decimals float": (lambda: ag.round(_f(), decimals=1.5), TypeError, r"round: decimals must be an int"),
    "floor bool": (lambda: ag.floor(ag.tensor([True])), TypeError, r"floor: not defined for bool"),
    "abs bool": (lambda: ag.abs(ag.tensor([True])), TypeError, r"abs: not defined for bool"),
    "neg bool": (lambda: -ag.tensor([True]), TypeError, r"Neg: .*boolean"),
    "int ** negative": (lambda: _i() ** -1, ValueError, r"PowConst: Integers to negative integer powers"),
    "clamp no bounds": (lambda: ag.clamp(_f()), ValueError, r"clamp/clip: at least one of min and max"),
    "clip no bounds": (lambda: _f().clip(), ValueError, r"clip: at least one of min and max"),
    "clamp string": (lambda: ag.clamp(_f(), "0"), TypeError, r"clamp: min must be a number, a Tensor or None"),
    "clamp shapes": (lambda: ag.clamp(_f(), ag.zeros(3)), ValueError, r"ClampTensor: .*broadcast"),
    "lerp int": (lambda: ag.lerp(_i(), _i(), 0.5), TypeError,
                 r"lerp: expected floating-point tensors, got dtype int64 \(shape \(4,\)\)"),
    "isclose dtypes": (lambda: ag.isclose(_i(), _f()), TypeError,
                       r"isclose: the tensors' dtypes differ \(int64 and float32\)"),
    "allclose rtol": (lambda: ag.allclose(_f(), _f(), rtol=-1), ValueError,
                      r"allclose: rtol and atol must be non-negative"),
    "equal scalar": (lambda: ag.equal(_f(), 1.0), TypeError, r"equal: expected two Tensors, got Tensor and float"),
    "eq None": (lambda: ag.eq(_f(), None), TypeError, r"eq: expected a Tensor or a number, got NoneType"),
    "lt None": (lambda: _f() < None, TypeError, r"lt: expected a Tensor or a number, got NoneType"),
    "compare shapes": (lambda: _f() < ag.ones(3), ValueError, r"lt: .*shapes \(4,\) and \(3,\)"),
    "logical shapes": (lambda: ag.logical_and(_f(), ag.ones(3)), ValueError,
                       r"logical_and: .*shapes \(4,\) and \(3,\)"),
    "add alpha": (lambda: ag.add(_f(), _f(), alpha="2"), TypeError, r"add: alpha must be a number"),
    "exp of a list": (lambda: ag.exp([1.0]), TypeError, r"exp: expected a Tensor, got list"),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_errors_name_the_op(name):
    fn, exc, match = ERRORS[name]
    with pytest.raises(exc, match=match):
        fn()


def test_equality_with_none_is_a_python_bool():
    """PyTorch's ``t == None`` is False (not an error, not a tensor); ``in`` on a list still works by identity."""
    t = _f()
    assert (t == None) is False and (t != None) is True  # noqa: E711
    assert t in [None, t]


def test_new_float_unary_ops_keep_float32():
    x = ag.tensor([0.5, 1.0, 2.0], requires_grad=True)
    for name in ["exp2", "expm1", "log2", "log10", "log1p", "rsqrt", "reciprocal", "square", "frac", "floor",
                 "round", "sign", "trunc", "ceil"]:
        y = getattr(ag, name)(x)
        assert y.dtype == np.float32, name
        y.sum().backward()
        assert x.grad.dtype == np.float32, name
        x.grad = None
