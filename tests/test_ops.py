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
from autograd.function import registry
from tests.strategies import sample_strategy

SPECS = ag.all_specs()
NAMES = sorted(SPECS)


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _tensors(spec, arrays, device, dtype=np.float64, requires_grad=True):
    grad_inputs = spec.grad_inputs if spec.grad_inputs is not None else range(len(arrays))
    return [ag.tensor(a.astype(dtype), device=device, requires_grad=requires_grad and i in grad_inputs)
            for i, a in enumerate(arrays)]


def _skip(spec, device):
    kind = "cuda" if device.startswith("cuda") else "cpu"
    if kind in spec.skip:
        pytest.skip(spec.skip[kind])


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_forward_matches_numpy_and_keeps_dtype(name, device, data):
    spec = SPECS[name]
    _skip(spec, device)
    arrays, kwargs = data.draw(sample_strategy(spec), label="sample")
    expected = _as_list(spec.ref(np, *arrays, **kwargs))
    originals = [a.copy() for a in arrays]

    xs = _tensors(spec, arrays, device)
    outs = _as_list(spec.call(*xs, **kwargs))
    assert len(outs) == len(expected)
    for o, e in zip(outs, expected):
        assert o.shape == np.shape(e), f"{name}: shape {o.shape} vs reference {np.shape(e)}"
        np.testing.assert_allclose(o.numpy(), e, rtol=1e-6, atol=1e-9, err_msg=name)

    # float32 inputs: values within float32 precision, and no drift to float64 forward or backward
    xs32 = _tensors(spec, arrays, device, np.float32)
    outs32 = _as_list(spec.call(*xs32, **kwargs))
    for o, e in zip(outs32, expected):
        np.testing.assert_allclose(o.numpy(), e, rtol=2e-3, atol=2e-3, err_msg=f"{name} (float32)")
        if spec.check_dtype:
            assert o.dtype == np.float32, f"{name}: float32 inputs gave {o.dtype}"
    live = [o for o in outs32 if o.requires_grad and o.size]
    if live:
        gys = [np.ones(o.shape, np.float32) for o in live]
        gys_before = [g.copy() for g in gys]
        ag.backward(live, [ag.tensor(g, device=device) for g in gys])
        for g, before in zip(gys, gys_before):
            np.testing.assert_array_equal(g, before, err_msg=f"{name} mutated its upstream gradient")
        for x in xs32:
            if x.requires_grad and x.grad is not None:
                assert x.grad.shape == x.shape
                if spec.check_dtype:
                    assert x.grad.dtype == np.float32, f"{name}: gradient dtype {x.grad.dtype}"
    for a, before in zip(arrays, originals):
        np.testing.assert_array_equal(a, before, err_msg=f"{name} mutated its input")
    for x, before in zip(xs32, originals):
        np.testing.assert_array_equal(x.numpy(), before.astype(np.float32), err_msg=f"{name} mutated its input")


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_gradcheck(name, device, data):
    spec = SPECS[name]
    _skip(spec, device)
    arrays, kwargs = data.draw(sample_strategy(spec), label="sample")
    xs = _tensors(spec, arrays, device)
    if not any(x.requires_grad for x in xs):
        return
    assert ag.gradcheck(lambda *a: spec.call(*a, **kwargs), xs, rtol=spec.rtol, atol=spec.atol, eps=spec.eps)


SECOND = [n for n in NAMES if SPECS[n].second_order]


@pytest.mark.parametrize("name", SECOND)
@given(data=st.data())
def test_gradgradcheck(name, device, data):
    spec = SPECS[name]
    _skip(spec, device)
    arrays, kwargs = data.draw(sample_strategy(spec), label="sample")
    xs = _tensors(spec, arrays, device)
    if not any(x.requires_grad for x in xs):
        return
    assert ag.gradgradcheck(lambda *a: spec.call(*a, **kwargs), xs, rtol=spec.rtol, atol=spec.atol, eps=spec.eps)


def test_every_function_has_a_spec_or_a_reason():
    missing = [name for name, cls in registry().items()
               if cls.spec is None and not cls.exempt and not name.startswith("tests.")]
    assert not missing, f"Function subclasses without a test spec: {missing}"


def test_every_public_op_of_the_design_is_present():
    names = ("neg abs exp log sqrt sin cos tanh sigmoid relu maximum minimum clip where matmul sum mean max min "
             "var std logsumexp softmax log_softmax reshape transpose broadcast_to concat stack split squeeze "
             "unsqueeze pad").split()
    assert all(callable(getattr(ag, n, None)) for n in names), [n for n in names if not hasattr(ag, n)]
