"""CuPy against NumPy: every op's values and gradients agree on the same hypothesis-drawn inputs.

float64 must agree tightly; float32 within a budget of 1e-4 relative (different BLAS/reduction order
and fused kernels). Skipped cleanly where CuPy or a GPU is missing.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import autograd as ag
import backends
from tests.strategies import sample_strategy

pytestmark = pytest.mark.skipif(not backends.cuda_available(), reason="CuPy or a CUDA GPU is not available")

SPECS = ag.all_specs()
TOL = {np.float64: dict(rtol=1e-9, atol=1e-11), np.float32: dict(rtol=1e-4, atol=1e-5)}


def _run(spec, arrays, kwargs, device, dtype):
    gi = spec.grad_inputs if spec.grad_inputs is not None else range(len(arrays))
    xs = [ag.tensor(a.astype(dtype), device=device, requires_grad=i in gi) for i, a in enumerate(arrays)]
    out = spec.call(*xs, **kwargs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    live = [o for o in outs if o.requires_grad]
    if live:
        ag.backward(live, [ag.ones_like(o) * 0.5 for o in live])
    return [o.numpy() for o in outs], [x.grad.numpy() if x.grad is not None else None for x in xs]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_cupy_matches_numpy(name, dtype, data):
    spec = SPECS[name]
    if "cuda" in spec.skip:
        pytest.skip(spec.skip["cuda"])
    arrays, kwargs = data.draw(sample_strategy(spec))
    cpu_out, cpu_grads = _run(spec, arrays, kwargs, "cpu", dtype)
    gpu_out, gpu_grads = _run(spec, arrays, kwargs, "cuda", dtype)
    for a, b in zip(cpu_out + cpu_grads, gpu_out + gpu_grads):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(b, a, **TOL[dtype], err_msg=name)


def test_transfer_is_differentiable_and_round_trips():
    x = ag.randn(3, 4, dtype="float64", requires_grad=True)
    y = (x * 2).to("cuda")
    assert y.device == "cuda:0"
    (y.exp().sum()).to("cpu").backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp(2 * x.numpy()), rtol=1e-12)
    assert ag.gradcheck(lambda t: (t.to("cuda") ** 2).sum().to("cpu"), [x])
