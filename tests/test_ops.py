"""Generated tests: every op spec x every available backend.

forward vs the NumPy reference (float64 and float32), dtype stability on
float32, inputs and upstream gradients left unmutated, gradcheck, and
gradgradcheck where the spec declares second order.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import autograd as ag
import nn  # noqa: F401  (registers nn.functional's composite specs)
from autograd.function import registry
from autograd.testing import check_forward, check_gradients, check_second_order, samples
from backends import cpu_kernels

SPECS = ag.all_specs()


@pytest.fixture(autouse=True, scope="module")
def _cpu_kernels_on_small_arrays():
    """The registry's samples are small, and the NumPy backend's C kernels (backends/cpu_kernels.py) leave
    arrays under MIN_SIZE elements to the NumPy formulas; without that floor here, these checks run every op
    through its kernels as well (the formulas are held to the same results in tests/test_cpu_kernels.py)."""
    old, cpu_kernels.MIN_SIZE = cpu_kernels.MIN_SIZE, 0
    yield
    cpu_kernels.MIN_SIZE = old
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


def test_every_public_name_comes_from_its_record():
    """ag.<name>, its Tensor methods and operators and its nn.functional name are the one function declared
    with @public beside the op, so they cannot drift apart."""
    import nn.functional as F
    x, y = ag.tensor([1.0, 2.0]), ag.tensor([3.0, 5.0])
    for rec in ag.public_ops().values():
        if rec.export:
            assert getattr(ag, rec.name) is rec.func, rec.name
            for alias in rec.aliases:
                assert getattr(ag, alias) is rec.func, f"ag.{alias} is not {rec.name}"
        for m in rec.methods + (rec.aliases if rec.methods else ()) + rec.operators:
            assert getattr(ag.Tensor, m) is rec.func, f"Tensor.{m} is not {rec.name}"
        for m in rec.roperators:
            a, b = (x, y) if m not in ("__rand__", "__ror__", "__rxor__") else (ag.tensor([1, 2]), ag.tensor([3, 5]))
            np.testing.assert_array_equal(getattr(a, m)(b).numpy(), rec.func(b, a).numpy(), err_msg=m)
        if rec.functional:
            assert getattr(F, rec.name) is rec.func, f"nn.functional.{rec.name}"
    assert ag.public_ops()["add"].roperators == ("__radd__",)
