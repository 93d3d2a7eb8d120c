"""Shared fixtures: hypothesis profiles and the list of available backends."""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

import backends
from xpgrad.gradcheck import PROFILES   # examples per profile, shared with `xpgrad gradcheck`

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                     HealthCheck.filter_too_much], derandomize=False)
for _name, _n in PROFILES.items():
    settings.register_profile(_name, max_examples=_n, print_blob=_name == "ci", **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def _backend_params():
    params = [pytest.param("cpu", id="numpy")]
    reason = "CuPy or a CUDA GPU is not available"
    params.append(pytest.param("cuda", id="cupy",
                               marks=pytest.mark.skipif(not backends.cuda_available(), reason=reason)))
    return params


BACKENDS = _backend_params()


@pytest.fixture(params=BACKENDS, scope="session")
def device(request):
    return request.param
