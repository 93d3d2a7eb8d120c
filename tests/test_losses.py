"""Losses against PyTorch (values and gradients, every reduction), stability, and bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autograd as ag
import nn
import nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
REDUCTIONS = ["mean", "sum", "none"]


def pair(a):
    a = np.asarray(a, dtype=np.float64)
    return ag.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def check(ours, theirs, inputs, rtol=1e-10, atol=1e-12):
    """Values equal, and gradients of a random projection equal, for paired (ours, torch) inputs."""
    y, yt = ours, theirs
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(0).standard_normal(yt.shape)
    y.backward(ag.tensor(g))
    yt.backward(torch.tensor(g))
    for a, b in inputs:
        if b.grad is not None:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol * 100, atol=atol * 100)


# --- regression losses ----------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse", "l1", "huber", "smooth_l1"])
def test_regression_losses_match_torch(name, reduction):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 3)) * 2, rng.standard_normal((4, 3))
    (x, xt), (y, yt) = pair(a), pair(b)
    ours = {"mse": lambda: F.mse_loss(x, y, reduction), "l1": lambda: F.l1_loss(x, y, reduction),
            "huber": lambda: F.huber_loss(x, y, reduction, delta=0.7),
            "smooth_l1": lambda: F.smooth_l1_loss(x, y, reduction, beta=0.7)}[name]()
    theirs = {"mse": lambda: TF.mse_loss(xt, yt, reduction=reduction),
              "l1": lambda: TF.l1_loss(xt, yt, reduction=reduction),
              "huber": lambda: TF.huber_loss(xt, yt, reduction=reduction, delta=0.7),
              "smooth_l1": lambda: TF.smooth_l1_loss(xt, yt, reduction=reduction, beta=0.7)}[name]()
    check(ours, theirs, [(x, xt), (y, yt)])


def test_loss_modules_match_functional():
    rng = np.random.default_rng(2)
    x, y = ag.tensor(rng.standard_normal((5, 2))), ag.tensor(rng.standard_normal((5, 2)))
    assert nn.MSELoss()(x, y).item() == F.mse_loss(x, y).item()
    assert nn.MSELoss(reduction="sum")(x, y).item() == F.mse_loss(x, y, "sum").item()
    assert nn.L1Loss()(x, y).item() == F.l1_loss(x, y).item()
    assert nn.HuberLoss(delta=2.0)(x, y).item() == F.huber_loss(x, y, delta=2.0).item()
    assert nn.SmoothL1Loss(beta=0.5)(x, y).item() == F.smooth_l1_loss(x, y, beta=0.5).item()
    np.testing.assert_allclose(F.smooth_l1_loss(x, y, beta=0.0).item(), F.l1_loss(x, y).item())


def test_half_mse_is_half_of_mse_with_gradient_residual():
    x, y = ag.tensor([[1.0], [3.0]], requires_grad=True), ag.tensor([[0.0], [1.0]])
    assert nn.MSELoss(half=True)(x, y).item() == pytest.approx(0.5 * F.mse_loss(x, y).item())
    loss = F.half_mse_loss(x, y, reduction="sum")
    assert loss.item() == pytest.approx(0.5 * (1 + 4))
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), [[1.0], [2.0]])          # d/dŷ ½(ŷ−y)² = ŷ − y
    assert F.mse_loss(x, y, half=True, reduction="none").shape == (2, 1)


def test_regression_shape_mismatch_and_bad_reduction():
    with pytest.raises(ValueError, match="target shape"):
        F.mse_loss(ag.randn(4, 1), ag.randn(4))
    with pytest.raises(ValueError, match="reduction"):
        F.l1_loss(ag.randn(3), ag.randn(3), reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="max")


def test_regression_targets_as_arrays_keep_float32():
    x = ag.randn(3, 2)
    loss = F.mse_loss(x, np.zeros((3, 2)))       # a float64 NumPy target must not promote
    assert loss.dtype == np.float32
    w64 = np.ones(2)                             # nor float64 weights
    assert nn.BCEWithLogitsLoss(w64, pos_weight=w64)(x, np.ones((3, 2))).dtype == np.float32
    assert nn.BCELoss(w64)(F.sigmoid(x), np.ones((3, 2))).dtype == np.float32
    assert nn.CrossEntropyLoss(w64)(x, np.array([0, 1, 1])).dtype == np.float32


# --- cross-entropy --------------------------------------------------------------------------


@given(n=st.integers(1, 6), c=st.integers(1, 5), reduction=st.sampled_from(REDUCTIONS),
       smoothing=st.sampled_from([0.0, 0.1, 0.3]), use_weight=st.booleans(), ignore=st.booleans(),
       spatial=st.sampled_from([(), (3,), (2, 2)]), seed=st.integers(0, 1000))
@settings(max_examples=40)
def test_cross_entropy_class_indices_match_torch(n, c, reduction, smoothing, use_weight, ignore, spatial, seed):
    rng = np.random.default_rng(seed)
    (x, xt) = pair(rng.standard_normal((n, c) + spatial) * 3)
    labels = rng.integers(0, c, (n,) + spatial)
    if ignore and labels.size > 1:
        labels.reshape(-1)[1::2] = -1
    weight = rng.uniform(0.5, 2.0, c) if use_weight else None
    kw = dict(reduction=reduction, label_smoothing=smoothing, ignore_index=-1)
    ours = F.cross_entropy(x, ag.tensor(labels), None if weight is None else ag.tensor(weight), **kw)
    theirs = TF.cross_entropy(xt, torch.tensor(labels), None if weight is None else torch.tensor(weight), **kw)
    check(ours, theirs, [(x, xt)], rtol=1e-9)


@given(n=st.integers(1, 5), c=st.integers(1, 5), reduction=st.sampled_from(REDUCTIONS),
       smoothing=st.sampled_from([0.0, 0.2]), use_weight=st.booleans(), spatial=st.sampled_from([(), (3,)]),
       seed=st.integers(0, 1000))
@settings(max_examples=30)
def test_cross_entropy_probability_targets_match_torch(n, c, reduction, smoothing, use_weight, spatial, seed):
    rng = np.random.default_rng(seed)
    (x, xt) = pair(rng.standard_normal((n, c) + spatial) * 3)
    p = rng.uniform(0, 1, (n, c) + spatial)
    (t, tt) = pair(p / p.sum(axis=1, keepdims=True))
    weight = rng.uniform(0.5, 2.0, c) if use_weight else None
    ours = F.cross_entropy(x, t, None if weight is None else ag.tensor(weight), reduction=reduction,
                           label_smoothing=smoothing)
    theirs = TF.cross_entropy(xt, tt, None if weight is None else torch.tensor(weight), reduction=reduction,
                              label_smoothing=smoothing)
    check(ours, theirs, [(x, xt), (t, tt)], rtol=1e-9)


def test_cross_entropy_one_hot_targets_equal_index_targets():
    rng = np.random.default_rng(5)
    x = ag.tensor(rng.standard_normal((6, 4)))
    labels = rng.integers(0, 4, 6)
    by_index = F.cross_entropy(x, ag.tensor(labels)).item()
    onehot = F.one_hot(ag.tensor(labels), 4)
    assert onehot.dtype == np.int64 and onehot.shape == (6, 4)
    assert F.cross_entropy(x, onehot).item() == pytest.approx(by_index, rel=1e-12)
    assert F.cross_entropy(x, onehot.astype("float64")).item() == pytest.approx(by_index, rel=1e-12)


def test_cross_entropy_single_sample_and_module():
    rng = np.random.default_rng(6)
    x = rng.standard_normal(5)
    ours = nn.CrossEntropyLoss()(ag.tensor(x), ag.tensor(np.int64(3)))
    theirs = torch.nn.CrossEntropyLoss()(torch.tensor(x), torch.tensor(3))
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)
    w = [1.0, 2.0, 0.5, 1.0, 3.0]
    xb = rng.standard_normal((4, 5))
    ours = nn.CrossEntropyLoss(weight=w, label_smoothing=0.2, ignore_index=1)(ag.tensor(xb), ag.tensor([1, 0, 4, 2]))
    theirs = torch.nn.CrossEntropyLoss(weight=torch.tensor(w, dtype=torch.float64), label_smoothing=0.2,
                                       ignore_index=1)(torch.tensor(xb), torch.tensor([1, 0, 4, 2]))
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)


def test_cross_entropy_float32_large_logits_finite_and_correct():
    x = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3], [3e4, 3e4, -3e4]], np.float32)
    labels = np.array([1, 1, 0])
    xs = ag.tensor(x, requires_grad=True)
    loss = F.cross_entropy(xs, ag.tensor(labels), reduction="none")
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss.numpy(), [2e4, 0.0, np.log(2)], rtol=1e-6)
    loss.sum().backward()
    g = xs.grad.numpy()
    assert np.all(np.isfinite(g)) and xs.grad.dtype == np.float32
    np.testing.assert_allclose(g, [[1, -1, 0], [0, 0, 0], [-0.5, 0.5, 0]], atol=1e-6)
    xt = torch.tensor(x, requires_grad=True)
    tl = TF.cross_entropy(xt, torch.tensor(labels), label_smoothing=0.1)
    ol = F.cross_entropy(ag.tensor(x), ag.tensor(labels), label_smoothing=0.1)
    assert ol.item() == pytest.approx(tl.item(), rel=1e-5)


def test_cross_entropy_uses_one_fused_node():
    loss = F.cross_entropy(ag.randn(4, 3, requires_grad=True), ag.tensor([0, 1, 2, 0]), reduction="none")
    assert type(loss.creator).__name__ == "SoftmaxCrossEntropy"


def test_cross_entropy_reduces_inside_its_node():
    """'mean' and 'sum' happen in the fused node: one graph node, gradients as the two-step reduction."""
    x = ag.randn(5, 4, requires_grad=True)
    labels = ag.tensor([0, 3, -100, 1, 3])
    for reduction in ("mean", "sum"):
        loss = F.cross_entropy(x, labels, reduction=reduction)
        assert type(loss.creator).__name__ == "SoftmaxCrossEntropy" and loss.shape == ()
        rows = F.cross_entropy(x, labels, reduction="none")
        ref = rows.sum() * (0.25 if reduction == "mean" else 1.0)      # 4 labels counted
        np.testing.assert_allclose(loss.item(), ref.item(), rtol=1e-6)
        g, = ag.grad(loss, [x])
        gr, = ag.grad(ref, [x])
        np.testing.assert_allclose(g.numpy(), gr.numpy(), rtol=1e-6, atol=1e-7)


def test_cross_entropy_all_ignored_is_nan_like_torch():
    x = ag.randn(2, 3, requires_grad=True)
    loss = F.cross_entropy(x, ag.tensor([-100, -100]))
    assert np.isnan(loss.item())
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)      # PyTorch: a nan loss but a zero gradient


def test_cross_entropy_bad_labels():
    x = ag.randn(3, 4)
    with pytest.raises(IndexError, match="label 4 is out of range for 4 classes"):
        F.cross_entropy(x, ag.tensor([0, 4, 1]))
    with pytest.raises(IndexError, match="-2"):
        F.cross_entropy(x, ag.tensor([0, -2, 1]))
    with pytest.raises(TypeError, match="must be integers"):
        F.cross_entropy(x, ag.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="does not match"):
        F.cross_entropy(x, ag.tensor([0, 1]))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, ag.tensor([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="weight"):
        F.cross_entropy(x, ag.tensor([0, 1, 2]), ag.ones(3))


def test_nll_loss_matches_torch_and_composes_to_cross_entropy():
    rng = np.random.default_rng(7)
    (x, xt) = pair(rng.standard_normal((5, 4)))
    labels = np.array([0, 3, -100, 2, 1])
    w = rng.uniform(0.5, 2, 4)
    for reduction in REDUCTIONS:
        x.grad, xt.grad = None, None
        ours = F.nll_loss(F.log_softmax(x, dim=1), ag.tensor(labels), ag.tensor(w), reduction=reduction)
        theirs = TF.nll_loss(torch.log_softmax(xt, 1), torch.tensor(labels), torch.tensor(w), reduction=reduction)
        check(ours, theirs, [(x, xt)])
    assert nn.NLLLoss()(F.log_softmax(x, 1), ag.tensor(labels)).item() == pytest.approx(
        F.cross_entropy(x, ag.tensor(labels)).item(), rel=1e-12)


# --- binary cross-entropy -------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_matches_torch(reduction):
    rng = np.random.default_rng(8)
    (p, pt) = pair(rng.uniform(0.02, 0.98, (4, 3)))
    (y, yt) = pair(rng.uniform(0, 1, (4, 3)))
    w = rng.uniform(0.5, 2, 3)
    check(F.binary_cross_entropy(p, y, ag.tensor(w), reduction),
          TF.binary_cross_entropy(pt, yt, torch.tensor(w), reduction=reduction), [(p, pt), (y, yt)])


def test_bce_clamps_logs_at_minus_100_like_torch():
    p = np.array([0.0, 1.0, 0.0, 1.0, 1e-50, 0.5])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    (ps, pt), (ys, yt) = pair(p), pair(y)
    ours = F.binary_cross_entropy(ps, ys, reduction="none")
    theirs = TF.binary_cross_entropy(pt, yt, reduction="none")
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy())
    np.testing.assert_allclose(ours.numpy()[:2], 100.0)
    ours.sum().backward()
    assert np.all(np.isfinite(ps.grad.numpy()))
    theirs.sum().backward()
    np.testing.assert_allclose(ps.grad.numpy(), pt.grad.numpy(), rtol=1e-8)   # torch rounds its 1e-12 to float32
    p32 = ag.tensor(np.array([0.0, 1.0], np.float32))
    np.testing.assert_allclose(F.binary_cross_entropy(p32, ag.tensor([1.0, 0.0]), reduction="none").numpy(), 100)


def test_bce_rejects_probabilities_outside_unit_interval():
    for bad in ([0.5, 1.2], [-0.1, 0.5], [0.5, float("nan")]):
        with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
            nn.BCELoss()(ag.tensor(bad), ag.tensor([1.0, 0.0]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("use_pw", [False, True])
def test_bce_with_logits_matches_torch(reduction, use_pw):
    rng = np.random.default_rng(9)
    (x, xt) = pair(rng.standard_normal((5, 3)) * 4)
    (y, yt) = pair(rng.uniform(0, 1, (5, 3)))
    pw = rng.uniform(0.5, 3, 3)
    w = rng.uniform(0.5, 2, (5, 1))
    ours = nn.BCEWithLogitsLoss(ag.tensor(w), reduction, ag.tensor(pw) if use_pw else None)(x, y)
    theirs = torch.nn.BCEWithLogitsLoss(torch.tensor(w), reduction=reduction,
                                        pos_weight=torch.tensor(pw) if use_pw else None)(xt, yt)
    check(ours, theirs, [(x, xt), (y, yt)])


def test_bce_with_logits_is_stable_for_huge_logits():
    x = ag.tensor(np.array([1e4, -1e4, 100.0, -100.0, 0.0], np.float32), requires_grad=True)
    y = ag.tensor(np.array([0.0, 1.0, 1.0, 0.0, 1.0], np.float32))
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [1e4, 1e4, 0.0, 0.0, np.log(2)], rtol=1e-6, atol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1, -1, 0, 0, -0.5], atol=1e-6)
    # equals sigmoid + BCE where that is representable
    z = ag.tensor(np.linspace(-5, 5, 11))
    t = ag.tensor(np.linspace(0, 1, 11))
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(z, t).item(),
                               F.binary_cross_entropy(F.sigmoid(z), t).item(), rtol=1e-10)


# --- penalties ------------------------------------------------------------------------------


def test_l2_and_l1_penalties():
    model = nn.Linear(3, 2)
    w, b = model.weight.numpy(), model.bias.numpy()
    l2 = F.l2_penalty(model.parameters())
    assert l2.item() == pytest.approx(0.5 * ((w ** 2).sum() + (b ** 2).sum()), rel=1e-6)
    l2.backward()
    np.testing.assert_allclose(model.weight.grad.numpy(), w, rtol=1e-6)     # gradient of ½‖p‖² is p
    model.zero_grad()
    l1 = F.l1_penalty([model.weight])
    assert l1.item() == pytest.approx(np.abs(w).sum(), rel=1e-6)
    l1.backward()
    np.testing.assert_array_equal(model.weight.grad.numpy(), np.sign(w))
    assert F.l2_penalty(model.weight).item() == pytest.approx(0.5 * (w ** 2).sum(), rel=1e-6)
    with pytest.raises(ValueError):
        F.l1_penalty([])
