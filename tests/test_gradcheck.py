"""The checker itself: it passes correct ops and catches wrong backward passes."""
from __future__ import annotations

import numpy as np
import pytest

import autograd as ag
from autograd import Function
from autograd.ops._util import const


class WrongSquare(Function):
    """f = x²; backward deliberately returns x instead of 2x."""
    exempt = "deliberately wrong, to test the checker"

    def forward(self, x):
        return x * x

    def backward(self, gy):
        return gy * self.inputs[0]


class FrozenCube(Function):
    """f = x³; first derivative right, but computed from a constant, so the second derivative is lost."""
    exempt = "deliberately wrong at second order, to test gradgradcheck"

    def forward(self, x):
        return x ** 3

    def backward(self, gy):
        return gy * const(3 * self.inputs[0].array ** 2, gy)


def _x(shape, seed=0):
    return ag.tensor(np.random.default_rng(seed).uniform(0.5, 2.0, shape), requires_grad=True)


def test_passes_correct_ops():
    assert ag.gradcheck(lambda a, b: (a * b).sin().sum(dim=0), [_x((3, 2)), _x((2,), 1)])
    assert ag.gradgradcheck(lambda a: (a * a * a).sum(), [_x((4,))])


def test_catches_wrong_backward_and_names_the_element():
    with pytest.raises(ag.GradcheckError) as info:
        ag.gradcheck(lambda a: WrongSquare.apply(a), [_x((2, 3))])
    err = info.value
    assert err.input_index == 0 and len(err.element) == 2
    assert err.analytic == pytest.approx(err.numeric / 2, rel=1e-4)
    assert "input 0" in str(err) and "analytic" in str(err) and "numeric" in str(err)
    assert ag.gradcheck(lambda a: WrongSquare.apply(a), [_x((3,))], raise_exception=False) is False


def test_catches_wrong_backward_on_large_inputs_by_random_directions():
    with pytest.raises(ag.GradcheckError, match="random direction"):
        ag.gradcheck(lambda a: WrongSquare.apply(a), [_x((30, 30))], full_limit=100)


def test_gradgradcheck_catches_a_lost_second_derivative():
    assert ag.gradcheck(lambda a: FrozenCube.apply(a), [_x((3,))])
    with pytest.raises(ag.GradcheckError):
        ag.gradgradcheck(lambda a: FrozenCube.apply(a), [_x((3,))])


def test_needs_an_input_requiring_grad():
    with pytest.raises(ValueError, match="no input requires grad"):
        ag.gradcheck(lambda a: a * 2, [ag.tensor([1.0])])
