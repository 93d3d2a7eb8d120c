"""End-to-end learning: the textbook's worked example, logic gates, XOR, linear and softmax regression.

Training uses a minimal in-place SGD step (``p.array -= lr * p.grad.array`` under no_grad) so these tests do not
depend on nn.optim. All runs are seeded and deterministic.
"""
from __future__ import annotations

import numpy as np
import pytest

import autograd as ag
import nn
import nn.functional as F


def sgd_step(params, lr):
    with ag.no_grad():
        for p in params:
            if p.grad is not None:
                p.array -= lr * p.grad.array
                p._version += 1


def train(model, loss_fn, x, y, lr, steps, batch=None, seed=0):
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    for _ in range(steps):
        if batch is None:
            xb, yb = x, y
        else:
            idx = rng.choice(n, batch, replace=False)
            xb, yb = x[idx], y[idx]
        model.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        sgd_step(model.parameters(), lr)
    return loss.item()


def test_worked_example_design_section_5():
    """x = [0.35, 0.9], sigmoid layers W0 (2x2) and W1 (1x2) without bias, C = ½(y − 0.5)², one SGD step, lr 1."""
    net = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Sigmoid(), nn.Linear(2, 1, bias=False), nn.Sigmoid())
    net.double()
    net.load_state_dict({"0.weight": np.array([[0.1, 0.8], [0.4, 0.6]]), "2.weight": np.array([[0.3, 0.9]])})
    x = ag.tensor(np.array([[0.35, 0.9]]))
    hidden = net[1](net[0](x))
    np.testing.assert_allclose(hidden.numpy(), [[0.6802672, 0.6637387]], atol=5e-8)
    y = net(x)
    np.testing.assert_allclose(y.item(), 0.6902835, atol=5e-8)
    loss = nn.MSELoss(half=True)(y, ag.tensor(np.array([[0.5]])))
    np.testing.assert_allclose(loss.item(), 0.0181039, atol=5e-8)
    loss.backward()
    np.testing.assert_allclose(net[2].weight.grad.numpy(), [[0.0276740, 0.0270016]], atol=5e-8)
    np.testing.assert_allclose(net[0].weight.grad.numpy(), [[0.00092907, 0.00238904], [0.00286008, 0.00735448]],
                               atol=5e-9)
    sgd_step(net.parameters(), lr=1.0)
    np.testing.assert_allclose(net[0].weight.numpy(), [[0.0990709, 0.7976110], [0.3971399, 0.5926455]], atol=5e-8)
    np.testing.assert_allclose(net[2].weight.numpy(), [[0.3 - 0.0276740, 0.9 - 0.0270016]], atol=5e-8)


GATES = {"AND": [0, 0, 0, 1], "NAND": [1, 1, 1, 0], "OR": [0, 1, 1, 1]}


@pytest.mark.parametrize("gate", sorted(GATES))
def test_single_perceptron_learns_logic_gate(gate):
    ag.manual_seed(0)
    x = ag.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = ag.tensor(np.array(GATES[gate], np.float32).reshape(4, 1))
    model = nn.Sequential(nn.Linear(2, 1), nn.Sigmoid())
    loss = train(model, nn.BCELoss(), x, y, lr=2.0, steps=300)
    assert loss < 0.1
    np.testing.assert_array_equal((model(x).numpy() > 0.5).astype(int).ravel(), GATES[gate])


def test_xor_needs_and_learns_with_one_hidden_layer():
    x = ag.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = ag.tensor(np.array([[0], [1], [1], [0]], np.float32))
    ag.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    loss = train(model, nn.BCEWithLogitsLoss(), x, y, lr=1.0, steps=300)
    assert loss < 0.05
    np.testing.assert_array_equal((model(x).numpy() > 0).astype(int).ravel(), [0, 1, 1, 0])
    # a single perceptron cannot: it stays at the best linear fit
    ag.manual_seed(0)
    linear = nn.Linear(2, 1)
    assert train(linear, nn.BCEWithLogitsLoss(), x, y, lr=1.0, steps=300) > 0.6


def test_linear_regression_recovers_known_weights():
    rng = np.random.default_rng(0)
    true_w, true_b = np.array([2.0, -3.4]), 4.2
    features = rng.standard_normal((1000, 2))
    labels = features @ true_w + true_b + rng.normal(0, 0.01, 1000)
    x = ag.tensor(features.astype(np.float32))
    y = ag.tensor(labels.astype(np.float32).reshape(-1, 1))
    ag.manual_seed(0)
    model = nn.Linear(2, 1)
    nn.init.normal_(model.weight, 0, 0.01)
    nn.init.zeros_(model.bias)
    loss = train(model, nn.MSELoss(half=True), x, y, lr=0.03, steps=300, batch=10)
    assert loss < 1e-3
    np.testing.assert_allclose(model.weight.numpy().ravel(), true_w, atol=0.01)
    np.testing.assert_allclose(model.bias.item(), true_b, atol=0.01)
    assert model.weight.dtype == np.float32


def test_softmax_regression_on_separable_data():
    rng = np.random.default_rng(1)
    centres = np.array([[3.0, 0.0], [-3.0, 3.0], [-3.0, -3.0]])
    labels = rng.integers(0, 3, 300)
    features = centres[labels] + rng.normal(0, 0.7, (300, 2))
    x, y = ag.tensor(features.astype(np.float32)), ag.tensor(labels)
    ag.manual_seed(0)
    model = nn.Linear(2, 3)
    loss = train(model, nn.CrossEntropyLoss(), x, y, lr=0.1, steps=200, batch=32)
    assert loss < 0.1
    accuracy = float((model(x).numpy().argmax(axis=1) == labels).mean())
    assert accuracy == 1.0
    # one-hot targets train the same way
    ag.manual_seed(0)
    model2 = nn.Linear(2, 3)
    train(model2, nn.CrossEntropyLoss(), x, F.one_hot(y, 3).astype("float32"), lr=0.1, steps=200, batch=32)
    np.testing.assert_allclose(model2.weight.numpy(), model.weight.numpy(), rtol=1e-5, atol=1e-6)


def test_mlp_with_batchnorm_dropout_and_weight_decay_trains():
    rng = np.random.default_rng(2)
    features = rng.standard_normal((256, 4)).astype(np.float32)
    labels = (features[:, 0] * features[:, 1] > 0).astype(np.int64)       # not linearly separable
    x, y = ag.tensor(features), ag.tensor(labels)
    ag.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 2))

    def loss_fn(out, target):
        return F.cross_entropy(out, target) + 1e-4 * F.l2_penalty(model.parameters())

    train(model, loss_fn, x, y, lr=0.2, steps=300, batch=64)
    model.eval()
    accuracy = float((model(x).numpy().argmax(axis=1) == labels).mean())
    assert accuracy > 0.9


def test_training_is_bit_for_bit_reproducible():
    def run():
        ag.manual_seed(7)
        model = nn.Sequential(nn.Linear(3, 5), nn.RReLU(), nn.Dropout(0.3), nn.Linear(5, 2))
        x = ag.randn(16, 3)
        y = ag.tensor(np.arange(16) % 2)
        train(model, nn.CrossEntropyLoss(), x, y, lr=0.1, steps=20)
        return [p.numpy() for p in model.parameters()]

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)
