"""Gradient audit: passes real models, catches a wrong backward inside one, leaves the trained model alone."""
from __future__ import annotations

import numpy as np
import pytest

import autograd as ag
import nn


class WrongSquare(ag.Function):
    """f = x²  with a deliberately wrong backward (x instead of 2x)."""
    exempt = "test helper with a wrong backward"

    def forward(self, x):
        return x * x

    def backward(self, gy):
        return gy * self.inputs[0]


class Square(nn.Module):
    def __init__(self, wrong: bool):
        super().__init__()
        self.wrong = wrong

    def forward(self, x):
        return WrongSquare.apply(x) if self.wrong else x * x


def _model(wrong=False):
    ag.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Dropout(0.3), nn.Linear(64, 16), Square(wrong), nn.Linear(16, 10))


def _batch():
    rng = np.random.default_rng(0)
    return ag.tensor(rng.standard_normal((8, 1, 8, 8)).astype(np.float32)), ag.tensor(rng.integers(0, 10, 8))


def test_a_correct_model_passes_and_is_left_untouched():
    m = _model()
    x, y = _batch()
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    report = ag.audit(m, nn.CrossEntropyLoss(), x, y)
    assert report.ok and len(report.backward) == 2 and report.seconds > 0
    np.testing.assert_allclose(report.backward, report.numeric, rtol=1e-5)
    assert m.training and all(p.dtype == np.float32 and p.grad is None for p in m.parameters())
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)


def test_a_wrong_backward_is_caught():
    x, y = _batch()
    with pytest.raises(ag.GradientAuditError, match="MISMATCH"):
        ag.audit(_model(wrong=True), nn.CrossEntropyLoss(), x, y)
    report = ag.audit(_model(wrong=True), nn.CrossEntropyLoss(), x, y, raise_on_mismatch=False)
    assert not report.ok


def test_auditor_checks_every_nth_step_and_raises_there():
    x, y = _batch()
    good = ag.audit(_model(), nn.CrossEntropyLoss(), every=3)
    assert [good.step(x, y) is None for _ in range(6)] == [True, True, False, True, True, False]
    assert [r.step for r in good.reports] == [3, 6] and all(r.ok for r in good.reports)
    bad = ag.audit(_model(wrong=True), nn.CrossEntropyLoss(), every=2)
    assert bad.step(x, y) is None
    with pytest.raises(ag.GradientAuditError, match="at step 2"):
        bad.step(x, y)


def test_bad_arguments():
    m = _model()
    with pytest.raises(TypeError, match="audit: give a batch"):
        ag.audit(m, nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match="every must be a positive integer"):
        ag.audit(m, nn.CrossEntropyLoss(), every=0)
    x, y = _batch()
    with pytest.raises(TypeError, match="one-element Tensor"):
        ag.audit(m, lambda out, t: out, x, y)


def test_a_relu_kink_inside_the_finite_step_is_not_a_mismatch():
    """After a few Adam steps a ReLU pre-activation sits at ~4e-9, inside the 1e-6 step: the smaller step of
    the audit's second try agrees, so the (correct) model passes."""
    from nn.models import textbook_mlp
    lf = nn.CrossEntropyLoss()
    ag.manual_seed(0)
    m = textbook_mlp()
    rng = np.random.default_rng(0)
    x = ag.tensor(rng.standard_normal((64, 784)).astype(np.float32))
    y = ag.tensor(rng.integers(0, 10, 64))
    opt = nn.optim.Adam(m.parameters())
    for _ in range(8):
        opt.zero_grad()
        lf(m(x), y).backward()
        opt.step()
    assert ag.audit(m, lf, x, y, directions=3).ok
