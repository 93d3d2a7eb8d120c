"""The model zoo: parameter counts, output shapes, a forward/backward, and a short run where the loss falls."""
from __future__ import annotations

import numpy as np
import pytest

import autograd as ag
import nn
from nn import models


def _count(m) -> int:
    return sum(p.numel() for p in m.parameters())


def test_lenet5_parameter_count_and_shape():
    m = models.lenet5()
    assert _count(m) == 61_706
    assert m(ag.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("build,count", [(models.alexnet, 61_100_840), (models.resnet18, 11_689_512)])
def test_torchvision_parameter_counts(build, count):
    assert _count(build(3, 1000)) == count


def test_vgg11_parameter_count():
    assert _count(models.vgg11(3, 1000)) == 132_863_336


@pytest.mark.parametrize("name,build,shape", [
    ("alexnet", lambda: models.alexnet(1, 10), (1, 1, 224, 224)),
    ("vgg11/8", lambda: models.vgg11(1, 10, width_divisor=8), (1, 1, 224, 224)),
    ("nin", lambda: models.nin(1, 10), (1, 1, 224, 224)),
    ("googlenet", lambda: models.googlenet(1, 10), (1, 1, 96, 96)),
    ("resnet18", lambda: models.resnet18(1, 10), (2, 1, 28, 28)),
    ("textbook_cnn", lambda: models.textbook_cnn(), (2, 1, 28, 28)),
    ("textbook_mlp", lambda: models.textbook_mlp(), (2, 1, 28, 28)),
    ("textbook_rnn", lambda: models.textbook_rnn(), (2, 28, 28)),
    ("lstm", lambda: models.textbook_rnn("lstm"), (2, 1, 28, 28)),
])
def test_output_shape_and_backward(name, build, shape):
    ag.manual_seed(0)
    m = build()
    out = m(ag.randn(*shape))
    assert out.shape == (shape[0], 10), name
    out.sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in m.parameters()), name


@pytest.mark.parametrize("build", [models.lenet5, lambda: models.resnet18(1, 10), models.textbook_cnn,
                                   lambda: models.textbook_rnn("gru")])
def test_short_training_run_lowers_the_loss(build):
    ag.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    m = build()
    opt = nn.optim.Adam(m.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = ag.tensor(x), ag.tensor(y)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = loss_fn(m(xt), yt)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
