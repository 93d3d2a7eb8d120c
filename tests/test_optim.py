"""Optimizers: one-step closed forms (hypothesis), several steps against PyTorch, in-place updates, state
dicts and checkpoints, error paths, gradient clipping."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import autograd as ag
import nn
from nn import optim

# every optimizer with option sets covering each branch of its algorithm
CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.05)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.3, eps=1e-6)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.7)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.05, eps=1e-4)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, betas=(0.85, 0.99))),
    ("AdamW", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
]
NAMES = ["SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW"]


def _cid(c):
    return c[0] + "-" + ",".join(f"{k}={v}" for k, v in c[1].items())


def _param(arr, device="cpu"):
    return nn.Parameter(ag.tensor(np.array(arr), device=device))


def _grad_fn(p, k):
    """A deterministic gradient that depends on the parameter (so trajectories diverge if updates differ)."""
    rng = np.random.default_rng(k)
    return 0.5 * p + np.sin(p) + rng.standard_normal(p.shape)


# --- one step: closed forms in NumPy ------------------------------------------------------------------
def _ref_one_step(name, p, g, kw):
    """The first step of each algorithm from fresh state, written out."""
    lr = kw.get("lr")
    wd = kw.get("weight_decay", 0.0)
    if name == "AdamW":
        p = p * (1 - lr * wd)
        b1, b2 = kw["betas"]
        m, v = (1 - b1) * g, (1 - b2) * g * g
        return p - lr / (1 - b1) * m / (np.sqrt(v) / math.sqrt(1 - b2) + kw["eps"])
    g = g + wd * p
    if name == "SGD":
        mu = kw["momentum"]
        d = g + mu * g if kw["nesterov"] else g      # the buffer starts as g (no dampening on step 1)
        return p - lr * d
    if name == "Adagrad":
        s = kw["initial_accumulator_value"] + g * g
        return p - lr * g / (np.sqrt(s) + kw["eps"])
    if name == "RMSprop":
        a = kw["alpha"]
        v = (1 - a) * g * g
        if kw["centered"]:
            v = v - ((1 - a) * g) ** 2
        return p - lr * g / (np.sqrt(v) + kw["eps"])  # the momentum buffer starts at 0: same first step
    if name == "Adadelta":
        rho, eps = kw["rho"], kw["eps"]
        v = (1 - rho) * g * g
        delta = math.sqrt(eps) / np.sqrt(v + eps) * g
        return p - lr * delta
    if name == "Adam":
        b1, b2 = kw["betas"]
        m, v = (1 - b1) * g, (1 - b2) * g * g
        return p - lr / (1 - b1) * m / (np.sqrt(v) / math.sqrt(1 - b2) + kw["eps"])
    raise AssertionError(name)


_unit = st.floats(0.0, 0.99)
_small = st.floats(0.0, 0.5)
_lr = st.floats(1e-4, 1.0)
_eps = st.sampled_from([1e-10, 1e-8, 1e-6, 1e-3])


@st.composite
def _hyper(draw, name):
    if name == "SGD":
        nesterov = draw(st.booleans())
        mu = draw(st.floats(0.1, 0.99)) if nesterov else draw(_unit)
        damp = 0.0 if nesterov else draw(_small)
        return dict(lr=draw(_lr), momentum=mu, dampening=damp, weight_decay=draw(_small), nesterov=nesterov)
    if name == "Adagrad":
        return dict(lr=draw(_lr), lr_decay=draw(_small), weight_decay=draw(_small),
                    initial_accumulator_value=draw(st.floats(0.0, 2.0)), eps=draw(_eps))
    if name == "RMSprop":
        # alpha near 0 makes the centred v - m**2 = alpha (1 - alpha) g**2 pure cancellation: keep it away
        return dict(lr=draw(_lr), alpha=draw(st.floats(0.05, 0.99)), eps=draw(_eps), weight_decay=draw(_small),
                    momentum=draw(_unit), centered=draw(st.booleans()))
    if name == "Adadelta":
        return dict(lr=draw(_lr), rho=draw(_unit), eps=draw(_eps), weight_decay=draw(_small))
    return dict(lr=draw(_lr), betas=(draw(_unit), draw(st.floats(0.0, 0.999))), eps=draw(_eps),
                weight_decay=draw(_small), amsgrad=draw(st.booleans()))


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_one_step_matches_closed_form(name, data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4), label="shape")
    elems = st.floats(-3, 3, allow_nan=False, width=64)
    p0 = data.draw(hnp.arrays(np.float64, shape, elements=elems), label="p")
    g0 = data.draw(hnp.arrays(np.float64, shape, elements=elems), label="g")
    kw = data.draw(_hyper(name), label="hyper")
    p = _param(p0.copy())
    p.grad = ag.tensor(g0.copy())
    opt = getattr(optim, name)([p], **kw)
    opt.step()
    expected = _ref_one_step(name, p0, g0, {**opt.defaults, **kw})
    np.testing.assert_allclose(p.numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(p.grad.numpy(), g0)      # the gradient is read, never written


# --- several steps against PyTorch ----------------------------------------------------------------------
def _run_pair(name, kw, dtype, steps=8, device="cpu"):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    inits = [rng.standard_normal(s).astype(dtype) for s in [(3, 4), (4,), ()]]
    ps = [_param(a.copy(), device) for a in inits]
    tps = [torch.nn.Parameter(torch.tensor(a.copy())) for a in inits]
    opt = getattr(optim, name)(ps, **kw)
    topt = getattr(torch.optim, name)(tps, foreach=False, **kw)
    datas = [p.array for p in ps]
    for k in range(steps):
        for i, (p, tp) in enumerate(zip(ps, tps)):
            g = _grad_fn(tp.detach().numpy().astype(np.float64), 10 * k + i).astype(dtype)
            p.grad = ag.tensor(g, device=device)
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
    assert all(p.array is d for p, d in zip(ps, datas))      # updated in place, never replaced
    return [p.numpy() for p in ps], [tp.detach().numpy() for tp in tps]


@pytest.mark.parametrize("config", CONFIGS, ids=_cid)
def test_matches_torch_float64(config):
    name, kw = config
    ours, ref = _run_pair(name, kw, np.float64)
    for a, b in zip(ours, ref):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("config", CONFIGS, ids=_cid)
def test_matches_torch_float32(config, device):
    name, kw = config
    ours, ref = _run_pair(name, kw, np.float32, device=device)
    for a, b in zip(ours, ref):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_param_groups_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal(3)
    p, q = _param(a.copy()), _param(b.copy())
    tp, tq = torch.nn.Parameter(torch.tensor(a.copy())), torch.nn.Parameter(torch.tensor(b.copy()))
    opt = optim.Adam([{"params": [p]}, {"params": q, "lr": 0.1, "amsgrad": True}], lr=0.01, weight_decay=0.1)
    topt = torch.optim.Adam([{"params": [tp]}, {"params": tq, "lr": 0.1, "amsgrad": True}], lr=0.01,
                            weight_decay=0.1, foreach=False)
    for k in range(5):
        for t, tt in ((p, tp), (q, tq)):
            g = _grad_fn(tt.detach().numpy(), k)
            t.grad, tt.grad = ag.tensor(g), torch.tensor(g)
        opt.step()
        topt.step()
    np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(q.numpy(), tq.detach().numpy(), rtol=1e-10)
    assert opt.param_groups[1]["lr"] == 0.1 and opt.param_groups[0]["amsgrad"] is False


# --- in place, dtype, no allocation -------------------------------------------------------------------
@pytest.mark.parametrize("config", CONFIGS, ids=_cid)
def test_float32_in_place_and_state_kept(config, device):
    name, kw = config
    p = nn.Parameter(ag.randn(5, 3, device=device))
    q = nn.Parameter(ag.randn(7, device=device))
    opt = getattr(optim, name)([p, q], **kw)
    data = (p.array, q.array)
    versions = (p._version, q._version)
    buffers = None
    for k in range(3):
        p.grad = ag.randn(5, 3, device=device)
        q.grad = ag.randn(7, device=device)
        opt.step()
        now = {(id(t), n): s.array for t in (p, q) for n, s in opt.state[t].items() if isinstance(s, ag.Tensor)}
        if buffers is not None:      # after the first step, no state buffer is replaced
            assert now.keys() == buffers.keys() and all(now[k] is buffers[k] for k in now)
        buffers = now
    assert p.array is data[0] and q.array is data[1]
    assert p.dtype == np.float32 and q.dtype == np.float32
    assert all(s.dtype == np.float32 for s in buffers.values())
    assert (p._version, q._version) == (versions[0] + 3, versions[1] + 3)
    assert p.device == device


@pytest.mark.parametrize("config", CONFIGS, ids=_cid)
def test_step_allocates_no_arrays(config):
    import tracemalloc
    name, kw = config
    ps = [nn.Parameter(ag.randn(200, 100)), nn.Parameter(ag.randn(100))]   # 80 kB of float32 weights
    opt = getattr(optim, name)(ps, **kw)
    for p in ps:
        p.grad = ag.randn(*p.shape)
    opt.step()                      # state and scratch buffers are created here, once
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        opt.step()
        opt.step()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < 16_000, f"a step allocated {peak} bytes"


def test_grad_none_is_skipped():
    p, q = _param([1.0, 2.0]), _param([3.0])
    opt = optim.Adam([p, q], lr=0.1)
    p.grad = ag.tensor([1.0, 1.0], dtype="float64")
    opt.step()
    np.testing.assert_array_equal(q.numpy(), [3.0])
    assert q not in opt.state and q._version == 0
    assert opt.state[p]["step"] == 1


def test_step_never_writes_the_gradient():
    # one gradient Tensor shared by two parameters (as the engine may hand out); weight decay must not leak
    shared = ag.tensor(np.array([0.5, -1.0, 2.0]))
    for name in NAMES:
        p, q = _param([1.0, 2.0, 3.0]), _param([1.0, 2.0, 3.0])
        p.grad = q.grad = shared
        kw = dict(momentum=0.9, weight_decay=0.1, nesterov=True) if name == "SGD" else dict(weight_decay=0.1)
        opt = getattr(optim, name)([p, q], **kw)
        opt.step()
        opt.step()
        np.testing.assert_array_equal(shared.numpy(), [0.5, -1.0, 2.0])
        np.testing.assert_array_equal(p.numpy(), q.numpy())


@pytest.mark.parametrize("name", NAMES)
def test_nan_gradient_gives_nan_parameter_without_error(name):
    p = _param([1.0, 2.0])
    opt = getattr(optim, name)([p])
    p.grad = ag.tensor(np.array([np.nan, 1.0]))
    with np.errstate(invalid="ignore"):
        opt.step()
    assert np.isnan(p.numpy()[0])
    assert np.isfinite(p.numpy()[1])


def test_inplace_update_invalidates_saved_graph():
    p = _param([1.0, 2.0])
    x = ag.tensor(np.array([3.0, 4.0]))
    y = (p * x).sum()               # Mul saves p for its backward (d/dx = p)
    p.grad = ag.tensor(np.array([1.0, 1.0]))
    optim.SGD([p], lr=0.1).step()
    with pytest.raises(ag.GraphError, match="modified"):
        y.backward()


def test_failed_step_changes_nothing():
    p, q = _param([1.0, 2.0]), _param([[1.0, 2.0]])
    opt = optim.Adam([p, q], lr=0.1)
    p.grad = ag.tensor(np.array([1.0, 1.0]))
    q.grad = ag.tensor(np.array([1.0, 1.0]))               # wrong shape: (2,) for a (1, 2) parameter
    with pytest.raises(ValueError, match=r"gradient .*shape \(2,\).*parameter shape \(1, 2\)"):
        opt.step()
    np.testing.assert_array_equal(p.numpy(), [1.0, 2.0])
    assert p._version == 0 and not opt.state
    q.grad = ag.tensor([[1.0, 1.0]])                       # float32 gradient for a float64 parameter
    with pytest.raises(ValueError, match="dtype float32"):
        opt.step()
    np.testing.assert_array_equal(p.numpy(), [1.0, 2.0])
    q.grad = ag.tensor(np.array([[1.0, 1.0]]))
    opt.step()
    assert opt.state[p]["step"] == 1 and opt.state[q]["step"] == 1


def test_invalid_group_value_set_later_fails_before_any_change():
    p, q = _param([1.0]), _param([2.0])
    opt = optim.SGD([{"params": [p]}, {"params": [q]}], lr=0.1)
    p.grad, q.grad = ag.tensor(np.array([1.0])), ag.tensor(np.array([1.0]))
    opt.param_groups[1]["lr"] = -1.0
    with pytest.raises(ValueError, match="learning rate"):
        opt.step()
    np.testing.assert_array_equal(p.numpy(), [1.0])


# --- construction errors --------------------------------------------------------------------------------
def test_construction_errors():
    p = _param([1.0])
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam(iter([]))
    with pytest.raises(ValueError, match="index 1.*same Tensor as index 0"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(TypeError, match="wrap it in a list"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="ordered"):
        optim.SGD({p}, lr=0.1)
    with pytest.raises(TypeError, match="only optimize Tensors"):
        optim.SGD([p, 3.0], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(TypeError, match="floating-point"):
        optim.SGD([ag.tensor([1, 2])], lr=0.1)
    with pytest.raises(ValueError, match="'params'"):
        optim.SGD([{"lr": 0.1}], lr=0.1)


@pytest.mark.parametrize("cls, kw, match", [
    (optim.SGD, dict(lr=-0.1), "learning rate"),
    (optim.SGD, dict(lr=float("nan")), "learning rate"),
    (optim.SGD, dict(lr=0.1, momentum=-0.5), "momentum"),
    (optim.SGD, dict(lr=0.1, weight_decay=-1), "weight_decay"),
    (optim.SGD, dict(lr=0.1, nesterov=True), "Nesterov"),
    (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (optim.Adam, dict(betas=(1.0, 0.999)), "beta parameter at index 0"),
    (optim.Adam, dict(betas=(0.9, -0.1)), "beta parameter at index 1"),
    (optim.Adam, dict(betas=(0.9,)), "betas"),
    (optim.Adam, dict(eps=-1e-8), "epsilon"),
    (optim.AdamW, dict(weight_decay=-0.01), "weight_decay"),
    (optim.Adagrad, dict(lr_decay=-1), "lr_decay"),
    (optim.Adagrad, dict(initial_accumulator_value=-1), "initial_accumulator_value"),
    (optim.RMSprop, dict(alpha=-0.1), "alpha"),
    (optim.Adadelta, dict(rho=1.5), "rho"),
])
def test_invalid_hyperparameters(cls, kw, match):
    with pytest.raises(ValueError, match=match):
        cls([_param([1.0])], **kw)
    with pytest.raises(ValueError, match=match):     # the same check applies to a group's own values
        cls([{"params": [_param([1.0])], **kw}])


def test_hyperparameter_must_be_a_number():
    with pytest.raises(TypeError, match="learning rate"):
        optim.SGD([_param([1.0])], lr=ag.tensor(0.1))


# --- zero_grad, closure, groups ------------------------------------------------------------------------
def test_zero_grad_replaces_gradients():
    p, q = _param([1.0, 2.0]), _param([3.0, 4.0])
    g = ag.tensor(np.array([1.0, 1.0]))
    p.grad = q.grad = g
    opt = optim.SGD([p], lr=0.1)
    opt.zero_grad(set_to_none=False)
    assert p.grad is not g and p.grad.shape == (2,) and not p.grad.numpy().any()
    np.testing.assert_array_equal(q.grad.numpy(), [1.0, 1.0])   # the shared gradient is untouched
    opt.zero_grad()
    assert p.grad is None


def test_step_with_closure():
    p = _param([3.0, -2.0])
    opt = optim.SGD([p], lr=0.25)
    calls = []

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        calls.append(1)
        return loss

    with ag.no_grad():               # the closure still records its graph
        loss = opt.step(closure)
    assert calls and float(loss.item()) == 13.0
    np.testing.assert_allclose(p.numpy(), [1.5, -1.0])     # p - 0.25 * 2p


def test_add_param_group_fills_defaults():
    p, q = _param([1.0]), _param([2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": q, "lr": 0.01})
    g = opt.param_groups[1]
    assert g["params"][0] is q and g["lr"] == 0.01 and g["momentum"] == 0.9 and g["nesterov"] is False
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [p]})
    assert len(opt.param_groups) == 2
    assert "Parameter Group 1" in repr(opt)


def test_learning_rate_changes_are_respected():
    p = _param([1.0])
    opt = optim.SGD([p], lr=0.1)
    p.grad = ag.tensor(np.array([1.0]))
    opt.step()
    opt.param_groups[0]["lr"] = 0.5
    opt.step()
    np.testing.assert_allclose(p.numpy(), [1.0 - 0.1 - 0.5])


def test_worked_example_sgd_step():
    """DESIGN §5: the textbook's two-layer sigmoid network, one SGD step with learning rate 1."""
    x = ag.tensor(np.array([0.35, 0.9]))
    w0 = _param([[0.1, 0.8], [0.4, 0.6]])
    w1 = _param([0.3, 0.9])
    h = (w0 @ x).sigmoid()
    y = (w1 @ h).sigmoid()
    loss = 0.5 * (y - 0.5) ** 2
    opt = optim.SGD([w0, w1], lr=1.0)
    loss.backward()
    opt.step()
    np.testing.assert_allclose(w0.numpy(), [[0.0990709, 0.7976110], [0.3971399, 0.5926455]], atol=1e-7)


@pytest.mark.parametrize("name, lr", [("SGD", 0.1), ("Adagrad", 0.5), ("RMSprop", 0.02), ("Adadelta", 5.0),
                                      ("Adam", 0.05), ("AdamW", 0.05)])
def test_fits_a_linear_regression(name, lr):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3)).astype(np.float32)
    y = X @ np.array([1.5, -2.0, 0.5], dtype=np.float32) + 0.3
    model = nn.Linear(3, 1)
    opt = getattr(optim, name)(model.parameters(), lr=lr)
    xt, yt = ag.tensor(X), ag.tensor(y[:, None])

    def loss_fn():
        return ((model(xt) - yt) ** 2).mean()

    first = float(loss_fn().item())
    for _ in range(150):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert float(loss_fn().item()) < 0.05 * first


# --- state dicts and checkpoints ------------------------------------------------------------------------
def _train(model, opt, steps, seed):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = ag.tensor(rng.standard_normal((8, 4)))
        t = ag.tensor(rng.standard_normal((8, 2)))
        opt.zero_grad()
        ((model(x) - t) ** 2).mean().backward()
        opt.step()


def _model():
    ag.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 2)).double()


@pytest.mark.parametrize("config", [c for c in CONFIGS if len(c[1]) > 1 or c[0] != "SGD"], ids=_cid)
def test_checkpoint_resume_is_exact(config, tmp_path):
    name, kw = config
    ref = _model()
    ref_opt = getattr(optim, name)(ref.parameters(), **kw)
    _train(ref, ref_opt, 3, seed=1)
    nn.save({"model": ref.state_dict(), "optim": ref_opt.state_dict(), "epoch": 3}, tmp_path / "ckpt.npz")
    _train(ref, ref_opt, 4, seed=2)                       # uninterrupted run

    model = _model()
    opt = getattr(optim, name)(model.parameters(), **kw)
    ckpt = nn.load(tmp_path / "ckpt.npz")
    assert ckpt["epoch"] == 3
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optim"])
    _train(model, opt, 4, seed=2)                         # resumed run
    for (n, a), (_, b) in zip(ref.named_parameters(), model.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=n)


def test_state_dict_layout():
    p, q, r = _param([1.0, 2.0]), _param([3.0]), _param([4.0])
    opt = optim.Adam([{"params": [p, q]}, {"params": [r], "lr": 0.1}], lr=0.01)
    p.grad, r.grad = ag.tensor(np.array([1.0, 1.0])), ag.tensor(np.array([1.0]))
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    assert sd["param_groups"][1]["lr"] == 0.1 and sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sorted(sd["state"]) == [0, 2]                  # q never had a gradient
    assert sd["state"][0]["step"] == 1 and set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}


def test_load_state_dict_casts_copies_and_checks():
    p = _param([1.0, 2.0])
    opt = optim.Adam([p], lr=0.01)
    p.grad = ag.tensor(np.array([1.0, -1.0]))
    opt.step()
    sd = opt.state_dict()
    q = nn.Parameter(ag.tensor([1.0, 2.0]))               # float32 this time
    opt2 = optim.Adam([q], lr=0.5)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.param_groups[0]["params"][0] is q
    st_ = opt2.state[q]
    assert st_["exp_avg"].dtype == np.float32 and st_["step"] == 1
    sd["state"][0]["exp_avg"].array[...] = 99.0            # no memory shared with the loaded dict
    assert not (st_["exp_avg"].numpy() == 99.0).any()
    # numpy arrays (e.g. converted from a PyTorch state dict) and string indices are accepted
    opt3 = optim.Adam([nn.Parameter(ag.tensor([0.0, 0.0]))])
    opt3.load_state_dict({"state": {"0": {"step": np.array(4.0), "exp_avg": np.zeros(2),
                                          "exp_avg_sq": np.ones(2)}},
                          "param_groups": [dict(sd["param_groups"][0])]})
    assert next(iter(opt3.state.values()))["step"] == 4

    before = opt2.state_dict()
    bad_shape = {"state": {0: {"step": 1, "exp_avg": np.zeros(3), "exp_avg_sq": np.zeros(2)}},
                 "param_groups": sd["param_groups"]}
    with pytest.raises(ValueError, match=r"'exp_avg'.*shape \(3,\)"):
        opt2.load_state_dict(bad_shape)
    with pytest.raises(ValueError, match="parameter group"):
        opt2.load_state_dict({"state": {}, "param_groups": sd["param_groups"] * 2})
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt2.load_state_dict({"state": {}, "param_groups": [{**sd["param_groups"][0], "params": [0, 1]}]})
    with pytest.raises(ValueError, match="learning rate"):
        opt2.load_state_dict({"state": {}, "param_groups": [{**sd["param_groups"][0], "lr": -1.0}]})
    after = opt2.state_dict()                             # failed loads left everything as it was
    assert after["param_groups"] == before["param_groups"] and after["state"][0] is not None
    assert opt2.state[q] is st_


def test_state_of_another_optimizer_is_refused():
    p = _param([1.0, 2.0])
    sgd = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = ag.tensor(np.array([1.0, 1.0]))
    sgd.step()
    adam = optim.Adam([p])
    with pytest.raises(ValueError, match="lacks"):
        adam.load_state_dict(sgd.state_dict())
    assert not adam.state


def test_state_follows_a_parameter_cast_after_construction():
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad = ag.ones_like(p)
    opt.step()
    model.double()                                   # same Parameter objects, new float64 data
    for p in model.parameters():
        p.grad = ag.ones_like(p)
    opt.step()
    for p in model.parameters():
        assert p.dtype == np.float64 and opt.state[p]["exp_avg"].dtype == np.float64
        assert opt.state[p]["step"] == 2


def test_optimizer_state_through_torch_layout():
    """A PyTorch Adam state dict converted to NumPy arrays continues the same trajectory here."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a = rng.standard_normal(4)
    tp = torch.nn.Parameter(torch.tensor(a.copy()))
    topt = torch.optim.Adam([tp], lr=0.05, foreach=False)
    for k in range(3):
        tp.grad = torch.tensor(_grad_fn(tp.detach().numpy(), k))
        topt.step()
    tsd = topt.state_dict()
    sd = {"state": {i: {k: v.numpy() for k, v in s.items()} for i, s in tsd["state"].items()},
          "param_groups": [{k: v for k, v in g.items() if k in ("params", "lr", "betas", "eps", "weight_decay",
                                                                 "amsgrad")} for g in tsd["param_groups"]]}
    p = _param(tp.detach().numpy().copy())
    opt = optim.Adam([p])
    opt.load_state_dict(sd)
    for k in range(3, 6):
        g = _grad_fn(tp.detach().numpy(), k)
        tp.grad, p.grad = torch.tensor(g), ag.tensor(g)
        topt.step()
        opt.step()
    np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-12)


# --- gradient clipping ----------------------------------------------------------------------------------
@given(data=st.data())
def test_clip_grad_norm_total_norm_and_scaling(data):
    norm_type = data.draw(st.sampled_from([1.0, 2.0, 3.0, math.inf]), label="norm_type")
    shapes = data.draw(st.lists(hnp.array_shapes(min_dims=0, max_dims=2, max_side=4), min_size=1, max_size=3))
    grads = [data.draw(hnp.arrays(np.float64, s, elements=st.floats(-10, 10)), label="g") for s in shapes]
    max_norm = data.draw(st.floats(0.01, 20.0), label="max_norm")
    ps = [_param(np.zeros(s)) for s in shapes]
    originals = [ag.tensor(g.copy()) for g in grads]
    for p, g in zip(ps, originals):
        p.grad = g
    total = optim.clip_grad_norm_(ps, max_norm, norm_type)
    flat = np.concatenate([g.ravel() for g in grads])
    expected = np.linalg.norm(flat, ord=norm_type) if flat.size else 0.0
    assert isinstance(total, ag.Tensor)
    np.testing.assert_allclose(float(total.item()), expected, rtol=1e-10, atol=1e-12)
    coef = min(1.0, max_norm / (expected + 1e-6))
    for p, g, orig in zip(ps, grads, originals):
        assert p.grad is not orig                                 # replaced, not written
        np.testing.assert_array_equal(orig.numpy(), g)
        np.testing.assert_allclose(p.grad.numpy(), g * coef, rtol=1e-12)
    new = np.concatenate([p.grad.numpy().ravel() for p in ps])
    assert (np.linalg.norm(new, ord=norm_type) if new.size else 0.0) <= max_norm * (1 + 1e-9)


def test_clip_grad_norm_details():
    p, q = nn.Parameter(ag.tensor([3.0, 4.0])), nn.Parameter(ag.tensor([1.0]))
    p.grad = ag.tensor([3.0, 4.0])
    total = nn.utils.clip_grad_norm_([p, q], 1.0)            # q has no gradient: skipped
    assert total.dtype == np.float32 and p.grad.dtype == np.float32 and q.grad is None
    np.testing.assert_allclose(float(total.item()), 5.0)
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    p.grad = ag.tensor([0.3, 0.4])
    nn.utils.clip_grad_norm_(p, 1.0)                         # a single tensor; under the limit: unchanged
    np.testing.assert_allclose(p.grad.numpy(), [0.3, 0.4])
    assert float(optim.clip_grad_norm_([q], 1.0).item()) == 0.0
    p.grad = ag.tensor([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        optim.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    with pytest.raises(ValueError, match="norm_type"):
        optim.clip_grad_norm_([p], 1.0, norm_type=0)


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    gs = [rng.standard_normal((3, 4)) * 5, rng.standard_normal(6)]
    for norm_type in (2.0, 1.0, math.inf):
        ps = [_param(np.zeros_like(g)) for g in gs]
        tps = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in gs]
        for p, tp, g in zip(ps, tps, gs):
            p.grad, tp.grad = ag.tensor(g.copy()), torch.tensor(g.copy())
        a = optim.clip_grad_norm_(ps, 2.0, norm_type)
        b = torch.nn.utils.clip_grad_norm_(tps, 2.0, norm_type)
        np.testing.assert_allclose(float(a.item()), float(b), rtol=1e-12)
        for p, tp in zip(ps, tps):
            np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12)


def test_clip_grad_value():
    p, q = _param([0.0, 0.0, 0.0]), _param([0.0])
    g = ag.tensor(np.array([-3.0, 0.5, 2.0]))
    p.grad = g
    optim.clip_grad_value_([p, q], 1.0)
    np.testing.assert_array_equal(p.grad.numpy(), [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(g.numpy(), [-3.0, 0.5, 2.0])
    assert q.grad is None and nn.utils.clip_grad_value_ is optim.clip_grad_value_
    f = nn.Parameter(ag.tensor([5.0]))
    f.grad = ag.tensor([5.0])
    nn.utils.clip_grad_value_(f, 0.5)
    assert f.grad.dtype == np.float32 and float(f.grad.item()) == 0.5
    with pytest.raises(ValueError, match="clip_value"):
        optim.clip_grad_value_([p], -1.0)
