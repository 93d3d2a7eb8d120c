"""nn.init: distributions (statistics of big draws), gains, fans, reproducibility, in-place semantics."""
from __future__ import annotations

import math

import numpy as np
import pytest

import autograd as ag
import backends
import nn
from nn import init


def big(*shape, dtype=None):
    return nn.Parameter(ag.zeros(*shape, dtype=dtype))


def test_calculate_gain_matches_torch():
    torch = pytest.importorskip("torch")
    for name, param in [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                        ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", math.sqrt(5)), ("selu", None)]:
        assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param))
    with pytest.raises(ValueError):
        init.calculate_gain("swishy")


def test_fan_in_fan_out_dense_and_conv():
    assert init._calculate_fan_in_and_fan_out(ag.zeros(7, 3)) == (3, 7)
    assert init._calculate_fan_in_and_fan_out(ag.zeros(16, 8, 3, 5)) == (8 * 15, 16 * 15)
    with pytest.raises(ValueError, match="fewer than 2"):
        init._calculate_fan_in_and_fan_out(ag.zeros(5))


def test_uniform_and_normal_statistics():
    ag.manual_seed(0)
    u = init.uniform_(big(400, 500), -0.07, 0.07).numpy()
    assert u.min() >= -0.07 and u.max() <= 0.07
    assert abs(u.mean()) < 1e-3 and u.std() == pytest.approx(0.14 / math.sqrt(12), rel=0.01)
    n = init.normal_(big(400, 500), 2.0, 0.5).numpy()
    assert n.mean() == pytest.approx(2.0, abs=3e-3) and n.std() == pytest.approx(0.5, rel=0.01)
    assert n.dtype == np.float32


@pytest.mark.parametrize("shape", [(300, 200), (64, 32, 3, 3)])
def test_xavier_and_kaiming_statistics(shape):
    ag.manual_seed(1)
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(ag.zeros(*shape))
    cases = [
        (lambda t: init.xavier_uniform_(t), math.sqrt(6 / (fan_in + fan_out)) / math.sqrt(3), True),
        (lambda t: init.xavier_uniform_(t, gain=2.0), 2 * math.sqrt(2 / (fan_in + fan_out)), True),
        (lambda t: init.xavier_normal_(t), math.sqrt(2 / (fan_in + fan_out)), False),
        (lambda t: init.kaiming_uniform_(t, nonlinearity="relu"), math.sqrt(2 / fan_in), True),
        (lambda t: init.kaiming_uniform_(t, a=math.sqrt(5)), 1 / math.sqrt(3 * fan_in), True),
        (lambda t: init.kaiming_normal_(t, nonlinearity="relu"), math.sqrt(2 / fan_in), False),
        (lambda t: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"), math.sqrt(2 / fan_out), False),
    ]
    for fill, std, uniform in cases:
        a = fill(big(*shape)).numpy()
        assert abs(a.mean()) < 5 * std / math.sqrt(a.size)          # 5 standard errors
        assert a.std() == pytest.approx(std, rel=0.02)
        if uniform:
            assert np.abs(a).max() <= std * math.sqrt(3) * (1 + 1e-6)


def test_init_statistics_match_torch_formulas():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    for ours, theirs in [(lambda t: init.kaiming_normal_(t, a=0.1), lambda t: torch.nn.init.kaiming_normal_(t, a=0.1)),
                         (lambda t: init.xavier_normal_(t, 1.5), lambda t: torch.nn.init.xavier_normal_(t, 1.5))]:
        a = ours(big(256, 128)).numpy()
        b = theirs(torch.empty(256, 128)).numpy()
        assert a.std() == pytest.approx(b.std(), rel=0.03)


def test_constant_zeros_ones_eye_trunc_normal():
    t = big(3, 4)
    np.testing.assert_array_equal(init.constant_(t, 0.3).numpy(), np.full((3, 4), 0.3, np.float32))
    np.testing.assert_array_equal(init.ones_(t).numpy(), 1)
    np.testing.assert_array_equal(init.zeros_(t).numpy(), 0)
    np.testing.assert_array_equal(init.eye_(t).numpy(), np.eye(3, 4))
    ag.manual_seed(0)
    tn = init.trunc_normal_(big(100, 100), std=1.0, a=-1.0, b=1.5).numpy()
    assert tn.min() >= -1.0 and tn.max() <= 1.5 and tn.std() > 0.4


def test_init_is_in_place_no_grad_and_bumps_version():
    p = big(5, 5)
    data, v = p.array, p._version
    out = init.kaiming_uniform_(p)
    assert out is p and p.array is data and p._version > v
    assert p.creator is None and p.requires_grad and p.grad is None
    v = p._version
    init.zeros_(p)
    assert p._version > v


def test_float64_and_float16_parameters_keep_their_dtype():
    assert init.normal_(big(4, 4, dtype="float64")).dtype == np.float64
    assert init.xavier_uniform_(big(4, 4, dtype="float16")).dtype == np.float16


def test_seeded_runs_are_bit_for_bit_reproducible():
    def build():
        init.seed(123)
        return nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3), nn.Embedding(4, 2), nn.PReLU())

    a, b = build(), build()
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        np.testing.assert_array_equal(va.numpy(), vb.numpy(), err_msg=k)
    ag.manual_seed(124)
    c = nn.Linear(10, 20)
    assert not np.array_equal(c.weight.numpy(), a[0].weight.numpy())


def test_linear_default_init_matches_torch_bounds():
    lin = nn.Linear(50, 400)
    w, b = lin.weight.numpy(), lin.bias.numpy()
    bound = 1 / math.sqrt(50)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.03)


def test_init_rejects_integer_tensors():
    with pytest.raises(TypeError):
        init.normal_(ag.zeros(3, dtype="int64"))


@pytest.mark.skipif(not backends.cuda_available(), reason="CuPy or a CUDA GPU is not available")
def test_init_draws_on_the_gpu():
    p = nn.Parameter(ag.zeros(256, 256, device="cuda"))
    init.kaiming_normal_(p, nonlinearity="relu")
    assert p.device == "cuda" and type(p.array).__module__.startswith("cupy")
    assert float(p.std().item()) == pytest.approx(math.sqrt(2 / 256), rel=0.03)
    lin = nn.Linear(8, 4, device="cuda")
    assert lin.weight.device == "cuda" and lin.bias.device == "cuda"
