"""Learning-rate schedulers: closed forms, endpoints and monotonicity, PyTorch agreement, warm-up then cosine,
state dicts."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import autograd as ag
import nn
from nn.optim import lr_scheduler as L


def _opt(lrs=(0.1,)):
    groups = [{"params": [nn.Parameter(ag.zeros(2))], "lr": lr} for lr in lrs]
    return nn.optim.SGD(groups, lr=lrs[0])


def _trace(sched, n):
    out = []
    for _ in range(n):
        out.append(sched.get_last_lr())
        sched.optimizer.step()
        sched.step()
    return out


CASES = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3)),
    ("ConstantLR", dict(factor=0.5, total_iters=3)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=7)),
    ("CosineAnnealingLR", dict(T_max=10, eta_min=0.01)),
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=0.1, end_factor=0.9, total_iters=4)),
]


@pytest.mark.parametrize("name, kw", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_matches_torch(name, kw):
    torch = pytest.importorskip("torch")
    opt = _opt((0.1, 0.5))
    tps = [torch.nn.Parameter(torch.zeros(2)) for _ in range(2)]
    topt = torch.optim.SGD([{"params": [tps[0]], "lr": 0.1}, {"params": [tps[1]], "lr": 0.5}], lr=0.1)
    sched = getattr(L, name)(opt, **kw)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    for _ in range(30):       # beyond T_max / total_iters / the last milestone
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose([g["lr"] for g in opt.param_groups], [g["lr"] for g in topt.param_groups],
                                   rtol=1e-12, atol=1e-15)
        opt.step()
        topt.step()
        sched.step()
        tsched.step()


def _warmup_cosine(opt, warm=5, total=30, eta_min=1e-3):
    w = L.LinearLR(opt, start_factor=0.01, total_iters=warm)
    c = L.CosineAnnealingLR(opt, T_max=total - warm, eta_min=eta_min)
    return L.SequentialLR(opt, [w, c], milestones=[warm])


def test_warmup_then_cosine_closed_form():
    opt = _opt((0.1,))
    lrs = [v[0] for v in _trace(_warmup_cosine(opt), 40)]
    for t, lr in enumerate(lrs):
        if t < 5:
            expected = 0.1 * (0.01 + 0.99 * t / 5)
        else:
            expected = 1e-3 + (0.1 - 1e-3) * (1 + math.cos(math.pi * (t - 5) / 25)) / 2
        assert lr == pytest.approx(expected, rel=1e-12)
    assert max(lrs) == pytest.approx(0.1) and lrs.index(max(lrs)) == 5
    assert lrs[30] == pytest.approx(1e-3)
    assert all(a <= b for a, b in zip(lrs[:5], lrs[1:6])) and all(a >= b for a, b in zip(lrs[5:30], lrs[6:31]))


def test_warmup_then_cosine_matches_torch():
    torch = pytest.importorskip("torch")
    opt = _opt((0.1, 0.02))
    tps = [torch.nn.Parameter(torch.zeros(2)) for _ in range(2)]
    topt = torch.optim.SGD([{"params": [tps[0]], "lr": 0.1}, {"params": [tps[1]], "lr": 0.02}], lr=0.1)
    sched = _warmup_cosine(opt)
    TL = torch.optim.lr_scheduler
    tsched = TL.SequentialLR(topt, [TL.LinearLR(topt, start_factor=0.01, total_iters=5),
                                    TL.CosineAnnealingLR(topt, T_max=25, eta_min=1e-3)], milestones=[5])
    for _ in range(40):
        np.testing.assert_allclose([g["lr"] for g in opt.param_groups], [g["lr"] for g in topt.param_groups],
                                   rtol=1e-12)
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12)
        opt.step()
        topt.step()
        sched.step()
        tsched.step()


def test_optimizer_uses_the_scheduled_rate():
    p = nn.Parameter(ag.tensor([0.0]))
    opt = nn.optim.SGD([p], lr=1.0)
    sched = L.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        p.grad = ag.tensor([1.0])
        opt.step()
        sched.step()
    np.testing.assert_allclose(p.numpy(), [-(1.0 + 0.5 + 0.25)])


# --- properties -----------------------------------------------------------------------------------------
_base = st.floats(1e-5, 10.0)


@given(base=_base, T=st.integers(1, 60), frac=st.floats(0.0, 0.99))
def test_cosine_endpoints_and_monotone(base, T, frac):
    eta_min = base * frac
    opt = _opt((base,))
    sched = L.CosineAnnealingLR(opt, T_max=T, eta_min=eta_min)
    lrs = [v[0] for v in _trace(sched, T + 1)]
    assert lrs[0] == pytest.approx(base, rel=1e-12)
    assert lrs[T] == pytest.approx(eta_min, rel=1e-9, abs=1e-12 * base)
    assert all(b <= a * (1 + 1e-12) for a, b in zip(lrs, lrs[1:]))
    assert all(eta_min - 1e-12 * base <= v <= base * (1 + 1e-12) for v in lrs)


@given(base=_base, start=st.floats(0.01, 1.0), end=st.floats(0.0, 1.0), total=st.integers(1, 30))
def test_linear_endpoints_and_monotone(base, start, end, total):
    sched = L.LinearLR(_opt((base,)), start_factor=start, end_factor=end, total_iters=total)
    lrs = [v[0] for v in _trace(sched, total + 5)]
    assert lrs[0] == pytest.approx(base * start, rel=1e-12)
    assert all(v == pytest.approx(base * end, rel=1e-9, abs=1e-15) for v in lrs[total:])
    sign = 1 if end >= start else -1
    assert all(sign * (b - a) >= -1e-12 * base for a, b in zip(lrs, lrs[1:]))


@given(base=_base, gamma=st.floats(0.01, 1.0), step=st.integers(1, 10),
       milestones=st.lists(st.integers(0, 30), max_size=4), n=st.integers(1, 40))
def test_decays_are_monotone_and_exact(base, gamma, step, milestones, n):
    for sched, form in [
        (L.StepLR(_opt((base,)), step_size=step, gamma=gamma), lambda t: base * gamma ** (t // step)),
        (L.MultiStepLR(_opt((base,)), milestones=milestones, gamma=gamma),
         lambda t: base * gamma ** sum(m <= t for m in milestones)),
        (L.ExponentialLR(_opt((base,)), gamma=gamma), lambda t: base * gamma ** t),
    ]:
        lrs = [v[0] for v in _trace(sched, n)]
        assert all(v == pytest.approx(form(t), rel=1e-12) for t, v in enumerate(lrs))
        assert all(b <= a for a, b in zip(lrs, lrs[1:]))


# --- state dicts, resuming, errors ----------------------------------------------------------------------
def test_state_dict_round_trip_through_nn_save(tmp_path):
    opt = _opt((0.1, 0.3))
    sched = _warmup_cosine(opt)
    _trace(sched, 7)
    nn.save({"optim": opt.state_dict(), "sched": sched.state_dict()}, tmp_path / "s.npz")
    expected = _trace(sched, 30)

    opt2 = _opt((0.5, 0.5))
    sched2 = _warmup_cosine(opt2)
    ck = nn.load(tmp_path / "s.npz")
    opt2.load_state_dict(ck["optim"])
    sched2.load_state_dict(ck["sched"])
    assert sched2.last_epoch == 7 and opt2.param_groups[1]["initial_lr"] == 0.3
    assert _trace(sched2, 30) == expected


def test_simple_scheduler_state_dict():
    opt = _opt()
    s = L.StepLR(opt, step_size=2, gamma=0.5)
    _trace(s, 5)
    sd = s.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 5 and sd["step_size"] == 2
    s2 = L.StepLR(_opt(), step_size=9)
    s2.load_state_dict(sd)
    assert s2.step_size == 2 and s2.get_last_lr() == s.get_last_lr()


def test_resume_with_last_epoch():
    opt = _opt((0.1,))
    with pytest.raises(KeyError, match="initial_lr"):
        L.ExponentialLR(opt, gamma=0.5, last_epoch=3)
    L.ExponentialLR(opt, gamma=0.5)                       # records initial_lr
    s = L.ExponentialLR(opt, gamma=0.5, last_epoch=3)
    assert s.last_epoch == 4 and s.get_last_lr()[0] == pytest.approx(0.1 * 0.5 ** 4)


def test_lambda_lr():
    opt = _opt((0.1, 0.2))
    s = L.LambdaLR(opt, [lambda t: 1.0 / (t + 1), lambda t: 0.5])
    lrs = _trace(s, 3)
    assert lrs == [[0.1, 0.1], [0.05, 0.1], [pytest.approx(0.1 / 3), 0.1]]
    assert "lr_lambdas" not in s.state_dict()
    with pytest.raises(ValueError, match="one per parameter group"):
        L.LambdaLR(opt, [lambda t: 1.0])


def test_scheduler_errors():
    opt = _opt()
    with pytest.raises(ValueError, match="T_max"):
        L.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(ValueError, match="step_size"):
        L.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="start_factor"):
        L.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="end_factor"):
        L.LinearLR(opt, end_factor=1.5)
    with pytest.raises(TypeError, match="not an Optimizer"):
        L.StepLR(object(), step_size=1)
    a, b = L.LinearLR(opt), L.CosineAnnealingLR(opt, T_max=3)
    with pytest.raises(ValueError, match="milestone"):
        L.SequentialLR(opt, [a, b], milestones=[])
    with pytest.raises(ValueError, match="increasing"):
        L.SequentialLR(opt, [a, b, L.ExponentialLR(opt, 0.9)], milestones=[5, 3])
    with pytest.raises(ValueError, match="different optimizer"):
        L.SequentialLR(opt, [a, L.StepLR(_opt(), step_size=1)], milestones=[2])
    with pytest.raises(ValueError, match="at least one"):
        L.SequentialLR(opt, [], milestones=[])
