"""Layers against PyTorch and against their definitions: Linear, activations, Dropout, BatchNorm, Embedding."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autograd as ag
import nn
import nn.functional as F

torch = pytest.importorskip("torch")


def t64(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def x64(a):
    return ag.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def load_from_torch(model, tmodel):
    model.load_state_dict({k: v.detach().numpy() for k, v in tmodel.state_dict().items()})


# --- Linear ---------------------------------------------------------------------------------


def test_linear_shapes_init_and_dtype():
    ag.manual_seed(0)
    lin = nn.Linear(20, 7)
    assert lin.weight.shape == (7, 20) and lin.bias.shape == (7,)
    bound = 1 / math.sqrt(20)
    assert float(lin.weight.abs().max().item()) <= bound and float(lin.bias.abs().max().item()) <= bound
    y = lin(ag.randn(3, 5, 20))
    assert y.shape == (3, 5, 7) and y.dtype == np.float32
    assert lin(ag.randn(20)).shape == (7,)
    assert nn.Linear(3, 2, bias=False).bias is None


def test_linear_uses_the_fused_op():
    y = nn.Linear(3, 2)(ag.randn(4, 3))
    assert type(y.creator).__name__ == "Linear"


def test_linear_wrong_feature_count_is_a_clear_error():
    lin = nn.Linear(4, 3)
    with pytest.raises(ValueError) as info:
        lin(ag.randn(2, 5))
    msg = str(info.value)
    assert "Linear(in_features=4, out_features=3" in msg and "(2, 5)" in msg
    with pytest.raises(ValueError, match="linear"):
        ag.linear(ag.randn(2, 5), ag.randn(3, 4))


@given(batch=st.lists(st.integers(1, 3), max_size=2), n_in=st.integers(1, 4), n_out=st.integers(1, 4),
       bias=st.booleans())
@settings(max_examples=15)
def test_linear_matches_torch(batch, n_in, n_out, bias):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(tuple(batch) + (n_in,))
    w, b = rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out)
    xs, ws, bs = x64(x), x64(w), x64(b) if bias else None
    xt, wt, bt = t64(x), t64(w), t64(b) if bias else None
    y, yt = ag.linear(xs, ws, bs), torch.nn.functional.linear(xt, wt, bt)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(yt.shape)
    y.backward(ag.tensor(g))
    yt.backward(torch.tensor(g))
    for a, b_ in [(xs, xt), (ws, wt)] + ([(bs, bt)] if bias else []):
        np.testing.assert_allclose(a.grad.numpy(), b_.grad.numpy(), rtol=1e-12, atol=1e-12)


# --- activations ----------------------------------------------------------------------------

ACTIVATIONS = [
    ("relu", lambda x: F.relu(x), lambda x: torch.relu(x)),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.2), lambda x: torch.nn.functional.leaky_relu(x, 0.2)),
    ("elu", lambda x: F.elu(x, 1.3), lambda x: torch.nn.functional.elu(x, 1.3)),
    ("silu", lambda x: F.silu(x), lambda x: torch.nn.functional.silu(x)),
    ("sigmoid", lambda x: F.sigmoid(x), lambda x: torch.sigmoid(x)),
    ("tanh", lambda x: F.tanh(x), lambda x: torch.tanh(x)),
    ("softplus", lambda x: F.softplus(x, 2.0), lambda x: torch.nn.functional.softplus(x, 2.0)),
    ("softmax", lambda x: F.softmax(x, dim=1), lambda x: torch.softmax(x, 1)),
    ("log_softmax", lambda x: F.log_softmax(x, dim=-1), lambda x: torch.log_softmax(x, -1)),
    ("rrelu_eval", lambda x: F.rrelu(x), lambda x: torch.nn.functional.rrelu(x, training=False)),
    ("ReLU", nn.ReLU(), torch.nn.ReLU()),
    ("LeakyReLU", nn.LeakyReLU(), torch.nn.LeakyReLU()),
    ("ELU", nn.ELU(), torch.nn.ELU()),
    ("SiLU", nn.SiLU(), torch.nn.SiLU()),
    ("Swish", nn.Swish(), torch.nn.SiLU()),
    ("Sigmoid", nn.Sigmoid(), torch.nn.Sigmoid()),
    ("Tanh", nn.Tanh(), torch.nn.Tanh()),
    ("Softplus", nn.Softplus(), torch.nn.Softplus()),
    ("Softmax", nn.Softmax(dim=-1), torch.nn.Softmax(dim=-1)),
    ("LogSoftmax", nn.LogSoftmax(dim=1), torch.nn.LogSoftmax(dim=1)),
    ("RReLU_eval", nn.RReLU().eval(), torch.nn.RReLU().eval()),
]


@pytest.mark.parametrize("name,ours,theirs", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_matches_torch(name, ours, theirs):
    rng = np.random.default_rng(1)
    x = rng.uniform(-4, 4, (3, 5))
    x[np.abs(x) < 0.05] = 0.5
    x[0, 0] = 30.0          # large values must not overflow
    x[0, 1] = -30.0
    xs, xt = x64(x), t64(x)
    y, yt = ours(xs), theirs(xt)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(x.shape)
    y.backward(ag.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    y32 = ours(ag.tensor(x.astype(np.float32)))
    assert y32.dtype == np.float32


@pytest.mark.parametrize("shape,num", [((4, 3), 1), ((4, 3), 3), ((2, 3, 4, 5), 3), ((2, 3, 5), 3)])
def test_prelu_matches_torch(shape, num):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    ours, theirs = nn.PReLU(num).double(), torch.nn.PReLU(num).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(rng.uniform(0.05, 0.5, num)))
    load_from_torch(ours, theirs)
    assert list(ours.state_dict()) == ["weight"] and ours.weight.shape == (num,)
    xs, xt = x64(x), t64(x)
    y, yt = ours(xs), theirs(xt)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-12)
    y.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-10)


def test_prelu_default_init_and_channel_error():
    p = nn.PReLU(4)
    np.testing.assert_array_equal(p.weight.numpy(), np.full(4, 0.25, np.float32))
    with pytest.raises(ValueError, match="prelu"):
        p(ag.randn(2, 3))


def test_rrelu_train_random_slopes_and_eval_mean_slope():
    ag.manual_seed(0)
    lower, upper = 0.1, 0.3
    m = nn.RReLU(lower, upper)
    x = ag.tensor(np.concatenate([-np.ones(2000), np.ones(10)]).astype(np.float32), requires_grad=True)
    y = m(x)
    slopes = -y.numpy()[:2000]
    assert slopes.min() >= lower and slopes.max() <= upper
    assert abs(slopes.mean() - (lower + upper) / 2) < 0.01 and slopes.std() > 0.03
    np.testing.assert_array_equal(y.numpy()[2000:], 1.0)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[:2000], slopes, rtol=1e-6)  # gradient is the drawn slope
    y2 = m(x)
    assert not np.array_equal(y2.numpy()[:2000], y.numpy()[:2000])        # a fresh draw each call
    m.eval()
    np.testing.assert_allclose(m(x).numpy()[:2000], -(lower + upper) / 2, rtol=1e-6)
    ag.manual_seed(5)
    a = nn.RReLU()(x).numpy()
    ag.manual_seed(5)
    np.testing.assert_array_equal(nn.RReLU()(x).numpy(), a)


# --- Dropout --------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(p):
    ag.manual_seed(0)
    x = ag.ones(200_000, requires_grad=True)
    d = nn.Dropout(p)
    y = d(x)
    arr = y.numpy()
    zero_frac = float((arr == 0).mean())
    assert abs(zero_frac - p) < 0.01
    np.testing.assert_allclose(arr[arr != 0], 1 / (1 - p), rtol=1e-6)       # kept values scaled by 1/(1-p)
    assert abs(arr.mean() - 1.0) < 0.02                                     # expectation preserved
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), arr)                      # gradient uses the same mask
    d.eval()
    assert d(x) is x


def test_dropout_edge_cases_and_reproducibility():
    x = ag.randn(10, 10)
    assert F.dropout(x, 0.0) is x
    assert float(F.dropout(x, 1.0).abs().sum().item()) == 0.0
    assert F.dropout(x, 0.5, training=False) is x
    with pytest.raises(ValueError):
        nn.Dropout(1.5)
    ag.manual_seed(3)
    a = F.dropout(x, 0.5).numpy()
    ag.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(x, 0.5).numpy(), a)
    assert F.dropout(ag.randn(3, dtype="float64"), 0.5).dtype == np.float64


# --- BatchNorm ------------------------------------------------------------------------------


def _bn_pair(cls, tcls, c, **kw):
    ours, theirs = cls(c, **kw).double(), tcls(c, **kw).double()
    if kw.get("affine", True):
        with torch.no_grad():
            theirs.weight.copy_(torch.linspace(0.5, 1.5, c, dtype=torch.float64))
            theirs.bias.copy_(torch.linspace(-0.2, 0.3, c, dtype=torch.float64))
    load_from_torch(ours, theirs)
    return ours, theirs


@pytest.mark.parametrize("cls,tcls,shape", [(nn.BatchNorm1d, torch.nn.BatchNorm1d, (8, 3)),
                                            (nn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 5)),
                                            (nn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 2, 5))])
@pytest.mark.parametrize("kw", [{}, {"momentum": 0.3}, {"momentum": None}, {"affine": False},
                                {"track_running_stats": False}])
def test_batchnorm_matches_torch_train_eval_and_running_stats(cls, tcls, shape, kw):
    rng = np.random.default_rng(3)
    ours, theirs = _bn_pair(cls, tcls, shape[1], **kw)
    for step in range(3):
        x = rng.standard_normal(shape) * (step + 1) + step
        xs, xt = x64(x), t64(x)
        y, yt = ours(xs), theirs(xt)
        np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
        g = rng.standard_normal(shape)
        y.backward(ag.tensor(g))
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-10)
        for (n, p), tp in zip(ours.named_parameters(), theirs.parameters()):
            np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-10, err_msg=n)
        ours.zero_grad()
        theirs.zero_grad()
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    for k in theirs_sd:
        np.testing.assert_allclose(ours_sd[k].numpy(), theirs_sd[k].numpy(), rtol=1e-12, err_msg=k)
    ours.eval(), theirs.eval()
    x = rng.standard_normal(shape)
    xs, xt = x64(x), t64(x)
    y, yt = ours(xs), theirs(xt)
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    y.backward(ag.tensor(np.ones(shape)))
    yt.backward(torch.ones(shape, dtype=torch.float64))
    np.testing.assert_allclose(xs.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-10)
    for p, tp in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_batchnorm_uses_the_fused_op_and_keeps_float32():
    bn = nn.BatchNorm2d(2)
    y = bn(ag.randn(3, 2, 4, 4))
    assert type(y.creator).__name__ == "BatchNorm" and y.dtype == np.float32
    assert bn.running_mean.dtype == np.float32 and int(bn.num_batches_tracked.item()) == 1
    v = bn.running_var._version
    bn(ag.randn(3, 2, 4, 4))
    assert bn.running_var._version > v and int(bn.num_batches_tracked.item()) == 2
    bn.eval()
    before = bn.running_mean.numpy().copy()
    bn(ag.randn(3, 2, 4, 4))
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)   # eval leaves running stats alone
    assert int(bn.num_batches_tracked.item()) == 2


def test_batchnorm_bad_input():
    with pytest.raises(ValueError, match="channels"):
        nn.BatchNorm1d(3)(ag.randn(4, 5))
    with pytest.raises(ValueError, match="4-D"):
        nn.BatchNorm2d(3)(ag.randn(4, 3))
    with pytest.raises(ValueError, match="more than 1 value"):
        nn.BatchNorm1d(3)(ag.randn(1, 3))
    nn.BatchNorm1d(3).eval()(ag.randn(1, 3))     # fine in eval mode


# --- Embedding ------------------------------------------------------------------------------


def test_embedding_lookup_gradient_and_errors():
    ag.manual_seed(0)
    emb = nn.Embedding(5, 3)
    idx = ag.tensor(np.array([[0, 2], [2, 4]]))
    y = emb(idx)
    assert y.shape == (2, 2, 3)
    np.testing.assert_array_equal(y.numpy()[1, 0], emb.weight.numpy()[2])
    y.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy()[:, 0], [1, 0, 2, 0, 1])   # repeated index accumulates
    with pytest.raises(IndexError, match="out of range for an embedding with 5 rows"):
        emb(ag.tensor(np.array([1, 5])))
    with pytest.raises(IndexError):
        emb(ag.tensor(np.array([-1])))
    with pytest.raises(TypeError, match="integers"):
        emb(ag.tensor([0.0, 1.0]))
    assert abs(float(nn.Embedding(1000, 50).weight.std().item()) - 1.0) < 0.02     # N(0, 1) init


def test_embedding_matches_torch_and_padding_idx():
    theirs = torch.nn.Embedding(6, 4, padding_idx=1).double()
    ours = nn.Embedding(6, 4, padding_idx=1).double()
    np.testing.assert_array_equal(ours.weight.numpy()[1], 0)
    load_from_torch(ours, theirs)
    idx = np.array([[1, 3, 1], [0, 5, 3]])
    y, yt = ours(idx), theirs(torch.tensor(idx))
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy())
    g = np.random.default_rng(0).standard_normal(yt.shape)
    y.backward(ag.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy())


# --- a whole model against PyTorch ----------------------------------------------------------


def _torch_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.PReLU(8),
                               torch.nn.Linear(8, 8), torch.nn.ELU(), torch.nn.Linear(8, 5), torch.nn.LeakyReLU(0.1),
                               torch.nn.Linear(5, 3)).double()


def _our_model():
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.PReLU(8), nn.Linear(8, 8), nn.ELU(),
                         nn.Linear(8, 5), nn.LeakyReLU(0.1), nn.Linear(5, 3)).double()


def test_torch_model_state_dict_loads_and_matches_in_train_and_eval():
    theirs, ours = _torch_model(), _our_model()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    load_from_torch(ours, theirs)
    rng = np.random.default_rng(4)
    labels = np.array([0, 2, 1, 1, 0, 2, 2, 1, 0, 1])
    for mode in ("train", "eval"):
        getattr(ours, mode)(), getattr(theirs, mode)()
        for _ in range(2):
            x = rng.standard_normal((10, 6))
            y, yt = ours(ag.tensor(x)), theirs(torch.tensor(x))
            np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-9, atol=1e-10)
            loss = F.cross_entropy(y, ag.tensor(labels), label_smoothing=0.1)
            tloss = torch.nn.functional.cross_entropy(yt, torch.tensor(labels), label_smoothing=0.1)
            np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-10)
            loss.backward()
            tloss.backward()
            for (n, p), tp in zip(ours.named_parameters(), theirs.parameters()):
                np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-7, atol=1e-10, err_msg=n)
            ours.zero_grad()
            theirs.zero_grad()
    for k, v in theirs.state_dict().items():                     # running statistics evolved identically
        np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), rtol=1e-10, err_msg=k)


def test_float32_model_stays_float32():
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.SiLU(), nn.Dropout(0.1), nn.Linear(8, 3))
    x = ag.randn(16, 4)
    loss = F.cross_entropy(model(x), ag.tensor(np.arange(16) % 3))
    loss.backward()
    assert loss.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


def test_inplace_activations_write_into_their_input_outside_a_graph():
    import nn.functional as F
    for fn, module in ((F.relu, nn.ReLU(inplace=True)), (lambda x, inplace: F.elu(x, 1.0, inplace),
                                                          nn.ELU(inplace=True))):
        x = ag.tensor([-1.0, 2.0])
        v = x.version
        y = fn(x, inplace=True)
        assert y is x and x.version == v + 1 and x.numpy()[1] == 2.0 and x.numpy()[0] <= 0
        x2 = ag.tensor([-1.0, 2.0])
        assert module(x2) is x2
        leaf = ag.tensor([-1.0, 2.0], requires_grad=True)       # recorded: a new tensor, the input untouched
        out = fn(leaf, inplace=True)
        assert out is not leaf and leaf.numpy()[0] == -1.0
        out.sum().backward()
        assert leaf.grad is not None
    x = ag.tensor([-1.0, 2.0])
    assert F.relu(x) is not x and x.numpy()[0] == -1.0            # default: out of place
