"""autograd.testing: the kit passes a correct custom op and catches each kind of wrong one."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

import autograd as ag
from autograd import testing as agt


def _cube(backward_factor=3.0, mutate=False, upcast=False):
    class Cube(ag.Function):
        """f = x³;  df/dx = 3x²."""

        def forward(self, x):
            if mutate:
                x *= 1.0
                x += 1e-3
            y = x ** 3
            return y.astype("float64") if upcast else y

        def backward(self, gy):
            x, = self.inputs
            return gy * backward_factor * x * x

        spec = ag.OpSpec(ref=lambda np, x: x ** 3)
    return Cube


def test_a_correct_custom_op_passes():
    agt.check_function(_cube(), max_examples=10)


def test_a_wrong_backward_is_caught():
    with pytest.raises((ag.GradcheckError, AssertionError)):
        agt.check_function(_cube(backward_factor=2.0), max_examples=10)


def test_checking_one_op_never_changes_a_spec_another_op_shares():
    """One spec object for two ops: checking the correct one first must not make the broken one pass."""
    spec = ag.OpSpec(ref=lambda np, x: x ** 3)
    good, bad = _cube(), _cube(backward_factor=2.0)
    agt.check_function(good, spec=spec, max_examples=5)
    assert spec.call is None and spec.name == ""
    with pytest.raises((ag.GradcheckError, AssertionError)):
        agt.check_function(bad, spec=spec, max_examples=5)
    with pytest.raises(AttributeError):
        spec.call = good.apply                      # records are frozen
    assert ag.all_specs()["exp"].call is ag.exp


def test_an_op_that_mutates_its_input_is_caught():
    with pytest.raises(AssertionError):
        agt.check_function(_cube(mutate=True), max_examples=10)


def test_an_op_that_drifts_to_float64_is_caught():
    with pytest.raises(AssertionError, match="float32 inputs gave float64"):
        agt.check_function(_cube(upcast=True), max_examples=10)


def test_plain_callables_with_a_spec_and_missing_specs():
    agt.check_function(lambda x, y: x * y + x, spec=ag.OpSpec(ref=lambda np, x, y: x * y + x, nargs=2),
                       max_examples=8)

    class NoSpec(ag.Function):
        exempt = "test helper"
    with pytest.raises(TypeError, match="has no OpSpec"):
        agt.check_function(NoSpec)


@given(agt.broadcastable_shapes(3))
def test_broadcastable_shapes_broadcast(shapes):
    np.broadcast_shapes(*shapes)


@given(agt.arrays((5,), lo=-1, hi=1, avoid=(0.0,), margin=0.2))
def test_arrays_keep_away_from_kinks(x):
    assert np.all(np.abs(x) >= 0.2 - 1e-12) and np.all(np.abs(x) <= 1)


@given(agt.axes(3))
def test_axes_are_valid(axis):
    np.zeros((2, 3, 4)).sum(axis=axis)
