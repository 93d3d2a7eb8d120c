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


# --- LambdaLR, OneCycleLR, ReduceLROnPlateau -------------------------------------------------------------
def _torch_twin(torch, lrs, kind="SGD", **kw):
    """An xpgrad optimizer and its torch twin: one group per rate in ``lrs``, same hyperparameters."""
    groups = [{"params": [nn.Parameter(ag.zeros(2))], "lr": lr} for lr in lrs]
    tgroups = [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in lrs]
    return getattr(nn.optim, kind)(groups, lr=lrs[0], **kw), getattr(torch.optim, kind)(tgroups, lr=lrs[0], **kw)


def _groups(opt, key):
    return [g[key][0] if key == "betas" else g[key] for g in opt.param_groups]


LAMBDAS = {
    "inverse": lambda t: 1.0 / (t + 1),
    "warmup-then-decay": lambda t: min(1.0, (t + 1) / 5) * 0.9 ** max(0, t - 5),
    "cosine-restarts": lambda t: 0.5 * (1 + math.cos(math.pi * (t % 7) / 7)),
    "steps": lambda t: 0.1 ** (t // 4),
}


@pytest.mark.parametrize("names", [["inverse"], ["warmup-then-decay"], ["cosine-restarts", "steps"],
                                   ["steps", "inverse"]], ids="+".join)
def test_lambda_lr_matches_torch(names):
    torch = pytest.importorskip("torch")
    fns = [LAMBDAS[n] for n in names]
    lr_lambda = fns[0] if len(fns) == 1 else fns
    opt, topt = _torch_twin(torch, (0.1, 0.03) if len(fns) == 1 else (0.1, 0.03)[:len(fns)])
    sched, tsched = L.LambdaLR(opt, lr_lambda), torch.optim.lr_scheduler.LambdaLR(topt, lr_lambda)
    for _ in range(40):
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12, atol=1e-18)
        np.testing.assert_allclose(_groups(opt, "lr"), _groups(topt, "lr"), rtol=1e-12, atol=1e-18)
        opt.step()
        topt.step()
        sched.step()
        tsched.step()


def test_lambda_lr_state_dict_keeps_the_functions(tmp_path):
    opt = _opt((0.1, 0.2))
    s = L.LambdaLR(opt, [LAMBDAS["inverse"], LAMBDAS["steps"]])
    _trace(s, 6)
    nn.save(s.state_dict(), tmp_path / "l.npz")
    expected = _trace(s, 10)
    s2 = L.LambdaLR(_opt((0.1, 0.2)), [LAMBDAS["inverse"], LAMBDAS["steps"]])
    f0 = s2.lr_lambdas[0]
    s2.load_state_dict({**nn.load(tmp_path / "l.npz"), "lr_lambdas": [None, None]})  # PyTorch's layout too
    assert s2.lr_lambdas[0] is f0 and s2.last_epoch == 6
    assert _trace(s2, 10) == expected


# ReduceLROnPlateau
def _plateau_configs():
    return st.fixed_dictionaries({
        "mode": st.sampled_from(["min", "max"]),
        "factor": st.sampled_from([0.0, 0.1, 0.5, 0.9]),
        "patience": st.integers(0, 4),
        "threshold": st.sampled_from([0.0, 1e-4, 0.05, 0.3]),
        "threshold_mode": st.sampled_from(["rel", "abs"]),
        "cooldown": st.integers(0, 3),
        "min_lr": st.sampled_from([0, 1e-3, [1e-2, 1e-4]]),
        "eps": st.sampled_from([0.0, 1e-8, 1e-3]),
    })


PLATEAU = [dict(mode=m, threshold_mode=tm, **kw) for m in ("min", "max") for tm in ("rel", "abs") for kw in (
    dict(),
    dict(factor=0.5, patience=0, threshold=0.1),
    dict(factor=0.3, patience=2, cooldown=2, min_lr=[1e-2, 1e-3], threshold=0.0),
    dict(factor=0.9, patience=1, cooldown=1, min_lr=0.015, eps=1e-3, threshold=0.25),
)]


@pytest.mark.parametrize("kw", PLATEAU, ids=[f"{i}-{k['mode']}-{k['threshold_mode']}" for i, k in enumerate(PLATEAU)])
def test_reduce_lr_on_plateau_matches_torch_table(kw):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(len(str(kw)))
    # plateaus, ties, slow drifts both ways and jumps, over 60 steps
    metrics = np.concatenate([np.repeat(rng.integers(-2, 3, 12), rng.integers(1, 4, 12))[:30],
                              np.cumsum(rng.normal(0, 0.1, 30)) * rng.choice([-1, 1])])
    opt, topt = _torch_twin(torch, (0.1, 0.02))
    sched = L.ReduceLROnPlateau(opt, **kw)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    reductions = 0
    for m in metrics.tolist():
        before = _groups(opt, "lr")
        sched.step(m)
        tsched.step(m)
        reductions += _groups(opt, "lr") != before
        assert _groups(opt, "lr") == pytest.approx(_groups(topt, "lr"), rel=1e-12, abs=0)
        assert (sched.best, sched.num_bad_epochs, sched.cooldown_counter) == \
            (tsched.best, tsched.num_bad_epochs, tsched.cooldown_counter)
    assert reductions > 0


@given(kw=_plateau_configs(), metrics=st.lists(st.one_of(st.integers(-3, 3).map(float), st.floats(-3, 3)),
                                               min_size=1, max_size=40))
def test_reduce_lr_on_plateau_matches_torch(kw, metrics):
    torch = pytest.importorskip("torch")
    opt, topt = _torch_twin(torch, (0.1, 0.02))
    sched = L.ReduceLROnPlateau(opt, **kw)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    for m in metrics:
        sched.step(m)
        tsched.step(m)
        assert _groups(opt, "lr") == pytest.approx(_groups(topt, "lr"), rel=1e-12, abs=0)
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12, abs=0)
        assert (sched.best, sched.num_bad_epochs, sched.cooldown_counter, sched.last_epoch) == \
            (tsched.best, tsched.num_bad_epochs, tsched.cooldown_counter, tsched.last_epoch)


def test_reduce_lr_on_plateau_closed_form():
    opt = _opt((1.0,))
    s = L.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    assert s.get_last_lr() == [1.0] and s.last_epoch == 0        # construction changes nothing
    lrs = []
    for m in [5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]:               # the first value is the baseline
        s.step(m)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]         # after patience + 1 = 3 bad steps, and again
    s.step(4.0)                                                 # an improvement resets the count
    assert s.best == 4.0 and s.num_bad_epochs == 0
    s.step(4.0 * (1 - 1e-4) + 1e-9)                             # not better by the relative threshold
    assert s.num_bad_epochs == 1 and s.best == 4.0
    with pytest.raises(TypeError, match=r"ReduceLROnPlateau\.step\(\) needs the monitored metric"):
        s.step()


def test_reduce_lr_on_plateau_cooldown_min_lr_eps_and_max_mode():
    opt = _opt((1.0, 0.01))
    s = L.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=0, cooldown=2, min_lr=[0.05, 0.0], eps=1e-3)
    lrs = []
    for m in [1.0, 0.0, 0.0, 0.0, 0.0, 2.0, 2.0]:
        s.step(ag.tensor(m))                                    # a 0-d Tensor is a metric too
        lrs.append([g["lr"] for g in opt.param_groups])
    assert lrs == [[1.0, 0.01],           # baseline
                   [0.1, 0.001],          # patience 0: the first bad step reduces; cooldown 2 starts
                   [0.1, 0.001],          # cooldown
                   [0.1, 0.001],          # cooldown
                   [0.05, 0.001],         # clipped at min_lr; the second group's 0.0009 drop is below eps
                   [0.05, 0.001],         # improvement
                   [0.05, 0.001]]         # bad, but 0.05 is min_lr already
    s2 = L.ReduceLROnPlateau(_opt((1.0,)), threshold=0.5, threshold_mode="abs", patience=0)
    s2.step(10.0)
    s2.step(9.6)
    assert s2.best == 10.0 and s2.get_last_lr() == [pytest.approx(0.1)]
    s3 = L.ReduceLROnPlateau(_opt((1.0,)), mode="max", threshold=0.5, threshold_mode="abs", patience=5)
    for m, best, bad in [(1.0, 1.0, 0), (1.4, 1.0, 1), (1.6, 1.6, 0), (1.6, 1.6, 1)]:
        s3.step(m)
        assert (s3.best, s3.num_bad_epochs) == (best, bad)
    s4 = L.ReduceLROnPlateau(_opt((1.0,)), mode="max", threshold=0.5, patience=5)      # relative: 1.5 * best
    for m, best, bad in [(2.0, 2.0, 0), (2.9, 2.0, 1), (3.1, 3.1, 0), (-1.0, 3.1, 1)]:
        s4.step(m)
        assert (s4.best, s4.num_bad_epochs) == (best, bad)


def test_reduce_lr_on_plateau_state_dict_round_trip(tmp_path):
    metrics = [3.0, 2.0, 2.5, 2.5, 2.5, 1.0, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5]
    opt = _opt((0.1, 0.2))
    s = L.ReduceLROnPlateau(opt, patience=1, cooldown=1, min_lr=[1e-3, 2e-3])
    for m in metrics[:4]:
        s.step(m)
    nn.save({"optim": opt.state_dict(), "sched": s.state_dict()}, tmp_path / "p.npz")
    expected = []
    for m in metrics[4:]:
        s.step(m)
        expected.append(s.get_last_lr())
    opt2 = _opt((0.5, 0.5))
    s2 = L.ReduceLROnPlateau(opt2, mode="max", patience=7)
    ck = nn.load(tmp_path / "p.npz")
    opt2.load_state_dict(ck["optim"])
    s2.load_state_dict(ck["sched"])
    assert (s2.mode, s2.patience, s2.best, s2.min_lrs) == ("min", 1, 2.0, [1e-3, 2e-3])
    got = []
    for m in metrics[4:]:
        s2.step(m)
        got.append(s2.get_last_lr())
    assert got == expected
    fresh = L.ReduceLROnPlateau(_opt((0.1,)), mode="max")
    assert nn.load(_saved(tmp_path, fresh.state_dict()))["best"] == -math.inf
    with pytest.raises(ValueError, match="ReduceLROnPlateau: mode 'up' is unknown"):
        s2.load_state_dict({**ck["sched"], "mode": "up"})
    assert s2.mode == "min"


def _saved(tmp_path, obj):
    nn.save(obj, tmp_path / "x.npz")
    return tmp_path / "x.npz"


# OneCycleLR
ONE_CYCLE = [
    ("SGD", dict(momentum=0.9), dict(max_lr=0.5, total_steps=50)),
    ("SGD", dict(momentum=0.9), dict(max_lr=[1.0, 0.2], total_steps=37, pct_start=0.25, anneal_strategy="linear")),
    ("SGD", dict(momentum=0.9), dict(max_lr=0.3, epochs=4, steps_per_epoch=9, three_phase=True)),
    ("SGD", dict(momentum=0.9), dict(max_lr=0.3, total_steps=30, three_phase=True, anneal_strategy="linear",
                                     base_momentum=[0.7, 0.8], max_momentum=0.99, div_factor=10.0,
                                     final_div_factor=100.0)),
    ("SGD", dict(), dict(max_lr=0.1, total_steps=20, cycle_momentum=False, pct_start=0.5)),
    ("Adam", dict(), dict(max_lr=1e-2, total_steps=40)),
    ("Adam", dict(betas=(0.8, 0.99)), dict(max_lr=[1e-2, 3e-3], total_steps=23, three_phase=True, pct_start=0.4)),
    ("AdamW", dict(), dict(max_lr=1e-3, total_steps=17, anneal_strategy="linear")),
    ("RMSprop", dict(momentum=0.5), dict(max_lr=1e-2, total_steps=12, pct_start=0.6)),
    ("Adagrad", dict(), dict(max_lr=0.2, total_steps=9, cycle_momentum=False)),
]


def _run_one_cycle_against_torch(torch, kind, okw, kw):
    opt, topt = _torch_twin(torch, (0.1, 0.03), kind, **okw)
    sched = L.OneCycleLR(opt, **kw)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, **kw)
    total = kw.get("total_steps") or kw["epochs"] * kw["steps_per_epoch"]
    keys = ["lr"] + ([] if not kw.get("cycle_momentum", True) else ["betas" if "betas" in opt.defaults
                                                                     else "momentum"])
    for _ in range(total + 1):          # PyTorch allows total_steps calls to step() after construction
        for key in keys:
            np.testing.assert_allclose(_groups(opt, key), _groups(topt, key), rtol=1e-12, atol=1e-18, err_msg=key)
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12, atol=1e-18)
        if "betas" in opt.defaults:
            assert [g["betas"][1] for g in opt.param_groups] == [g["betas"][1] for g in topt.param_groups]
        if sched.last_epoch < total:
            opt.step()
            topt.step()
            sched.step()
            tsched.step()
    with pytest.raises(ValueError, match=rf"OneCycleLR: tried to step {total + 1} times.*total steps is {total}"):
        sched.step()
    with pytest.raises(ValueError):
        tsched.step()


@pytest.mark.parametrize("kind, okw, kw", ONE_CYCLE, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(ONE_CYCLE)])
def test_one_cycle_matches_torch(kind, okw, kw):
    torch = pytest.importorskip("torch")
    _run_one_cycle_against_torch(torch, kind, okw, kw)


@given(kind=st.sampled_from(["SGD", "Adam"]), total=st.integers(1, 80), pct=st.floats(0.0, 1.0),
       anneal=st.sampled_from(["cos", "linear"]), three=st.booleans(), cyc=st.booleans(),
       div=st.floats(1.0, 100.0), final=st.floats(1.0, 1e5), max_lr=st.floats(1e-4, 10.0))
def test_one_cycle_matches_torch_drawn(kind, total, pct, anneal, three, cyc, div, final, max_lr):
    torch = pytest.importorskip("torch")
    n = total
    ends = [pct * n - 1] + ([2 * pct * n - 2] if three else []) + [n - 1]
    starts = [0.0] + ends[:-1]
    # PyTorch divides by zero on a phase of length zero; this implementation does not (tested elsewhere)
    if any(abs(e - s) < 1e-9 for s, e in zip(starts, ends)):
        return
    kw = dict(max_lr=max_lr, total_steps=total, pct_start=pct, anneal_strategy=anneal, three_phase=three,
              cycle_momentum=cyc, div_factor=div, final_div_factor=final)
    _run_one_cycle_against_torch(torch, kind, dict(momentum=0.9) if kind == "SGD" else {}, kw)


def test_one_cycle_closed_form():
    opt = nn.optim.SGD([nn.Parameter(ag.zeros(2))], lr=123.0, momentum=0.5)
    L.StepLR(opt, step_size=3)          # records initial_lr = 123, which OneCycleLR replaces (as in PyTorch)
    s = L.OneCycleLR(opt, max_lr=1.0, total_steps=100, pct_start=0.3, div_factor=25.0, final_div_factor=1e4)
    lrs, moms = [], []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        s.step()
    assert lrs[0] == pytest.approx(1.0 / 25, rel=1e-12) and moms[0] == pytest.approx(0.95)
    assert lrs.index(max(lrs)) == 29 and lrs[29] == pytest.approx(1.0, rel=1e-12)       # pct_start * total - 1
    assert moms[29] == pytest.approx(0.85) and min(moms) == moms[29]
    assert lrs[99] == pytest.approx(1.0 / 25 / 1e4, rel=1e-9) and moms[99] == pytest.approx(0.95)
    assert all(a < b for a, b in zip(lrs[:29], lrs[1:30])) and all(a > b for a, b in zip(lrs[29:99], lrs[30:]))
    lo = 1.0 / 25 / 1e4
    for t, lr in enumerate(lrs):    # half cosines over [0, 29] and [29, 99]
        up, down = (1 + math.cos(math.pi * t / 29)) / 2, (1 + math.cos(math.pi * (t - 29) / 70)) / 2
        assert lr == pytest.approx(1.0 + (0.04 - 1.0) * up if t <= 29 else lo + (1.0 - lo) * down, rel=1e-12)
    lin = L.OneCycleLR(nn.optim.SGD([nn.Parameter(ag.zeros(1))], lr=1.0, momentum=0.9), max_lr=1.0,
                       total_steps=21, pct_start=0.5, anneal_strategy="linear", div_factor=4.0)
    got = [v[0] for v in _trace(lin, 21)]
    # the first phase ends at 0.5 * 21 - 1 = 9.5, so step 5 is 5 / 9.5 of the way from 0.25 up to 1.0
    assert got[5] == pytest.approx(0.25 + 0.75 * 5 / 9.5, rel=1e-12)
    assert got[20] == pytest.approx(0.25 / 1e4, rel=1e-12)


def test_one_cycle_three_phase_and_betas():
    p = nn.Parameter(ag.zeros(2))
    opt = nn.optim.Adam([p], lr=1.0, betas=(0.9, 0.99))
    s = L.OneCycleLR(opt, max_lr=2.0, total_steps=40, pct_start=0.25, three_phase=True, div_factor=10.0)
    lrs, b1 = [], []
    for _ in range(40):
        lrs.append(s.get_last_lr()[0])
        b1.append(opt.param_groups[0]["betas"][0])
        assert opt.param_groups[0]["betas"][1] == 0.99 and isinstance(opt.param_groups[0]["betas"], tuple)
        p.grad = ag.ones(2)
        opt.step()                              # the optimizer accepts the changed betas
        s.step()
    assert lrs[0] == pytest.approx(0.2) and lrs[9] == pytest.approx(2.0) and lrs[18] == pytest.approx(0.2)
    assert b1[0] == pytest.approx(0.95) and b1[9] == pytest.approx(0.85) and b1[18] == pytest.approx(0.95)
    assert all(v == pytest.approx(0.95) for v in b1[18:])
    assert lrs[39] == pytest.approx(0.2 / 1e4)
    assert (opt.param_groups[0]["initial_lr"], opt.param_groups[0]["max_lr"]) == (pytest.approx(0.2), 2.0)


def test_one_cycle_step_past_the_end_and_short_phases():
    opt = _opt((0.1,))
    s = L.OneCycleLR(opt, max_lr=1.0, total_steps=10, cycle_momentum=False)
    s.step(10)                                   # PyTorch allows total_steps calls after construction
    lr = opt.param_groups[0]["lr"]
    with pytest.raises(ValueError, match="OneCycleLR: tried to step 11 times; .* total steps is 10"):
        s.step()
    assert s.last_epoch == 10 and opt.param_groups[0]["lr"] == lr      # nothing changed
    # pct_start * total_steps == 1: the warm-up phase has no length and starts at its end (max_lr)
    s = L.OneCycleLR(_opt((0.1,)), max_lr=1.0, total_steps=10, pct_start=0.1, cycle_momentum=False)
    assert s.get_last_lr() == [1.0]
    assert L.OneCycleLR(_opt(), max_lr=1.0, epochs=3, steps_per_epoch=7, cycle_momentum=False).total_steps == 21


def test_one_cycle_state_dict_round_trip(tmp_path):
    def build(opt, **kw):
        return L.OneCycleLR(opt, max_lr=[1.0, 0.5], total_steps=30, three_phase=True, **kw)
    opt = nn.optim.SGD([{"params": [nn.Parameter(ag.zeros(1))]}, {"params": [nn.Parameter(ag.zeros(1))]}],
                       lr=0.1, momentum=0.9)
    def trace(s, n):
        out = []
        for _ in range(n):
            out.append((s.get_last_lr(), [g["momentum"] for g in s.optimizer.param_groups]))
            s.step()
        return out

    s = build(opt)
    _trace(s, 11)
    nn.save({"optim": opt.state_dict(), "sched": s.state_dict()}, tmp_path / "o.npz")
    expected = trace(s, 19)
    opt2 = nn.optim.SGD([{"params": [nn.Parameter(ag.zeros(1))]}, {"params": [nn.Parameter(ag.zeros(1))]}],
                        lr=0.7, momentum=0.1)
    s2 = build(opt2, anneal_strategy="linear")
    ck = nn.load(tmp_path / "o.npz")
    opt2.load_state_dict(ck["optim"])
    s2.load_state_dict(ck["sched"])
    assert s2.anneal_strategy == "cos" and opt2.param_groups[1]["max_lr"] == 0.5
    assert trace(s2, 19) == expected
    # resuming with last_epoch, as PyTorch: needs the groups' cycle entries, restored by the optimizer
    opt3 = nn.optim.SGD([{"params": [nn.Parameter(ag.zeros(1))]}, {"params": [nn.Parameter(ag.zeros(1))]}],
                        lr=0.1, momentum=0.9)
    with pytest.raises(KeyError):
        build(opt3, last_epoch=10)
    opt3.load_state_dict(ck["optim"])
    s3 = build(opt3, last_epoch=10)
    assert s3.last_epoch == 11 and s3.get_last_lr() == pytest.approx(expected[0][0], rel=1e-12)
    assert [g["momentum"] for g in opt3.param_groups] == pytest.approx(expected[0][1], rel=1e-12)


# fit's checkpoints (nn.training.checkpoint) hold the scheduler's state_dict through nn.save
@pytest.mark.parametrize("name", ["LambdaLR", "OneCycleLR", "ReduceLROnPlateau"])
def test_new_schedulers_round_trip_through_fit_checkpoints(tmp_path, name):
    from nn.training import History
    from nn.training.checkpoint import _check_scheduler, _resume, _save_checkpoint

    def setup(lr):
        model = nn.Linear(2, 1)
        opt = nn.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        sched = {"LambdaLR": lambda: L.LambdaLR(opt, LAMBDAS["warmup-then-decay"]),
                 "OneCycleLR": lambda: L.OneCycleLR(opt, max_lr=1.0, total_steps=12),
                 "ReduceLROnPlateau": lambda: L.ReduceLROnPlateau(opt, patience=1)}[name]()
        return model, opt, sched

    def step(sched, t):
        if name == "ReduceLROnPlateau":
            sched.step(1.0 if t < 2 else 2.0)
        else:
            sched.step()

    model, opt, sched = setup(0.1)
    for t in range(5):
        step(sched, t)
    path = str(tmp_path / "checkpoint.npz")
    _save_checkpoint(path, model, opt, sched, None, History(), 0, {})
    expected = []
    for t in range(5, 11):
        step(sched, t)
        expected.append(sched.get_last_lr() + [opt.param_groups[0]["momentum"]])

    model2, opt2, sched2 = setup(0.3)
    assert _check_scheduler(nn.load(path)["scheduler"], sched2) == []
    _resume(path, model2, opt2, sched2, None, {}, None)
    got = []
    for t in range(5, 11):
        step(sched2, t)
        got.append(sched2.get_last_lr() + [opt2.param_groups[0]["momentum"]])
    assert got == expected


# errors
@pytest.mark.parametrize("make, exc, match", [
    (lambda o: L.ReduceLROnPlateau(o, factor=1.0), ValueError, r"ReduceLROnPlateau: factor should be < 1\.0, got 1\.0"),
    (lambda o: L.ReduceLROnPlateau(o, factor=2), ValueError, r"ReduceLROnPlateau: factor should be < 1\.0, got 2"),
    (lambda o: L.ReduceLROnPlateau(o, factor=-0.5), ValueError, r"ReduceLROnPlateau: factor .* -0\.5"),
    (lambda o: L.ReduceLROnPlateau(o, mode="mean"), ValueError, r"ReduceLROnPlateau: mode 'mean' is unknown"),
    (lambda o: L.ReduceLROnPlateau(o, threshold_mode="pct"), ValueError,
     r"ReduceLROnPlateau: threshold mode 'pct' is unknown"),
    (lambda o: L.ReduceLROnPlateau(o, min_lr=[0.1, 0.2, 0.3]), ValueError,
     r"ReduceLROnPlateau: expected 2 values for min_lr .* got 3"),
    (lambda o: L.ReduceLROnPlateau(o, patience=-1), ValueError, r"ReduceLROnPlateau: patience .* -1"),
    (lambda o: L.ReduceLROnPlateau(o, cooldown=1.5), ValueError, r"ReduceLROnPlateau: cooldown .* 1\.5"),
    (lambda o: L.ReduceLROnPlateau(object()), TypeError, r"ReduceLROnPlateau: object is not an Optimizer"),
    (lambda o: L.ReduceLROnPlateau(o).step("low"), TypeError, r"ReduceLROnPlateau\.step\(\): the metric must be"),
    (lambda o: L.OneCycleLR(o, max_lr=1.0), ValueError,
     r"OneCycleLR: give either total_steps or both epochs and steps_per_epoch"),
    (lambda o: L.OneCycleLR(o, max_lr=1.0, epochs=3), ValueError, r"OneCycleLR: give either total_steps"),
    (lambda o: L.OneCycleLR(o, max_lr=1.0, total_steps=0), ValueError, r"OneCycleLR: total_steps .* got 0"),
    (lambda o: L.OneCycleLR(o, max_lr=1.0, total_steps=2.5), ValueError, r"OneCycleLR: total_steps .* got 2\.5"),
    (lambda o: L.OneCycleLR(o, max_lr=1.0, epochs=0, steps_per_epoch=3), ValueError, r"OneCycleLR: epochs .* 0"),
    (lambda o: L.OneCycleLR(o, max_lr=1.0, epochs=2, steps_per_epoch=-3), ValueError,
     r"OneCycleLR: steps_per_epoch .* -3"),
    (lambda o: L.OneCycleLR(o, max_lr=1.0, total_steps=5, pct_start=1.5), ValueError,
     r"OneCycleLR: pct_start must be in \[0, 1\], got 1\.5"),
    (lambda o: L.OneCycleLR(o, max_lr=1.0, total_steps=5, anneal_strategy="exp"), ValueError,
     r"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got 'exp'"),
    (lambda o: L.OneCycleLR(o, max_lr=[1.0], total_steps=5), ValueError,
     r"OneCycleLR: expected 2 values for max_lr .* got 1"),
    (lambda o: L.OneCycleLR(o, max_lr=1.0, total_steps=5, div_factor=0), ValueError,
     r"OneCycleLR: div_factor must be positive, got 0"),
    (lambda o: L.OneCycleLR(nn.optim.Adagrad([nn.Parameter(ag.zeros(1))]), max_lr=1.0, total_steps=5),
     ValueError, r"OneCycleLR: Adagrad has no momentum or betas to cycle"),
    (lambda o: L.LambdaLR(o, [LAMBDAS["inverse"]]), ValueError, r"LambdaLR: expected 2 lr_lambdas"),
    (lambda o: L.SequentialLR(o, [L.ReduceLROnPlateau(o), L.StepLR(o, 2)], milestones=[3]), ValueError,
     r"SequentialLR: schedulers\[0\] is a ReduceLROnPlateau"),
])
def test_new_scheduler_errors(make, exc, match):
    opt = _opt((0.1, 0.2))
    before = [dict(g) for g in opt.param_groups]
    with pytest.raises(exc, match=match):
        make(opt)
    if "Sequential" not in match:
        assert [dict(g) for g in opt.param_groups] == before          # a failed construction changes nothing
