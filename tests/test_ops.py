"""Generated tests: every op spec x every available backend.

forward vs the NumPy reference (float64 and float32), dtype stability on
float32, inputs and upstream gradients left unmutated, gradcheck, and
gradgradcheck where the spec declares second order.
"""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import autograd as ag
from autograd.function import registry
from autograd.testing import check_forward, check_gradients, check_second_order, samples

SPECS = ag.all_specs()
NAMES = sorted(SPECS)
SECOND = [n for n in NAMES if SPECS[n].second_order]


def _draw(name, device, data):
    spec = SPECS[name]
    kind = "cuda" if device.startswith("cuda") else "cpu"
    if kind in spec.skip:
        pytest.skip(spec.skip[kind])
    arrays, kwargs = data.draw(samples(spec), label="sample")
    return spec, arrays, kwargs


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_forward_matches_numpy_and_keeps_dtype(name, device, data):
    check_forward(*_draw(name, device, data), device)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_gradcheck(name, device, data):
    check_gradients(*_draw(name, device, data), device)


@pytest.mark.parametrize("name", SECOND)
@given(data=st.data())
def test_gradgradcheck(name, device, data):
    check_second_order(*_draw(name, device, data), device)


def test_every_function_has_a_spec_or_a_reason():
    missing = [name for name, cls in registry().items()
               if cls.spec is None and not cls.exempt and not name.startswith("tests.")]
    assert not missing, f"Function subclasses without a test spec: {missing}"


def test_every_public_op_of_the_design_is_present():
    names = ("neg abs exp log sqrt sin cos tanh sigmoid relu maximum minimum clip where matmul sum mean max min "
             "var std logsumexp softmax log_softmax reshape transpose broadcast_to concat stack split squeeze "
             "unsqueeze pad").split()
    assert all(callable(getattr(ag, n, None)) for n in names), [n for n in names if not hasattr(ag, n)]
