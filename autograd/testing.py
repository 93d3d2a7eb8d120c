"""The gradient-check kit: property-test any op, yours or the library's, the way xpgrad tests its own.

    import autograd as ag
    from autograd.testing import check_function

    class Cube(ag.Function):
        \"\"\"f = x³;  df/dx = 3x².\"\"\"
        def forward(self, x):
            return x ** 3
        def backward(self, gy):
            x, = self.inputs
            return gy * 3 * x * x
        spec = ag.OpSpec(ref=lambda np, x: x ** 3)

    check_function(Cube)          # forward vs reference, dtypes, no mutation, gradcheck, gradgradcheck, backends

The hypothesis strategies below (:func:`shapes`, :func:`broadcastable_shapes`, :func:`arrays`, :func:`axes`,
:func:`dtypes`, :func:`devices`, :func:`samples`) are what the project's generated op tests draw from, and
the ``check_*`` functions are the checks they run on each draw: one source of truth for both.
Needs ``hypothesis`` (the ``test`` extra).
"""
from __future__ import annotations

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as exc:  # pragma: no cover - exercised only without the test extra
    raise ImportError("autograd.testing needs hypothesis: pip install 'xpgrad[test]' (or hypothesis)") from exc

from dataclasses import replace

import backends

from .factories import tensor
from .function import Function
from .gradcheck import gradcheck, gradgradcheck
from .engine import backward
from .spec import OpSpec

np = backends.host     # host NumPy: references and drawn values live on the host

__all__ = ["Drawer", "shapes", "broadcastable_shapes", "arrays", "axes", "dtypes", "devices", "samples",
           "check_forward", "check_gradients", "check_second_order", "check_cross_backend", "check_function",
           "FLOAT_TOL"]

# float32 results of the same op on two backends (different reduction orders, BLAS) agree to this
FLOAT_TOL = {"float64": dict(rtol=1e-9, atol=1e-11), "float32": dict(rtol=1e-4, atol=1e-5)}


# --- strategies ----------------------------------------------------------------------------------------------
def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 0, max_side: int = 4):
    """Array shapes, 0-d, size-1 and empty ones included by default."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcastable_shapes(n: int, max_dims: int = 3, min_side: int = 0, max_side: int = 4):
    """Lists of ``n`` mutually broadcastable shapes."""
    return hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=max_dims, min_side=min_side,
                                             max_side=max_side).map(lambda r: list(r.input_shapes))


def _keep_away(x, lo: float, hi: float, avoid, margin: float):
    """Move values within ``margin`` of a point in ``avoid`` to 2·margin from it, staying in [lo, hi]."""
    for p in avoid:
        near = np.abs(x - p) < margin
        if near.any():
            up = np.where(p + 2 * margin <= hi, p + 2 * margin, p - 2 * margin)
            x = np.where(near, np.where(x >= p, up, np.where(p - 2 * margin >= lo, p - 2 * margin, up)), x)
    return x


def arrays(shape, lo: float = -3.0, hi: float = 3.0, avoid=(), margin: float = 0.1, dtype="float64"):
    """Arrays of ``shape`` with finite values in [lo, hi], at least ``margin`` from each point of ``avoid``
    (kinks and poles, where finite differences lie)."""
    elements = st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=64)
    return hnp.arrays(np.float64, shape, elements=elements).map(
        lambda x: _keep_away(x, lo, hi, avoid, margin).astype(dtype))


def axes(ndim: int):
    """None, one axis (possibly negative) or a sorted tuple of distinct axes of an ``ndim``-d array."""
    if ndim == 0:
        return st.none()
    return st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                     st.sets(st.integers(0, ndim - 1), min_size=1, max_size=ndim).map(lambda s: tuple(sorted(s))))


def dtypes():
    """The floating dtypes every op must keep: float32 and float64."""
    return st.sampled_from(["float32", "float64"])


def available_devices() -> list[str]:
    return ["cpu"] + (["cuda"] if backends.cuda_available() else [])


def devices():
    """The devices present here: ``"cpu"``, and ``"cuda"`` when CuPy sees a GPU."""
    return st.sampled_from(available_devices())


class Drawer:
    """What a spec's callables receive: hypothesis's ``draw`` behind a small vocabulary, so op modules never
    import hypothesis (see :class:`~autograd.spec.OpSpec`)."""

    def __init__(self, draw):
        self._draw = draw

    def int(self, lo: int, hi: int) -> int:
        return self._draw(st.integers(lo, hi))

    def bool(self) -> bool:
        return self._draw(st.booleans())

    def choice(self, seq):
        return self._draw(st.sampled_from(list(seq)))

    def floats(self, lo: float, hi: float) -> float:
        return self._draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))

    def permutation(self, seq) -> list:
        return self._draw(st.permutations(list(seq)))

    def shape(self, min_dims: int = 0, max_dims: int = 3, min_side: int = 0, max_side: int = 4) -> tuple:
        return self._draw(shapes(min_dims, max_dims, min_side, max_side))

    def shapes_broadcast(self, n: int, max_dims: int = 3, min_side: int = 0) -> list:
        return self._draw(broadcastable_shapes(n, max_dims, min_side))

    def axis(self, ndim: int):
        return self._draw(axes(ndim))

    def index_array(self, n: int, k: int):
        return np.asarray(self._draw(st.lists(st.integers(-n, n - 1), min_size=k, max_size=k)), dtype=np.int64)

    def bool_array(self, shape):
        return self._draw(hnp.arrays(np.bool_, shape))

    def array(self, shape, lo: float = -3.0, hi: float = 3.0, avoid=(), margin: float = 0.1):
        return self._draw(arrays(shape, lo, hi, avoid, margin))


_SHAPE_RULES = {
    "same": lambda d, s: [d.shape(max_dims=s.max_dims)] * s.nargs,
    "nonempty": lambda d, s: [d.shape(max_dims=s.max_dims, min_side=1)] * s.nargs,
    "min1dim": lambda d, s: [d.shape(min_dims=1, max_dims=s.max_dims, min_side=1)] * s.nargs,
    "min2": lambda d, s: [d.shape(min_dims=1, max_dims=s.max_dims, min_side=2, max_side=4)] * s.nargs,
    "broadcast": lambda d, s: d.shapes_broadcast(s.nargs, s.max_dims),
}


def _per_input(value, n):
    return value if isinstance(value, list) else [value] * n


def samples(spec: OpSpec):
    """Draws ``(arrays, kwargs)`` for one op: float64 host arrays inside the spec's domains, and its keywords."""

    @st.composite
    def strat(draw):
        d = Drawer(draw)
        if spec.sample is not None:
            arrs, kwargs = spec.sample(d)
        else:
            if callable(spec.shapes):
                shp = spec.shapes(d)
            elif spec.shapes in _SHAPE_RULES:
                shp = _SHAPE_RULES[spec.shapes](d, spec)
            else:
                raise ValueError(f"{spec.name or 'OpSpec'}: unknown shape rule {spec.shapes!r}")
            bounds, avoids = _per_input(spec.domain, len(shp)), _per_input(spec.avoid, len(shp))
            arrs = [d.array(s, lo, hi, av, spec.margin) for s, (lo, hi), av in zip(shp, bounds, avoids)]
            kwargs = spec.kwargs(d, shp) if spec.kwargs else {}
        if spec.prepare is not None:
            arrs = list(spec.prepare(np, arrs))
        return arrs, kwargs

    return strat()


# --- checks on one draw --------------------------------------------------------------------------------------
def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _tensors(spec, arrs, device, dtype="float64", requires_grad=True):
    grad_inputs = spec.grad_inputs if spec.grad_inputs is not None else range(len(arrs))
    return [tensor(a.astype(dtype), device=device, requires_grad=requires_grad and i in grad_inputs)
            for i, a in enumerate(arrs)]


def _skip_reason(spec, device: str):
    return spec.skip.get("cuda" if device.startswith("cuda") else "cpu")


def check_forward(spec: OpSpec, arrs, kwargs, device: str = "cpu") -> None:
    """Forward equals the NumPy reference (float64 tightly, float32 loosely); float32 stays float32 forward
    and backward; neither the inputs nor the upstream gradients are mutated."""
    name = spec.name
    expected = _as_list(spec.ref(np, *arrs, **kwargs))
    originals = [a.copy() for a in arrs]
    outs = _as_list(spec.call(*_tensors(spec, arrs, device), **kwargs))
    assert len(outs) == len(expected), f"{name}: {len(outs)} outputs, reference has {len(expected)}"
    for o, e in zip(outs, expected):
        assert o.shape == np.shape(e), f"{name}: shape {o.shape} vs reference {np.shape(e)}"
        np.testing.assert_allclose(o.numpy(), e, rtol=1e-6, atol=1e-9, err_msg=name)

    xs32 = _tensors(spec, arrs, device, "float32")
    outs32 = _as_list(spec.call(*xs32, **kwargs))
    for o, e in zip(outs32, expected):
        np.testing.assert_allclose(o.numpy(), e, rtol=2e-3, atol=2e-3, err_msg=f"{name} (float32)")
        if spec.check_dtype:
            assert o.dtype == np.float32, f"{name}: float32 inputs gave {o.dtype}"
    live = [o for o in outs32 if o.requires_grad and o.numel()]
    if live:
        gys = [np.ones(o.shape, np.float32) for o in live]
        backward(live, [tensor(g, device=device) for g in gys])
        for g in gys:
            np.testing.assert_array_equal(g, np.ones_like(g), err_msg=f"{name} mutated its upstream gradient")
        for x in xs32:
            if x.requires_grad and x.grad is not None:
                assert x.grad.shape == x.shape, f"{name}: gradient shape {x.grad.shape} for input {x.shape}"
                if spec.check_dtype:
                    assert x.grad.dtype == np.float32, f"{name}: gradient dtype {x.grad.dtype}"
    for a, before in zip(arrs, originals):
        np.testing.assert_array_equal(a, before, err_msg=f"{name} mutated its input")
    for x, before in zip(xs32, originals):
        np.testing.assert_array_equal(x.numpy(), before.astype(np.float32), err_msg=f"{name} mutated its input")


def check_gradients(spec: OpSpec, arrs, kwargs, device: str = "cpu") -> None:
    """First derivatives against central finite differences in float64."""
    xs = _tensors(spec, arrs, device)
    if any(x.requires_grad for x in xs):
        assert gradcheck(lambda *a: spec.call(*a, **kwargs), xs, rtol=spec.rtol, atol=spec.atol, eps=spec.eps)


def check_second_order(spec: OpSpec, arrs, kwargs, device: str = "cpu") -> None:
    """Second derivatives (the backward differentiated again) against finite differences."""
    xs = _tensors(spec, arrs, device)
    if spec.second_order and any(x.requires_grad for x in xs):
        assert gradgradcheck(lambda *a: spec.call(*a, **kwargs), xs, rtol=spec.rtol, atol=spec.atol, eps=spec.eps)


def _run(spec, arrs, kwargs, device, dtype):
    xs = _tensors(spec, arrs, device, dtype)
    outs = _as_list(spec.call(*xs, **kwargs))
    live = [o for o in outs if o.requires_grad]
    if live:
        backward(live, [tensor(np.full(o.shape, 0.5, dtype), device=device) for o in live])
    return [o.numpy() for o in outs], [x.grad.numpy() if x.grad is not None else None for x in xs]


def check_cross_backend(spec: OpSpec, arrs, kwargs, device: str = "cuda", dtype: str = "float64") -> None:
    """Values and gradients on ``device`` equal the CPU's on the same inputs (within :data:`FLOAT_TOL`)."""
    cpu_out, cpu_grads = _run(spec, arrs, kwargs, "cpu", dtype)
    dev_out, dev_grads = _run(spec, arrs, kwargs, device, dtype)
    for a, b in zip(cpu_out + cpu_grads, dev_out + dev_grads):
        assert (a is None) == (b is None), f"{spec.name}: a gradient exists on one backend only"
        if a is not None:
            np.testing.assert_allclose(b, a, **FLOAT_TOL[dtype], err_msg=f"{spec.name} on {device} vs cpu")


def check_function(op, spec: OpSpec | None = None, devices=None, max_examples: int = 25) -> None:
    """Property-test one op on hypothesis-drawn inputs: every ``check_*`` above, on every device present.

    Args:
        op: a :class:`Function` subclass (its ``spec`` is used) or any callable of Tensors with ``spec`` given.
        spec: the op's :class:`OpSpec` (default: ``op.spec``).
        devices: devices to test on (default: cpu, and cuda when present; cross-backend checks run on cuda).
        max_examples: hypothesis examples per check.

    Raises:
        AssertionError or :class:`~autograd.GradcheckError` with hypothesis's smallest failing example.
    """
    spec = spec if spec is not None else getattr(op, "spec", None)
    if not isinstance(spec, OpSpec):
        raise TypeError(f"check_function: {getattr(op, '__name__', op)!r} has no OpSpec; pass spec=OpSpec(ref=...)")
    if spec.call is None:
        if not (isinstance(op, type) and issubclass(op, Function)) and not callable(op):
            raise TypeError(f"check_function: expected a Function subclass or a callable, got {type(op).__name__}")
    # a copy: the caller's spec (perhaps shared by several ops) is never written to
    spec = replace(spec, call=spec.call or (op.apply if isinstance(op, type) and issubclass(op, Function) else op),
                   name=spec.name or getattr(op, "__name__", "op"))
    devs = list(devices) if devices is not None else available_devices()

    @settings(max_examples=max_examples, deadline=None, database=None)
    @given(data=st.data())
    def run(data):
        arrs, kwargs = data.draw(samples(spec), label="sample")
        for dev in devs:
            if _skip_reason(spec, dev):
                continue
            check_forward(spec, arrs, kwargs, dev)
            check_gradients(spec, arrs, kwargs, dev)
            check_second_order(spec, arrs, kwargs, dev)
            if dev != "cpu":
                for dtype in ("float64", "float32"):
                    check_cross_backend(spec, arrs, kwargs, dev, dtype)

    run()
