"""Every optimizer against its textbook update, on hypothesis-drawn quadratic bowls.

The loss is the bowl L(p) = ½ Σ a (p − c)² with drawn curvatures a > 0, centre c, start p₀ and
hyper-parameters; its gradient a (p − c) comes from ``backward()``. A few steps of the optimizer must equal
the closed-form recurrences below (written from the update rules, independent of the implementation),
so every piece of state (momentum buffers, accumulators, step counts, bias corrections) is exercised on
drawn values. float64 throughout: the comparison is to 1e-10 relative.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import autograd as ag
import nn

unit = st.floats(0.0, 0.99)
positive = st.floats(1e-4, 0.5)
eps = st.sampled_from([1e-8, 1e-6, 1e-3])
decay = st.sampled_from([0.0, 0.0, 1e-3, 0.1])


@st.composite
def bowls(draw):
    n = draw(st.integers(1, 6))
    vec = st.lists(st.floats(-3, 3), min_size=n, max_size=n).map(np.array)
    a = draw(st.lists(st.floats(0.1, 4.0), min_size=n, max_size=n).map(np.array))
    return a, draw(vec), draw(vec), draw(st.integers(1, 5))


def _grad(a, c, p):
    return a * (p - c)


def run_optimizer(make, a, c, p0, steps):
    """Parameters after ``steps`` steps of the project's optimizer on the bowl."""
    p = nn.Parameter(ag.tensor(p0, dtype="float64"))
    opt = make([p])
    at, ct = ag.tensor(a, dtype="float64"), ag.tensor(c, dtype="float64")
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (at * (p - ct) ** 2).sum()).backward()
        opt.step()
    return p.numpy()


def sgd_ref(a, c, p, steps, lr, momentum, dampening, weight_decay, nesterov):
    buf = None
    for _ in range(steps):
        g = _grad(a, c, p) + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def adagrad_ref(a, c, p, steps, lr, lr_decay, weight_decay, initial_accumulator_value, eps):
    acc = np.full_like(p, initial_accumulator_value)
    for t in range(1, steps + 1):
        g = _grad(a, c, p) + weight_decay * p
        acc = acc + g * g
        p = p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(acc) + eps)
    return p


def rmsprop_ref(a, c, p, steps, lr, alpha, eps, weight_decay, momentum, centered):
    sq, mean_g, buf = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for _ in range(steps):
        g = _grad(a, c, p) + weight_decay * p
        sq = alpha * sq + (1 - alpha) * g * g
        if centered:
            mean_g = alpha * mean_g + (1 - alpha) * g
            denom = np.sqrt(sq - mean_g ** 2) + eps
        else:
            denom = np.sqrt(sq) + eps
        if momentum:
            buf = momentum * buf + g / denom
            p = p - lr * buf
        else:
            p = p - lr * g / denom
    return p


def adadelta_ref(a, c, p, steps, lr, rho, eps, weight_decay):
    sq, acc_delta = np.zeros_like(p), np.zeros_like(p)
    for _ in range(steps):
        g = _grad(a, c, p) + weight_decay * p
        sq = rho * sq + (1 - rho) * g * g
        delta = np.sqrt(acc_delta + eps) / np.sqrt(sq + eps) * g
        acc_delta = rho * acc_delta + (1 - rho) * delta * delta
        p = p - lr * delta
    return p


def adam_ref(a, c, p, steps, lr, betas, eps, weight_decay, amsgrad, decoupled):
    b1, b2 = betas
    m, v, vmax = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t in range(1, steps + 1):
        g = _grad(a, c, p)
        if decoupled:
            p = p * (1 - lr * weight_decay)          # AdamW: decay the weights, not the gradient
        else:
            g = g + weight_decay * p                 # Adam: L2 penalty in the gradient
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        m_hat = m / (1 - b1 ** t)
        v_hat = (vmax if amsgrad else v) / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def _check(make, ref, bowl, hp):
    a, c, p0, steps = bowl
    got = run_optimizer(lambda ps: make(ps, **hp), a, c, p0, steps)
    want = ref(a, c, p0.copy(), steps, **hp)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=f"{make.__name__} {hp}")


@given(bowl=bowls(), lr=positive, momentum=unit, dampening=unit, weight_decay=decay, nesterov=st.booleans())
def test_sgd_momentum_nesterov(bowl, lr, momentum, dampening, weight_decay, nesterov):
    if nesterov:
        dampening = 0.0
        momentum = max(momentum, 0.1)
    _check(nn.optim.SGD, sgd_ref, bowl, dict(lr=lr, momentum=momentum, dampening=dampening,
                                              weight_decay=weight_decay, nesterov=nesterov))


@given(bowl=bowls(), lr=positive, lr_decay=st.sampled_from([0.0, 0.01, 0.5]), weight_decay=decay,
       init=st.sampled_from([0.0, 0.1, 1.0]), eps=st.sampled_from([1e-10, 1e-6]))
def test_adagrad(bowl, lr, lr_decay, weight_decay, init, eps):
    _check(nn.optim.Adagrad, adagrad_ref, bowl, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                                     initial_accumulator_value=init, eps=eps))


@given(bowl=bowls(), lr=positive, alpha=st.floats(0.5, 0.999), eps=eps, weight_decay=decay, momentum=unit,
       centered=st.booleans())
def test_rmsprop(bowl, lr, alpha, eps, weight_decay, momentum, centered):
    _check(nn.optim.RMSprop, rmsprop_ref, bowl, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                                     momentum=momentum, centered=centered))


@given(bowl=bowls(), lr=st.floats(0.1, 2.0), rho=st.floats(0.5, 0.99), eps=eps, weight_decay=decay)
def test_adadelta(bowl, lr, rho, eps, weight_decay):
    _check(nn.optim.Adadelta, adadelta_ref, bowl, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay))


@pytest.mark.parametrize("decoupled", [False, True], ids=["Adam", "AdamW"])
@given(bowl=bowls(), lr=positive, b1=unit, b2=st.floats(0.5, 0.9999), eps=eps, weight_decay=decay,
       amsgrad=st.booleans())
def test_adam_adamw(decoupled, bowl, lr, b1, b2, eps, weight_decay, amsgrad):
    make = nn.optim.AdamW if decoupled else nn.optim.Adam
    a, c, p0, steps = bowl
    hp = dict(lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
    got = run_optimizer(lambda ps: make(ps, **hp), a, c, p0, steps)
    want = adam_ref(a, c, p0.copy(), steps, decoupled=decoupled, **hp)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=f"{make.__name__} {hp}")


def test_reference_catches_a_wrong_rule():
    """The references are not vacuous: Adam without bias correction differs from them."""
    a, c, p0 = np.array([1.0, 2.0]), np.array([0.5, -1.0]), np.array([0.0, 0.0])
    got = run_optimizer(lambda ps: nn.optim.Adam(ps, lr=0.1), a, c, p0, 1)
    right = adam_ref(a, c, p0.copy(), 1, lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                     decoupled=False)
    g = _grad(a, c, p0)
    no_correction = p0 - 0.1 * (0.1 * g) / (np.sqrt(0.001 * g * g) + 1e-8)
    np.testing.assert_allclose(got, right, rtol=1e-12)
    assert not np.allclose(got, no_correction, rtol=1e-3)
