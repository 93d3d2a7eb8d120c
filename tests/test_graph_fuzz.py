"""Whole-graph fuzzing: random compositions of ops, checked end to end against finite differences.

Programs reuse nodes several times, cut the graph with ``detach`` and ``no_grad``
regions, broadcast, reduce with keepdims, and are differentiated twice with
``retain_graph=True``. Cut nodes are constants of the graph, so the numeric
reference freezes them at their unperturbed values.
"""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import autograd as ag
from autograd.testing import Drawer

UNARY = {
    "tanh": lambda a: a.tanh(),
    "sin": lambda a: a.sin(),
    "sigmoid": lambda a: a.sigmoid(),
    "square": lambda a: a * a,
    "neg": lambda a: -a,
    "exp_tanh": lambda a: a.tanh().exp(),
    # 0-d fallbacks are new nodes, never the input itself: an identity under no_grad would not cut
    "sum_keep": lambda a: a.sum(dim=-1, keepdim=True) if a.ndim else a.sum(),
    "mean_keep": lambda a: a.mean(dim=0, keepdim=True) if a.ndim else a.mean(),
    "softmax": lambda a: a.softmax(dim=-1) if a.ndim else a.sigmoid(),
    "scale": lambda a: 0.5 * a + 1.0,
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b.tanh() + 1.5),
    "where": lambda a, b, mask: ag.where(mask, a, b),
}
CUTS = ("none", "none", "none", "detach", "no_grad")


@st.composite
def programs(draw):
    d = Drawer(draw)
    base = d.shape(min_dims=1, max_dims=2, min_side=1, max_side=3)
    shapes = []
    for _ in range(d.int(1, 3)):
        s = list(base[d.int(0, len(base)):])
        shapes.append(tuple(1 if d.bool() else n for n in s))
    inputs = [d.array(s, -1.5, 1.5) for s in shapes]
    steps = draw(st.lists(st.tuples(st.sampled_from(sorted(UNARY) + sorted(BINARY)), st.integers(0, 99),
                                    st.integers(0, 99), st.sampled_from(CUTS)), min_size=1, max_size=8))
    outs = draw(st.lists(st.integers(0, 99), min_size=1, max_size=4))
    return inputs, steps, outs


def run(xs, steps, outs, frozen=None, record=None):
    """Execute a program; cut nodes use ``frozen`` values when given, else real detach/no_grad."""
    nodes = list(xs)
    for k, (op, i, j, cut) in enumerate(steps):
        a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
        if op == "where":
            # the branch choice is not differentiable: freeze it like a cut node, so that a
            # finite-difference step across a > 0 cannot flip it
            if frozen is not None:
                mask = frozen[("mask", k)]
            else:
                mask = a.numpy() > 0
                if record is not None:
                    record[("mask", k)] = mask
            f = lambda: BINARY[op](a, b, ag.tensor(mask))  # noqa: E731
        elif op in UNARY:
            f = lambda: UNARY[op](a)  # noqa: E731
        else:
            f = lambda: BINARY[op](a, b)  # noqa: E731
        if cut != "none" and frozen is not None:
            v = ag.tensor(frozen[k])
        elif cut == "no_grad":
            with ag.no_grad():
                v = f()
        elif cut == "detach":
            v = f().detach()
        else:
            v = f()
        if cut != "none" and record is not None:
            record[k] = v.numpy()
        nodes.append(v)
    total = None
    for o in outs:
        t = nodes[o % len(nodes)].sum()
        total = t if total is None else total + t
    return total


@settings(max_examples=4 * settings.default.max_examples)
@given(programs())
def test_random_graphs_match_finite_differences(prog):
    inputs, steps, outs = prog
    xs = [ag.tensor(a, requires_grad=True) for a in inputs]
    frozen = {}
    loss = run(xs, steps, outs, record=frozen)
    if not loss.requires_grad:
        return
    grads = ag.grad(loss, xs, retain_graph=True, allow_unused=True)

    def f(*perturbed):
        return run(perturbed, steps, outs, frozen=frozen)

    # numeric reference with the cut nodes frozen, compared with the engine's gradients
    fixed = [g.numpy() if g is not None else np.zeros(x.shape) for g, x in zip(grads, xs)]
    eps = 1e-6
    for x, a, g in zip(xs, inputs, fixed):
        num = np.zeros(a.size)
        for e in range(a.size):
            hi, lo = a.copy().ravel(), a.copy().ravel()
            hi[e] += eps
            lo[e] -= eps
            args_hi = [ag.tensor(hi.reshape(a.shape)) if y is x else ag.tensor(y.numpy()) for y in xs]
            args_lo = [ag.tensor(lo.reshape(a.shape)) if y is x else ag.tensor(y.numpy()) for y in xs]
            num[e] = (f(*args_hi).item() - f(*args_lo).item()) / (2 * eps)
        np.testing.assert_allclose(g.ravel(), num, rtol=1e-4, atol=1e-6)

    # backward twice through the retained graph accumulates twice the gradient
    loss.backward(retain_graph=True)
    loss.backward()
    for x, g in zip(xs, fixed):
        got = x.grad.numpy() if x.grad is not None else np.zeros(x.shape)
        np.testing.assert_allclose(got, 2 * g, rtol=1e-10, atol=1e-12)
