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
import nn  # noqa: F401  (registers nn.functional's composite specs)
import backends
from autograd.testing import check_cross_backend, samples

pytestmark = pytest.mark.skipif(not backends.cuda_available(), reason="CuPy or a CUDA GPU is not available")

SPECS = ag.all_specs()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(SPECS))
@given(data=st.data())
def test_cupy_matches_numpy(name, dtype, data):
    spec = SPECS[name]
    if "cuda" in spec.skip:
        pytest.skip(spec.skip["cuda"])
    arrays, kwargs = data.draw(samples(spec))
    check_cross_backend(spec, arrays, kwargs, "cuda", dtype)


def test_transfer_is_differentiable_and_round_trips():
    x = ag.randn(3, 4, dtype="float64", requires_grad=True)
    y = (x * 2).to("cuda")
    assert y.device == "cuda:0"
    (y.exp().sum()).to("cpu").backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp(2 * x.numpy()), rtol=1e-12)
    assert ag.gradcheck(lambda t: (t.to("cuda") ** 2).sum().to("cpu"), [x])
