"""Recurrent layers: PyTorch parity (names, shapes, gate order, values, gradients), gradients, errors."""
from __future__ import annotations

import numpy as np
import pytest

import autograd as ag
import nn

KINDS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _torch_pair(torch, kind, num_layers, batch_first, **kw):
    tcls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    torch.manual_seed(0)
    tm = tcls(5, 4, num_layers=num_layers, batch_first=batch_first, **kw).double()
    m = KINDS[kind](5, 4, num_layers=num_layers, batch_first=batch_first, **kw).double()
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, m


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("num_layers,batch_first", [(1, False), (2, True)])
def test_matches_torch_values_and_gradients(kind, num_layers, batch_first):
    torch = pytest.importorskip("torch")
    tm, m = _torch_pair(torch, kind, num_layers, batch_first)
    assert sorted(dict(m.named_parameters())) == sorted(dict(tm.named_parameters()))
    for name, p in tm.named_parameters():
        assert dict(m.named_parameters())[name].shape == tuple(p.shape)
    x = np.random.default_rng(1).standard_normal((3, 6, 5) if batch_first else (6, 3, 5))
    tx = torch.tensor(x, requires_grad=True)
    xx = ag.tensor(x, requires_grad=True)
    tout, th = tm(tx)
    out, h = m(xx)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    if kind == "lstm":
        np.testing.assert_allclose(h[0].numpy(), th[0].detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(h[1].numpy(), th[1].detach().numpy(), rtol=1e-10, atol=1e-12)
        (tout.sum() + th[1].sum()).backward()
        (out.sum() + h[1].sum()).backward()
    else:
        np.testing.assert_allclose(h.numpy(), th.detach().numpy(), rtol=1e-10, atol=1e-12)
        (tout.sum() + (th ** 2).sum()).backward()
        (out.sum() + (h ** 2).sum()).backward()
    np.testing.assert_allclose(xx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    params = dict(m.named_parameters())
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(params[name].grad.numpy(), p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_cells_match_torch(kind):
    torch = pytest.importorskip("torch")
    tcls = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[kind]
    cls = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind]
    torch.manual_seed(0)
    tc = tcls(3, 4).double()
    c = cls(3, 4).double()
    c.load_state_dict({k: v.detach().numpy() for k, v in tc.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((2, 3))
    h = np.random.default_rng(3).standard_normal((2, 4))
    if kind == "lstm":
        th, tcc = tc(torch.tensor(x), (torch.tensor(h), torch.tensor(h)))
        hh, cc = c(ag.tensor(x), (ag.tensor(h), ag.tensor(h)))
        np.testing.assert_allclose(cc.numpy(), tcc.detach().numpy(), rtol=1e-10)
    else:
        th = tc(torch.tensor(x), torch.tensor(h))
        hh = c(ag.tensor(x), ag.tensor(h))
    np.testing.assert_allclose(hh.numpy(), th.detach().numpy(), rtol=1e-10)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_gradcheck_through_time(kind):
    ag.manual_seed(0)
    m = KINDS[kind](2, 3, num_layers=2).double()
    x = ag.randn(4, 2, 2, dtype="float64", requires_grad=True)
    h0 = ag.randn(2, 2, 3, dtype="float64", requires_grad=True)
    assert ag.gradcheck(lambda a, b: m(a, (b, b * 0.5) if kind == "lstm" else b)[0], [x, h0])


def test_truncated_bptt_by_detach():
    ag.manual_seed(0)
    m = nn.RNN(2, 3)
    x = ag.randn(5, 1, 2)
    _, h = m(x[:3])
    out, _ = m(x[3:], h.detach())
    out.sum().backward()
    g_trunc = m.weight_hh_l0.grad.numpy().copy()
    m.zero_grad()
    out_full, _ = m(x)
    out_full[3:].sum().backward()
    assert not np.allclose(g_trunc, m.weight_hh_l0.grad.numpy())     # the carried state was cut


def test_unbatched_input_and_float32():
    m = nn.GRU(4, 3)
    out, h = m(ag.randn(7, 4))
    assert out.shape == (7, 3) and h.shape == (1, 3) and out.dtype == np.float32


def test_bad_input_names_layer_and_shapes():
    m = nn.LSTM(4, 3)
    with pytest.raises(ValueError, match=r"LSTM.*rank 3.*\(4,\)"):
        m(ag.randn(4))
    with pytest.raises(ValueError, match=r"LSTM: input has 5 features.*input_size=4"):
        m(ag.randn(2, 3, 5))
    with pytest.raises(ValueError, match="initial state"):
        nn.RNN(4, 3)(ag.randn(2, 3, 4), ag.randn(1, 2, 3))
