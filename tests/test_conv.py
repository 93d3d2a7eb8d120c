"""Convolution and pooling: values and gradients against PyTorch (skipped without torch), NumPy-only checks
(naive loops, output sizes, 1x1 convolution, ties, global pooling, adjointness, chunking), state-dict
loading, and error paths. The generated op tests (tests/test_ops.py) add gradcheck/gradgradcheck."""
from __future__ import annotations

import gc
import itertools
import weakref

import numpy as np
import pytest

import autograd as ag
import nn
import nn.functional as F
from autograd.ops import conv as conv_ops

RNG = np.random.default_rng(0)


def _t(a, grad=True):
    return ag.tensor(a, requires_grad=grad)


def _randn(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


# --- against PyTorch --------------------------------------------------------------------------------


def _torch_check(ours, theirs, arrays, out_grad_seed=0, rtol=1e-10, atol=1e-10):
    """Forward values and input gradients of ``ours(*tensors)`` and ``theirs(*torch_tensors)`` agree."""
    torch = pytest.importorskip("torch")
    xs = [_t(a) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = ours(*xs)
    ty = theirs(*ts)
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(out_grad_seed).standard_normal(ty.shape)
    y.backward(ag.tensor(g, dtype=y.dtype))
    ty.backward(torch.tensor(g, dtype=ty.dtype))
    for i, (x, t) in enumerate(zip(xs, ts)):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=atol, err_msg=f"input {i}")


CONV_CASES = [
    dict(x=(2, 3, 8, 8), w=(4, 3, 3, 3), kw=dict(padding=1)),
    dict(x=(2, 3, 9, 7), w=(5, 3, 3, 2), kw=dict(stride=2)),
    dict(x=(1, 4, 10, 9), w=(6, 2, 3, 3), kw=dict(stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2)),
    dict(x=(2, 6, 7, 7), w=(6, 1, 3, 3), kw=dict(padding=1, groups=6)),             # depthwise
    dict(x=(2, 2, 6, 5), w=(3, 2, 4, 2), kw=dict(padding="same", dilation=(1, 2))),  # odd total padding
    dict(x=(2, 2, 6, 5), w=(3, 2, 2, 2), kw=dict(padding="valid")),
    dict(x=(3, 1, 28, 28), w=(8, 1, 5, 5), kw=dict(stride=4, padding=2)),
    dict(x=(2, 3, 5, 5), w=(4, 3, 1, 1), kw=dict()),
    dict(x=(1, 2, 11, 13), w=(2, 2, 3, 3), kw=dict(stride=3, padding=1, dilation=2)),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: str(c["kw"]))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_conv2d_matches_torch(case, bias):
    torch = pytest.importorskip("torch")
    arrays = [_randn(*case["x"]), _randn(*case["w"])] + ([_randn(case["w"][0])] if bias else [])
    _torch_check(lambda *a: F.conv2d(*a, **case["kw"]), lambda *a: torch.nn.functional.conv2d(*a, **case["kw"]),
                 arrays)


CONVT_CASES = [
    dict(x=(2, 3, 4, 4), w=(3, 2, 3, 3), kw=dict(stride=2, padding=1, output_padding=1)),
    dict(x=(1, 4, 3, 5), w=(4, 3, 3, 2), kw=dict(stride=(2, 3), padding=(1, 0), output_padding=(0, 2), groups=2,
                                                 dilation=(2, 1))),
    dict(x=(2, 2, 5, 5), w=(2, 3, 2, 2), kw=dict(stride=2)),                        # 2x upsampling
    dict(x=(2, 3, 4, 3), w=(3, 4, 3, 3), kw=dict(padding=1)),
    dict(x=(1, 2, 3, 3), w=(2, 1, 4, 4), kw=dict(stride=3, padding=2, dilation=2, output_padding=1)),
]


@pytest.mark.parametrize("case", CONVT_CASES, ids=lambda c: str(c["kw"]))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_conv_transpose2d_matches_torch(case, bias):
    torch = pytest.importorskip("torch")
    cout = case["w"][1] * case["kw"].get("groups", 1)
    arrays = [_randn(*case["x"]), _randn(*case["w"])] + ([_randn(cout)] if bias else [])
    _torch_check(lambda *a: F.conv_transpose2d(*a, **case["kw"]),
                 lambda *a: torch.nn.functional.conv_transpose2d(*a, **case["kw"]), arrays)


@pytest.mark.parametrize("kw", [dict(padding=1), dict(stride=2, dilation=2, padding=2), dict(padding="same"),
                                dict(groups=2, stride=3)], ids=str)
def test_conv1d_matches_torch(kw):
    torch = pytest.importorskip("torch")
    arrays = [_randn(2, 4, 11), _randn(6, 4 // kw.get("groups", 1), 3), _randn(6)]
    _torch_check(lambda *a: F.conv1d(*a, **kw), lambda *a: torch.nn.functional.conv1d(*a, **kw), arrays)


def _distinct(shape, seed=1):
    """Values at least 0.1 apart, so max pooling has no ties."""
    return np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0


MAXPOOL_CASES = [dict(kernel_size=2), dict(kernel_size=3, stride=2), dict(kernel_size=3, stride=2, padding=1),
                 dict(kernel_size=(2, 3), stride=(1, 2), dilation=(2, 1)), dict(kernel_size=3, stride=1, padding=1),
                 dict(kernel_size=2, ceil_mode=True), dict(kernel_size=3, stride=2, ceil_mode=True, padding=1)]


@pytest.mark.parametrize("kw", MAXPOOL_CASES, ids=str)
def test_max_pool2d_matches_torch(kw):
    torch = pytest.importorskip("torch")
    _torch_check(lambda x: F.max_pool2d(x, **kw), lambda x: torch.nn.functional.max_pool2d(x, **kw),
                 [_distinct((2, 3, 9, 7))])


def test_max_pool2d_indices_match_torch():
    torch = pytest.importorskip("torch")
    x = _distinct((2, 3, 9, 7))
    for kw in MAXPOOL_CASES:
        y, idx = F.max_pool2d(ag.tensor(x), return_indices=True, **kw)
        ty, tidx = torch.nn.functional.max_pool2d(torch.tensor(x), return_indices=True, **kw)
        np.testing.assert_array_equal(idx.numpy(), tidx.numpy(), err_msg=str(kw))
        assert idx.dtype == np.int64


AVGPOOL_CASES = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                 dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
                 dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0)),
                 dict(kernel_size=3, stride=2, ceil_mode=True),
                 dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
                 dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                 dict(kernel_size=2, divisor_override=3)]


@pytest.mark.parametrize("kw", AVGPOOL_CASES, ids=str)
def test_avg_pool2d_matches_torch(kw):
    torch = pytest.importorskip("torch")
    _torch_check(lambda x: F.avg_pool2d(x, **kw), lambda x: torch.nn.functional.avg_pool2d(x, **kw),
                 [_randn(2, 3, 9, 8)])


@pytest.mark.parametrize("size,out", [((8, 8), 1), ((8, 8), (4, 2)), ((7, 9), (3, 4)), ((5, 5), (7, 6)),
                                      ((6, 7), (None, 3)), ((6, 6), 6)])
def test_adaptive_avg_pool2d_matches_torch(size, out):
    torch = pytest.importorskip("torch")
    _torch_check(lambda x: F.adaptive_avg_pool2d(x, out), lambda x: torch.nn.functional.adaptive_avg_pool2d(x, out),
                 [_randn(2, 3, *size)])


def test_pool1d_matches_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    _torch_check(lambda x: F.max_pool1d(x, 3, 2, 1), lambda x: tf.max_pool1d(x, 3, 2, 1), [_distinct((2, 3, 10))])
    _torch_check(lambda x: F.avg_pool1d(x, 3, 2, 1), lambda x: tf.avg_pool1d(x, 3, 2, 1), [_randn(2, 3, 10)])
    _torch_check(lambda x: F.avg_pool1d(x, 2, count_include_pad=False), lambda x: tf.avg_pool1d(x, 2),
                 [_randn(2, 3, 7)])


def test_float32_agrees_with_torch_and_stays_float32():
    torch = pytest.importorskip("torch")
    f32 = np.float32
    x, w, b = _randn(4, 8, 14, 14, dtype=f32), _randn(16, 8, 3, 3, dtype=f32), _randn(16, dtype=f32)
    xs = [_t(a) for a in (x, w, b)]
    y = F.max_pool2d(F.relu(F.conv2d(*xs, padding=1)), 2)
    ts = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    ty = torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(*ts, padding=1)), 2)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-4)
    y.sum().backward()
    ty.sum().backward()
    for a, t in zip(xs, ts):
        assert a.grad.dtype == np.float32
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-3, atol=1e-3)


def _state_from_torch(tm):
    return {k: v.detach().numpy() for k, v in tm.state_dict().items()}


@pytest.mark.parametrize("build", [
    lambda m: m.Conv2d(3, 8, 3, stride=2, padding=1),
    lambda m: m.Conv2d(4, 6, (3, 2), dilation=2, groups=2, bias=False),
    lambda m: m.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1),
    lambda m: m.ConvTranspose2d(4, 6, 2, stride=2, groups=2),
], ids=["conv", "conv-groups", "convT", "convT-groups"])
def test_torch_state_dict_loads_and_computes_the_same(build):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tm = build(torch.nn)
    m = build(nn)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in tm.state_dict().items()}
    m.load_state_dict(_state_from_torch(tm))
    x = _randn(2, m.in_channels, 9, 8, dtype=np.float32)
    np.testing.assert_allclose(m(ag.tensor(x)).numpy(), tm(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_conv1d_state_dict_from_torch():
    torch = pytest.importorskip("torch")
    tm = torch.nn.Conv1d(3, 5, 3, padding=1)
    m = nn.Conv1d(3, 5, 3, padding=1)
    m.load_state_dict(_state_from_torch(tm))
    x = _randn(2, 3, 12, dtype=np.float32)
    np.testing.assert_allclose(m(ag.tensor(x)).numpy(), tm(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_textbook_cnn_with_torch_weights_gives_torch_logits_and_gradients():
    torch = pytest.importorskip("torch")
    from nn.models import textbook_cnn
    tnn = torch.nn
    torch.manual_seed(0)
    tnet = tnn.Sequential(tnn.Conv2d(1, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
                          tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                          tnn.Linear(3136, 128), tnn.ReLU(), tnn.Linear(128, 10)).double()
    net = textbook_cnn().double()
    net.load_state_dict(_state_from_torch(tnet))
    x, y = _randn(4, 1, 28, 28), np.array([1, 3, 5, 7])
    loss = nn.CrossEntropyLoss()(net(ag.tensor(x)), ag.tensor(y))
    tloss = tnn.CrossEntropyLoss()(tnet(torch.tensor(x)), torch.tensor(y))
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-10)
    loss.backward()
    tloss.backward()
    for (name, p), tp in zip(net.named_parameters(), tnet.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=name)


# --- NumPy only -------------------------------------------------------------------------------------


def _naive_conv2d(x, w, b, stride, pad, dil, groups):
    """Seven nested loops straight from the definition."""
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    OH = (H + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    OW = (W + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    y = np.zeros((N, O, OH, OW))
    Og = O // groups
    for n, o, oh, ow in itertools.product(range(N), range(O), range(OH), range(OW)):
        acc = b[o] if b is not None else 0.0
        g = o // Og
        for c, i, j in itertools.product(range(Cg), range(kh), range(kw)):
            h, v = oh * stride - pad + i * dil, ow * stride - pad + j * dil
            if 0 <= h < H and 0 <= v < W:
                acc += w[o, c, i, j] * x[n, g * Cg + c, h, v]
        y[n, o, oh, ow] = acc
    return y


@pytest.mark.parametrize("stride,pad,dil,groups", [(1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 2), (3, 1, 1, 2)])
def test_conv2d_equals_naive_loops(stride, pad, dil, groups):
    x, w, b = _randn(2, 4, 7, 6), _randn(4, 4 // groups, 3, 2), _randn(4)
    y = F.conv2d(ag.tensor(x), ag.tensor(w), ag.tensor(b), stride, pad, dil, groups)
    np.testing.assert_allclose(y.numpy(), _naive_conv2d(x, w, b, stride, pad, dil, groups), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n,k,p,s,d", list(itertools.product([5, 8], [1, 2, 3], [0, 1, 2], [1, 2, 3], [1, 2])))
def test_conv2d_output_size_formula(n, k, p, s, d):
    expected = (n + 2 * p - d * (k - 1) - 1) // s + 1
    x, w = ag.zeros(1, 1, n, n + 1), ag.zeros(1, 1, k, k)
    if expected < 1:
        with pytest.raises(ValueError):
            F.conv2d(x, w, stride=s, padding=p, dilation=d)
        return
    expected_w = (n + 1 + 2 * p - d * (k - 1) - 1) // s + 1
    assert F.conv2d(x, w, stride=s, padding=p, dilation=d).shape == (1, 1, expected, expected_w)


def test_1x1_convolution_is_a_per_pixel_linear_layer():
    x, w, b = _randn(2, 5, 4, 3), _randn(7, 5, 1, 1), _randn(7)
    y = F.conv2d(ag.tensor(x), ag.tensor(w), ag.tensor(b)).numpy()
    ref = np.einsum("nchw,oc->nohw", x, w[:, :, 0, 0]) + b[:, None, None]
    np.testing.assert_allclose(y, ref, rtol=1e-12)
    lin = F.linear(ag.tensor(x.transpose(0, 2, 3, 1)), ag.tensor(w[:, :, 0, 0]), ag.tensor(b)).numpy()
    np.testing.assert_allclose(y, lin.transpose(0, 3, 1, 2), rtol=1e-12)


def test_conv_transpose2d_is_the_adjoint_of_conv2d():
    x, w, gy = _randn(2, 4, 9, 8), _randn(6, 2, 3, 3), None
    kw = dict(stride=2, padding=1, dilation=1, groups=2)
    y = F.conv2d(ag.tensor(x), ag.tensor(w), **kw)
    gy = _randn(*y.shape)
    out_pad = tuple(n - ((m - 1) * 2 - 2 + 2 + 1) for n, m in zip(x.shape[2:], y.shape[2:]))
    back = F.conv_transpose2d(ag.tensor(gy), ag.tensor(w), stride=2, padding=1, output_padding=out_pad, groups=2)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(y.numpy() * gy), np.sum(x * back.numpy()), rtol=1e-12)


def test_max_pool_ties_route_the_gradient_to_exactly_one_element():
    x = _t(np.ones((2, 3, 4, 6)))
    F.max_pool2d(x, 2).sum().backward()
    g = x.grad.numpy().reshape(2, 3, 2, 2, 3, 2)
    assert np.all(g.sum(axis=(3, 5)) == 1.0)                        # one unit of gradient per window ...
    assert np.all((g == 0) | (g == 1))                              # ... given to a single element
    x2 = _t(np.zeros((1, 1, 5, 5)))                                 # overlapping windows, padding
    y = F.max_pool2d(x2, 3, stride=1, padding=1)
    y.sum().backward()
    assert x2.grad.numpy().sum() == y.numel()
    assert set(np.unique(x2.grad.numpy())) <= set(range(y.numel() + 1))


def test_global_average_pooling_is_the_spatial_mean():
    x = _randn(3, 4, 5, 7)
    y = nn.AdaptiveAvgPool2d(1)(ag.tensor(x))
    assert y.shape == (3, 4, 1, 1)
    np.testing.assert_allclose(y.numpy(), x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(F.avg_pool2d(ag.tensor(x), (5, 7)).numpy(), y.numpy(), rtol=1e-12)


def test_average_pooling_divisors():
    x = np.ones((1, 1, 4, 4))
    incl = F.avg_pool2d(ag.tensor(x), 3, 1, 1).numpy()              # padding counted: corners see 4 of 9
    np.testing.assert_allclose(incl[0, 0, 0, 0], 4 / 9)
    excl = F.avg_pool2d(ag.tensor(x), 3, 1, 1, count_include_pad=False).numpy()
    np.testing.assert_allclose(excl, 1.0)


def test_chunked_columns_give_the_same_values_and_gradients(monkeypatch):
    x, w, b = _randn(5, 3, 8, 7), _randn(4, 3, 3, 3), _randn(4)

    def run():
        xs = [_t(a) for a in (x, w, b)]
        y = F.conv2d(*xs, stride=2, padding=1)
        z = F.conv_transpose2d(y, ag.tensor(w), stride=2)          # weight (C_in=4, C_out=3, 3, 3)
        (z * z).sum().backward()
        return [z.numpy()] + [a.grad.numpy() for a in xs]

    whole = run()
    monkeypatch.setattr(conv_ops, "COL_BUFFER_BYTES", 1)           # one image per chunk
    for a, b_ in zip(whole, run()):
        np.testing.assert_allclose(b_, a, rtol=1e-12, atol=1e-12)


def test_column_matrix_is_released_by_backward():
    x, w = _t(_randn(2, 3, 6, 6)), _t(_randn(4, 3, 3, 3))
    y = F.conv2d(x, w, padding=1)
    node = y.creator
    ref = weakref.ref(node.saved)
    y.sum().backward()
    gc.collect()
    assert node.saved is None and ref() is None
    with ag.no_grad():                                              # nothing kept outside a recorded graph
        assert F.conv2d(x, w).creator is None


def test_two_backward_passes_with_retain_graph_agree():
    x, w, b = _t(_randn(2, 3, 6, 5)), _t(_randn(4, 3, 3, 3)), _t(_randn(4))
    y = (F.conv2d(x, w, b, padding=1) ** 2).sum()
    y.backward(retain_graph=True)
    first = [t.grad.numpy().copy() for t in (x, w, b)]
    y.backward()
    for t, g in zip((x, w, b), first):
        np.testing.assert_allclose(t.grad.numpy(), 2 * g, rtol=1e-12)


def test_same_shaped_convolutions_do_not_share_buffers():
    """Two live graphs of identical geometry: each keeps its own column matrix until its backward."""
    x1, x2 = _randn(3, 4, 7, 7), _randn(3, 4, 7, 7)
    w1, w2 = _randn(5, 4, 3, 3), _randn(5, 4, 3, 3)
    ts = [_t(a) for a in (x1, x2, w1, w2)]
    y1 = F.conv2d(ts[0], ts[2], padding=1)
    y2 = F.conv2d(ts[1], ts[3], padding=1)
    g1, g2 = _randn(*y1.shape), _randn(*y2.shape)
    (y2 * ag.tensor(g2)).sum().backward()
    (y1 * ag.tensor(g1)).sum().backward()
    for x, w, g, tx, tw in ((x1, w1, g1, ts[0], ts[2]), (x2, w2, g2, ts[1], ts[3])):
        ref_w = np.einsum("nohw,nchw->oc", g, x)                 # the centre tap of a padded 3x3 kernel
        np.testing.assert_allclose(tw.grad.numpy()[:, :, 1, 1], ref_w, rtol=1e-10)
        np.testing.assert_allclose(F.conv2d(ag.tensor(x), ag.tensor(w), padding=1).numpy(),
                                   _naive_conv2d(x, w, None, 1, 1, 1, 1), rtol=1e-10, atol=1e-12)


def test_double_backward_through_a_small_cnn():
    x, w = _t(_distinct((1, 2, 6, 6)) * 0.3), _t(_randn(3, 2, 3, 3))

    def f(x, w):
        return F.avg_pool2d(F.max_pool2d(ag.tanh(F.conv2d(x, w, padding=1)), 2), 3)
    assert ag.gradgradcheck(f, [x, w], rtol=1e-4, atol=1e-6)


def test_unbatched_inputs():
    x, w = _randn(3, 6, 5), _randn(4, 3, 3, 3)
    y = F.conv2d(ag.tensor(x), ag.tensor(w), padding=1)
    np.testing.assert_allclose(y.numpy(), F.conv2d(ag.tensor(x[None]), ag.tensor(w), padding=1).numpy()[0])
    assert F.max_pool2d(ag.tensor(x), 2).shape == (3, 3, 2)
    assert nn.Conv1d(6, 2, 3)(ag.tensor(_randn(6, 9), dtype="float32")).shape == (2, 7)


def test_modules_keep_float32_and_initialise_like_pytorch():
    ag.manual_seed(0)
    m = nn.Conv2d(16, 8, 3, padding=1)
    assert m.weight.shape == (8, 16, 3, 3) and m.bias.shape == (8,) and m.weight.dtype == np.float32
    bound = 1 / np.sqrt(16 * 9)
    assert np.abs(m.weight.numpy()).max() <= bound and np.abs(m.weight.numpy()).max() > 0.8 * bound
    assert np.abs(m.bias.numpy()).max() <= bound
    t = nn.ConvTranspose2d(4, 6, 3, groups=2)
    assert t.weight.shape == (4, 3, 3, 3)
    assert np.abs(t.weight.numpy()).max() <= 1 / np.sqrt(3 * 9)
    y = m(ag.randn(2, 16, 5, 5))
    assert y.dtype == np.float32
    y.sum().backward()
    assert m.weight.grad.dtype == np.float32 and m.bias.grad.dtype == np.float32


def test_reprs():
    assert repr(nn.Conv2d(3, 16, 3)) == "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1))"
    assert repr(nn.Conv2d(3, 16, 5, 2, 2, bias=False)) == \
        "Conv2d(3, 16, kernel_size=(5, 5), stride=(2, 2), padding=(2, 2), bias=False)"
    assert repr(nn.Conv2d(4, 4, 3, padding="same", dilation=2, groups=4)) == \
        "Conv2d(4, 4, kernel_size=(3, 3), stride=(1, 1), padding=same, dilation=(2, 2), groups=4)"
    assert repr(nn.ConvTranspose2d(8, 4, 2, stride=2, output_padding=1)) == \
        "ConvTranspose2d(8, 4, kernel_size=(2, 2), stride=(2, 2), output_padding=(1, 1))"
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.AvgPool2d(3, 2, 1)) == "AvgPool2d(kernel_size=3, stride=2, padding=1)"
    assert repr(nn.AdaptiveAvgPool2d((6, 6))) == "AdaptiveAvgPool2d(output_size=(6, 6))"


def test_conv_transpose2d_output_size_argument():
    m = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    x = ag.randn(1, 2, 4, 4)
    assert m(x).shape == (1, 3, 7, 7)
    assert m(x, output_size=(8, 8)).shape == (1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(2, 3.*output_size"):
        m(x, output_size=(10, 10))


def test_modules_compose_into_the_textbook_shapes():
    net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    assert net(ag.randn(2, 1, 28, 28)).shape == (2, 64 * 7 * 7)
    assert nn.AvgPool1d(2)(ag.randn(2, 3, 9)).shape == (2, 3, 4)
    assert nn.MaxPool1d(3, 1, 1)(ag.randn(2, 3, 9)).shape == (2, 3, 9)


# --- errors -----------------------------------------------------------------------------------------


def _unchanged(m, before):
    for name, p in m.named_parameters():
        np.testing.assert_array_equal(p.numpy(), before[name])
        assert p.grad is None


def test_channel_mismatch_names_the_layer_and_the_shapes():
    m = nn.Conv2d(3, 16, 3)
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    with pytest.raises(ValueError, match=r"Conv2d\(3, 16, kernel_size=\(3, 3\).*3 channels.*\(2, 4, 8, 8\)"):
        m(ag.randn(2, 4, 8, 8))
    _unchanged(m, before)
    with pytest.raises(ValueError, match=r"conv2d: input has 4 channels.*\(2, 4, 8, 8\).*\(16, 3, 3, 3\)"):
        F.conv2d(ag.randn(2, 4, 8, 8), m.weight)
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(3, 2.*3 channels"):
        nn.ConvTranspose2d(3, 2, 2)(ag.randn(1, 2, 4, 4))


def test_kernel_larger_than_padded_input():
    m = nn.Conv2d(1, 2, 5, padding=1)
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    with pytest.raises(ValueError, match=r"Conv2d\(1, 2, kernel_size=\(5, 5\).*larger than the padded input "
                                         r"\(4, 4\).*\(1, 1, 2, 2\)"):
        m(ag.randn(1, 1, 2, 2, requires_grad=True))
    _unchanged(m, before)
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=3.*larger than the padded input.*\(1, 1, 2, 2\)"):
        nn.MaxPool2d(3)(ag.randn(1, 1, 2, 2))
    with pytest.raises(ValueError, match=r"avg_pool2d: kernel"):
        F.avg_pool2d(ag.randn(1, 1, 2, 2), 3)


def test_non_positive_stride():
    with pytest.raises(ValueError,
                       match=r"Conv2d\(3, 4, kernel_size=\(3, 3\), stride=\(0, 0\)\): stride must be positive"):
        nn.Conv2d(3, 4, 3, stride=0)
    with pytest.raises(ValueError, match=r"conv2d: stride must be positive.*input shape \(1, 3, 5, 5\)"):
        F.conv2d(ag.randn(1, 3, 5, 5), ag.randn(4, 3, 3, 3), stride=0)
    with pytest.raises(ValueError, match=r"conv_transpose2d: stride must be positive"):
        F.conv_transpose2d(ag.randn(1, 3, 5, 5), ag.randn(3, 4, 3, 3), stride=(1, 0))
    with pytest.raises(ValueError, match=r"MaxPool2d: stride must be positive"):
        nn.MaxPool2d(2, stride=0)
    with pytest.raises(ValueError, match=r"max_pool2d: .*stride \(0, 0\).*input shape"):
        F.max_pool2d(ag.randn(1, 1, 4, 4), 2, stride=0)


def test_wrong_rank_and_other_bad_arguments():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4.*4-D input.*\(3, 5\)"):
        nn.Conv2d(3, 4, 3)(ag.randn(3, 5))
    with pytest.raises(ValueError, match=r"conv2d: expected a 4-D weight"):
        F.conv2d(ag.randn(1, 3, 5, 5), ag.randn(4, 3, 3))
    with pytest.raises(ValueError, match=r"conv1d"):
        F.conv1d(ag.randn(1, 3, 5, 5), ag.randn(4, 3, 3))
    with pytest.raises(ValueError, match=r"MaxPool2d.*4-D input.*\(5,\)"):
        nn.MaxPool2d(2)(ag.randn(5))
    with pytest.raises(ValueError, match="groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="same"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding"):
        F.max_pool2d(ag.randn(1, 1, 6, 6), 2, padding=2)              # more than half the window
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(ag.randn(1, 2, 3, 3), ag.randn(2, 2, 3, 3), stride=2, output_padding=2)
    with pytest.raises(ValueError, match="bias"):
        F.conv2d(ag.randn(1, 3, 5, 5), ag.randn(4, 3, 3, 3), ag.randn(3))


def _address(a):
    return (a.base if a.base is not None else a).__array_interface__["data"][0]


def test_recycled_results_are_never_handed_out_while_a_view_is_alive():
    """Results big enough to be recycled (conv, transposed conv, max pooling and its backward): a later call
    of the same geometry must not overwrite an earlier result that is still seen, even only through a view."""
    rng = np.random.default_rng(1)
    x1, x2 = (rng.standard_normal((8, 16, 32, 32)).astype(np.float32) for _ in range(2))
    w = ag.tensor(rng.standard_normal((16, 16, 3, 3)).astype(np.float32))
    ops = [lambda x: F.conv2d(x, w, padding=1), lambda x: F.conv_transpose2d(x, w, padding=1),
           lambda x: F.max_pool2d(x, 2), lambda x: F.max_pool2d(F.relu(F.conv2d(x, w, padding=1)), 2)]
    for op in ops:
        views = []
        for _ in range(3):
            view = op(ag.tensor(x1)).array[1:, ::2]        # only a view of the first result survives
            views.append((view, view.copy()))
        for _ in range(3):
            op(ag.tensor(x2))
        for view, kept in views:
            np.testing.assert_array_equal(view, kept)


def test_max_pool_gradients_stay_correct_when_results_are_recycled():
    """Repeated steps reuse the released result arrays; values and gradients match a fresh computation."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 16, 32, 32)).astype(np.float32)
    x[:, :, ::3] = 0                                                 # ties: the first maximum takes the gradient
    g = rng.standard_normal((8, 16, 16, 16)).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.max_pool2d(tx, 2)
    ty.backward(torch.tensor(g))
    for _ in range(4):
        xt = ag.tensor(x, requires_grad=True)
        y = F.max_pool2d(xt, 2)
        (y * ag.tensor(g)).sum().backward()
        np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
        np.testing.assert_array_equal(xt.grad.numpy(), tx.grad.numpy())


def test_released_results_are_reused():
    """A result nobody references any more is handed out again (no fresh memory, hence no page faults)."""
    rng = np.random.default_rng(3)
    x = ag.tensor(rng.standard_normal((8, 16, 32, 32)).astype(np.float32))
    w = ag.tensor(rng.standard_normal((16, 16, 3, 3)).astype(np.float32))
    first = _address(F.conv_transpose2d(x, w, padding=1).array)
    assert _address(F.conv_transpose2d(x, w, padding=1).array) == first
    kept = F.conv_transpose2d(x, w, padding=1)
    assert _address(F.conv_transpose2d(x, w, padding=1).array) != _address(kept.array)


def _one_pass(monkeypatch):
    """Make every pooling geometry take the one-pass window loop (the reference of the two-pass tile path)."""
    from autograd.ops import _grid
    init = _grid._Geom.__init__

    def no_tiles(self, *a, **kw):
        init(self, *a, **kw)
        self.tiles = False
    monkeypatch.setattr(_grid._Geom, "__init__", no_tiles)


@pytest.mark.parametrize("kernel", [2, 3, (2, 3), (1, 2)])
@pytest.mark.parametrize("layout", ["nchw", "batch_last"])
def test_tiling_max_pool_equals_the_one_pass_path(monkeypatch, kernel, layout):
    """The two-pass path for windows that tile the input (kernel = stride) gives bit-for-bit the values, first-
    maximum gradients (ties included), double-backward gradients and indices of the one-pass window loop."""
    rng = np.random.default_rng(4)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = rng.integers(-2, 3, size=(3, 4, 2 * kh, 3 * kw)).astype(np.float64)     # many ties, zeros included
    x[0, 0] = 0
    g = rng.standard_normal((3, 4, 2, 3))
    gg = rng.standard_normal(x.shape)

    def run():
        data = x if layout == "nchw" else np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
        xt, gt = ag.tensor(data, requires_grad=True), ag.tensor(g, requires_grad=True)
        y, idx = F.max_pool2d(xt, kernel, return_indices=True)
        gx, = ag.grad((y * gt).sum(), [xt], create_graph=True)
        ggt, = ag.grad((gx * ag.tensor(gg)).sum(), [gt])             # the gather of the double backward
        return y.numpy(), idx.numpy(), gx.numpy(), ggt.numpy()

    fast = run()
    _one_pass(monkeypatch)
    slow = run()
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)
