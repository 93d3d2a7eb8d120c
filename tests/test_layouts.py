"""Memory layouts: reordering copies, and elementwise ops whose operands are stored in different orders.

Convolution results are stored batch-last ((C, H, W, N) in memory, seen as (N, C, H, W)); user data is usually
channel-major. Values must never depend on how an operand is stored, and ops on mixed operands get them stored
alike first (see ``Backend.relayout``).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import autograd as ag
import backends
from backends.base import Backend, inverse_order, memory_order


def _stored(a: np.ndarray, order) -> np.ndarray:
    """``a``'s values, stored in memory ``order``."""
    return np.ascontiguousarray(a.transpose(order)).transpose(inverse_order(order))


SHAPES = [(3, 5, 7, 9), (64, 8, 14, 14), (2, 300, 11), (4000, 33)]


@pytest.mark.parametrize("shape", SHAPES)
def test_memory_order_and_inverse(shape):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shape)
    for order in itertools.permutations(range(len(shape))):
        s = _stored(a, order)
        assert memory_order(s) == order
        assert tuple(np.argsort(order)) == inverse_order(order)


def test_memory_order_keeps_length_one_axes_in_place():
    a = np.zeros((5, 1, 3, 1))
    assert memory_order(a) == (0, 1, 2, 3)
    assert memory_order(a.transpose(2, 1, 0, 3)) == (2, 1, 0, 3)   # shape (3, 1, 5, 1), axis 2 outermost


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("impl", ["numpy", "base"])
def test_relayout_every_order_same_values(shape, impl):
    """The blocked NumPy copy and the plain one give the source's values in exactly the order asked for."""
    be = backends.get_backend("cpu")
    rng = np.random.default_rng(1)
    a = rng.standard_normal(shape).astype(np.float32)
    orders = list(itertools.permutations(range(len(shape))))
    for src_order in orders[:: max(1, len(orders) // 6)]:
        src = _stored(a, src_order)
        before = src.copy()
        for order in orders:
            out = be.relayout(src, order) if impl == "numpy" else Backend.relayout(be, src, order)
            assert memory_order(out) == order
            assert out.shape == src.shape and out.dtype == src.dtype
            np.testing.assert_array_equal(out, a)
            assert not np.shares_memory(out, src)
        np.testing.assert_array_equal(src, before)      # the source is never written


def test_relayout_views_and_zero_dims():
    be = backends.get_backend("cpu")
    a = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    v = a[:, ::2, 1:, ::-1]                 # a strided view with a negative stride
    out = be.relayout(v, (3, 2, 1, 0))
    np.testing.assert_array_equal(out, v)
    assert memory_order(out) == (3, 2, 1, 0)
    e = np.zeros((0, 3, 4))
    assert be.relayout(e, (2, 0, 1)).shape == (0, 3, 4)
    s = np.float32(3.0) * np.ones(())
    assert be.relayout(s, ()).shape == ()


# --- elementwise ops on operands stored in different orders ------------------------------------------------

BATCH_LAST = (1, 2, 3, 0)
BIG = (16, 8, 64, 64)         # 524,288 elements: at autograd.function.ALIGN_MIN, so the alignment runs


def _pair(seed=0, shape=BIG):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape).astype(np.float32)
    return a, b


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum", "pow", "where"])
@pytest.mark.parametrize("orders", [((0, 1, 2, 3), BATCH_LAST), (BATCH_LAST, (0, 1, 2, 3)), (BATCH_LAST, (2, 0, 3, 1))])
def test_mixed_orders_same_values_and_gradients(op, orders):
    """An op on a batch-last and a channel-major operand gives exactly the values and gradients of the same op
    on two channel-major ones; its result is stored like one of its operands; the inputs are left alone."""
    from autograd.function import ALIGN_MIN
    assert np.prod(BIG) >= ALIGN_MIN
    a, b = _pair()
    if op == "pow":
        a = np.abs(a) + 0.5
    fns = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
           "div": lambda x, y: x / y, "maximum": ag.maximum, "minimum": ag.minimum, "pow": lambda x, y: x ** y,
           "where": lambda x, y: ag.where(x > 0, x, y)}
    f = fns[op]
    xs, ys = _stored(a, orders[0]), _stored(b, orders[1])
    keep = xs.copy(), ys.copy()
    x, y = ag.from_numpy(xs).requires_grad_(), ag.from_numpy(ys).requires_grad_()
    assert memory_order(x.array) == orders[0] and memory_order(y.array) == orders[1]
    out = f(x, y)
    x0, y0 = ag.tensor(a, requires_grad=True), ag.tensor(b, requires_grad=True)
    ref = f(x0, y0)
    np.testing.assert_array_equal(out.array, ref.array)
    if op != "where":
        assert memory_order(out.array) in orders
    g = np.random.default_rng(3).standard_normal(BIG).astype(np.float32)
    out.backward(ag.tensor(g))
    ref.backward(ag.tensor(g))
    np.testing.assert_array_equal(x.grad.array, x0.grad.array)
    np.testing.assert_array_equal(y.grad.array, y0.grad.array)
    np.testing.assert_array_equal(xs, keep[0])
    np.testing.assert_array_equal(ys, keep[1])


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "sigmoid", "tanh", "silu"])
def test_activation_backward_with_a_gradient_stored_otherwise(act):
    """The usual case: a batch-last convolution result through an activation, and a channel-major gradient
    arriving from a reshape (e.g. Flatten) — the fused backward helpers get their operands stored alike."""
    import nn.functional as F
    a, g = _pair(1)
    f = {"relu": F.relu, "leaky_relu": lambda t: F.leaky_relu(t, 0.1), "sigmoid": F.sigmoid, "tanh": F.tanh,
         "silu": F.silu}[act]
    x = ag.from_numpy(_stored(a, BATCH_LAST)).requires_grad_()
    x0 = ag.tensor(a, requires_grad=True)
    f(x).backward(ag.tensor(g))
    f(x0).backward(ag.tensor(g))
    np.testing.assert_allclose(x.grad.array, x0.grad.array, rtol=1e-6, atol=1e-7)


def test_small_or_broadcast_operands_are_not_copied(monkeypatch):
    """Below ALIGN_MIN elements, and for broadcast operands, nothing is relaid out."""
    be = backends.get_backend("cpu")
    calls = []
    real = type(be).relayout

    def spy(self, a, order):
        calls.append(a.shape)
        return real(self, a, order)

    monkeypatch.setattr(type(be), "relayout", spy)
    a, b = _pair(2, (2, 3, 4, 5))
    _ = ag.from_numpy(_stored(a, BATCH_LAST)) + ag.tensor(b)
    big, _b = _pair(2)
    _ = ag.from_numpy(_stored(big, BATCH_LAST)) + ag.tensor(np.ones((1, 8, 1, 1), np.float32))
    assert calls == []
    _ = ag.from_numpy(_stored(big, BATCH_LAST)) + ag.tensor(_b)
    assert calls == [BIG]
