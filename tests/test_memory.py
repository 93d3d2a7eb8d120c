"""Saved arrays are released after backward; a long training loop keeps memory flat (no timing)."""
from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np

import autograd as ag


def test_saved_arrays_are_released_after_backward():
    x = ag.randn(256, 256, requires_grad=True)
    w = ag.randn(256, 256, requires_grad=True)
    h = x @ w
    ref = weakref.ref(h.array)
    y = h.tanh().exp().sum()
    del h
    gc.collect()
    assert ref() is not None            # the graph still needs it
    y.backward()
    assert ref() is None                # freed by backward, though y is still alive
    assert y.creator.inputs is None


def test_backward_releases_an_intermediate_before_the_next_node_runs():
    """An intermediate no one holds dies as soon as its consumer's backward is done, not one node later:
    its array can then be recycled by the next node's backward (backend.buffers) instead of a new one."""
    from autograd.function import Function
    seen = []

    class Probe(Function):
        exempt = "test probe: records whether a watched tensor is still alive when its backward runs"
        needs_inputs = False
        watch = None

        def forward(self, x):
            return x * 2

        def backward(self, gy):
            seen.append(self.watch is not None and self.watch() is not None)
            return gy * 2

    x = ag.randn(5, requires_grad=True)
    a = Probe.apply(x)
    b = Probe.apply(a)
    a.creator.watch = weakref.ref(a)        # a's own node runs after b's: by then a must be gone
    y = b.sum()
    del a, b
    y.backward()
    assert seen == [False, False]
    np.testing.assert_allclose(x.grad.numpy(), 4.0)


def test_graph_is_collected_without_backward():
    x = ag.randn(64, 64, requires_grad=True)
    h = x.exp()
    ref = weakref.ref(h.array)
    y = (h * 2).sum()
    del h, y
    assert ref() is None                # plain reference counting, no cycles


def test_ten_thousand_training_steps_keep_memory_flat():
    ag.manual_seed(0)
    w = ag.randn(8, 4, requires_grad=True)
    b = ag.zeros(4, requires_grad=True)
    x = ag.randn(16, 8)
    t = ag.randn(16, 4)

    def step():
        loss = (((x @ w + b).tanh() - t) ** 2).mean()
        loss.backward()
        with ag.no_grad():
            w.sub_(w.grad * 0.01)
            b.sub_(b.grad * 0.01)
        w.grad = b.grad = None
        return loss

    for _ in range(200):
        step()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    samples = []
    for i in range(10_000):
        loss = step()
        if i % 2000 == 1999:
            samples.append(tracemalloc.get_traced_memory()[0] - base)
    tracemalloc.stop()
    assert np.isfinite(loss.item())
    assert max(samples) < 1024 * 1024, samples          # a bounded working set...
    assert samples[-1] - samples[0] < 16 * 1024, samples  # ...that does not grow with the step count
