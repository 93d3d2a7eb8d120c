"""PyTorch's semantics for tensors (issue 23): each everyday idiom runs on autograd and on PyTorch (when installed)
with the same result; the points where NumPy and PyTorch differ follow PyTorch; NumPy's keyword names stay
accepted through the op records; ``import autograd as torch`` reaches nn, optim and utils.data."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import autograd as ag

A = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7 - 1
M = np.array([[3.0, 1.0, 2.0], [0.5, 4.0, -1.0]], np.float32)
I = np.array([[1, -7, 3], [4, 5, -6]], np.int64)


def _t(T, a, **kw):
    return T.tensor(a.copy(), **kw)


# name -> f(T) with T the module (autograd or torch); results are compared value, shape and dtype
IDIOMS = {
    # "coming from NumPy": where the two libraries differ, PyTorch's meaning
    "transpose swaps two dims": lambda T: _t(T, A).transpose(0, 2),
    "transpose of 2-D swaps": lambda T: _t(T, M).transpose(0, 1),
    "permute": lambda T: _t(T, A).permute(2, 0, 1),
    "T of 2-D": lambda T: _t(T, M).T,
    "mT": lambda T: _t(T, A).mT,
    "size() is a method": lambda T: tuple(_t(T, A).size()),
    "size(dim)": lambda T: _t(T, A).size(1),
    "size(-1)": lambda T: _t(T, A).size(-1),
    "numel": lambda T: _t(T, A).numel(),
    "dim": lambda T: _t(T, A).dim(),
    "max with dim gives values and indices": lambda T: tuple(_t(T, M).max(1)),
    "torch.max(t, 1) unpacks": lambda T: T.max(_t(T, M), 1)[1],
    "max values/indices fields": lambda T: (T.max(_t(T, M), dim=0).values, T.max(_t(T, M), dim=0).indices),
    "min with dim keepdim": lambda T: tuple(_t(T, M).min(dim=1, keepdim=True)),
    "max of all": lambda T: T.max(_t(T, M)),
    "max(a, b) elementwise": lambda T: T.max(_t(T, M), _t(T, M[::-1])),
    "min(a, b) elementwise": lambda T: T.min(_t(T, M), _t(T, M[::-1])),
    "max at batch size 2": lambda T: T.max(_t(T, M[:, :2]), 1)[1],
    "argmax dim": lambda T: _t(T, M).argmax(1),
    "argmax all": lambda T: _t(T, M).argmax(),
    "argmin keepdim": lambda T: _t(T, M).argmin(dim=0, keepdim=True),
    "std unbiased": lambda T: _t(T, M).std(),
    "var unbiased": lambda T: _t(T, M).var(),
    "var dim": lambda T: _t(T, M).var(1),
    "var unbiased=False": lambda T: _t(T, M).var(1, unbiased=False),
    "std correction=0": lambda T: _t(T, M).std(dim=0, correction=0),
    "std keepdim": lambda T: _t(T, A).std(dim=(0, 2), keepdim=True),
    "split by size": lambda T: T.split(_t(T, np.arange(5.0, dtype=np.float32)), 2),
    "split sizes": lambda T: _t(T, A).split([1, 3], dim=2),
    "chunk": lambda T: _t(T, np.arange(7.0, dtype=np.float32)).chunk(3),
    "repeat tiles": lambda T: _t(T, M).repeat(2, 1, 3),
    "repeat_interleave": lambda T: _t(T, M).repeat_interleave(2, dim=1),
    "repeat_interleave flat": lambda T: _t(T, M).repeat_interleave(2),
    "int true division": lambda T: _t(T, I) / 2,
    "int floor division": lambda T: _t(T, I) // 2,
    "int remainder": lambda T: _t(T, I) % 4,
    "bool and": lambda T: (_t(T, I) > 0) & (_t(T, I) < 4),
    "int xor": lambda T: _t(T, I) ^ 5,
    "invert": lambda T: ~(_t(T, I) > 0),
    # the everyday surface
    "view": lambda T: _t(T, A).view(6, -1),
    "view(size(0), -1)": lambda T: (lambda x: x.view(x.size(0), -1))(_t(T, A)),
    "reshape varargs": lambda T: _t(T, A).reshape(4, 6),
    "flatten(1)": lambda T: _t(T, A).flatten(1),
    "flatten(0, 1)": lambda T: _t(T, A).flatten(0, 1),
    "unflatten": lambda T: _t(T, A).unflatten(2, (2, 2)),
    "contiguous view": lambda T: _t(T, A).transpose(0, 1).contiguous().view(-1),
    "squeeze dim of size 1": lambda T: _t(T, A[:, :1]).squeeze(1),
    "squeeze other dim unchanged": lambda T: _t(T, A).squeeze(0),
    "unsqueeze": lambda T: _t(T, M).unsqueeze(-1),
    "expand": lambda T: _t(T, M[:1]).expand(4, -1),
    "expand_as": lambda T: _t(T, M[:, :1]).expand_as(_t(T, M)),
    "cat": lambda T: T.cat([_t(T, M), _t(T, M)], dim=1),
    "concat": lambda T: T.concat([_t(T, M), _t(T, M)]),
    "stack": lambda T: T.stack([_t(T, M), _t(T, M)], dim=1),
    "hstack": lambda T: T.hstack([_t(T, M), _t(T, M)]),
    "vstack 1-D": lambda T: T.vstack([_t(T, M[0]), _t(T, M[1])]),
    "unbind": lambda T: _t(T, M).unbind(1),
    "tril": lambda T: _t(T, A).tril(),
    "triu diagonal": lambda T: _t(T, M).triu(1),
    "diag of vector": lambda T: T.diag(_t(T, M[0]), -1),
    "diag of matrix": lambda T: T.diag(_t(T, M), 1),
    "diagonal": lambda T: _t(T, A).diagonal(0, 1, 2),
    "roll": lambda T: _t(T, A).roll(2, 2),
    "roll flat": lambda T: _t(T, M).roll(-2),
    "flip": lambda T: _t(T, A).flip(0, 2),
    "clone": lambda T: _t(T, M).clone(),
    "movedim": lambda T: _t(T, A).movedim(0, -1),
    "sum dim keepdim": lambda T: _t(T, A).sum(dim=1, keepdim=True),
    "sum dtype": lambda T: _t(T, M).sum(dtype=T.float64),
    "mean tuple dims": lambda T: _t(T, A).mean((0, 2)),
    "amax": lambda T: _t(T, A).amax(dim=(0, 1)),
    "logsumexp": lambda T: _t(T, A).logsumexp(1),
    "pad last dim": lambda T: T.nn.functional.pad(_t(T, M), (1, 2)),
    "pad two dims": lambda T: T.nn.functional.pad(_t(T, A), (1, 0, 0, 2), value=3.0),
    "pad reflect": lambda T: T.nn.functional.pad(_t(T, A), (2, 1), mode="reflect"),
    "pad replicate": lambda T: T.nn.functional.pad(_t(T, A)[None], (1, 2, 2, 1), mode="replicate"),
    "pad circular": lambda T: T.nn.functional.pad(_t(T, A), (1, 3), mode="circular"),
    "long": lambda T: _t(T, M).long(),
    "int": lambda T: _t(T, M).int(),
    "bool": lambda T: _t(T, M).bool(),
    "double": lambda T: _t(T, M).double(),
    "half": lambda T: _t(T, M).half(),
    "to dtype": lambda T: _t(T, I).to(T.float32),
    "to device dtype": lambda T: _t(T, I).to("cpu", T.float64),
    "type_as": lambda T: _t(T, I).type_as(_t(T, M)),
    "new_zeros": lambda T: _t(T, M).double().new_zeros((2, 2)),
    "new_full": lambda T: _t(T, M).new_full((3,), 2.5),
    "new_tensor": lambda T: _t(T, M).new_tensor([1, 2]),
    "item of sum": lambda T: (_t(T, I) > 0).sum().item(),
    "labels.size(0)": lambda T: _t(T, I).size(0),
}


def _host(v):
    """A comparable form: arrays for tensors (dtype by name), tuples for sequences."""
    if hasattr(v, "detach") and hasattr(v, "numpy"):
        arr = v.detach().numpy()
        return ("tensor", str(arr.dtype), arr.shape, arr.tolist())
    if isinstance(v, (tuple, list)):
        return tuple(_host(e) for e in v)
    return v


@pytest.mark.parametrize("name", sorted(IDIOMS))
def test_idiom_matches_pytorch(name):
    torch = pytest.importorskip("torch")
    ours, theirs = _host(IDIOMS[name](ag)), _host(IDIOMS[name](torch))
    assert ours == theirs or _close(ours, theirs), f"{name}: {ours} vs PyTorch {theirs}"


def _close(a, b) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        if a and a[0] == "tensor" and b[0] == "tensor":
            return a[1:3] == b[1:3] and np.allclose(np.asarray(a[3], float), np.asarray(b[3], float), rtol=1e-5,
                                                   atol=1e-6, equal_nan=True)
        return all(_close(x, y) for x, y in zip(a, b))
    return isinstance(a, float) and isinstance(b, float) and abs(a - b) <= 1e-5 * max(1.0, abs(b))


def test_idioms_run_without_pytorch():
    """Every idiom runs here (the comparisons above need torch; these hold without it)."""
    for name, f in IDIOMS.items():
        f(ag)
    x = ag.tensor(M)
    assert x.transpose(0, 1).shape == (3, 2) and x.size() == (2, 3) and x.size(1) == 3 and x.numel() == 6
    values, indices = ag.max(x, 1)
    np.testing.assert_array_equal(values.numpy(), [3.0, 4.0])
    np.testing.assert_array_equal(indices.numpy(), [0, 1])
    assert ag.std(ag.tensor([1.0, 3.0])).item() == pytest.approx(np.sqrt(2.0))          # n - 1
    assert [p.shape for p in ag.split(ag.zeros(5), 2)] == [(2,), (2,), (1,)]
    assert (ag.tensor([1, 2]) / 2).dtype == np.float32


# --- NumPy's spellings, from the op records ------------------------------------------------------------------
def test_numpy_keyword_names_are_aliases_of_pytorchs():
    x = ag.tensor(A)
    np.testing.assert_array_equal(x.sum(axis=1, keepdims=True).numpy(), x.sum(dim=1, keepdim=True).numpy())
    np.testing.assert_array_equal(ag.mean(x, axis=(0, 2)).numpy(), ag.mean(x, dim=(0, 2)).numpy())
    np.testing.assert_array_equal(x.std(axis=0, ddof=0).numpy(), x.std(dim=0, correction=0).numpy())
    np.testing.assert_array_equal(ag.concatenate([x, x], axis=2).numpy(), ag.cat([x, x], dim=2).numpy())
    with pytest.raises(TypeError, match="got both 'dim' and its alias 'axis'"):
        x.sum(dim=0, axis=1)


def test_every_alias_is_the_records_function():
    for rec in ag.public_ops().values():
        for alias in rec.aliases:
            if rec.export:
                assert getattr(ag, alias) is rec.func, alias
            if rec.methods:
                assert getattr(ag.Tensor, alias) is rec.func, alias
    assert ag.concat is ag.cat and ag.Tensor.swapaxes is ag.transpose


# --- .data, view, contiguity -----------------------------------------------------------------------------------
def test_data_is_a_detached_tensor_sharing_storage():
    w = ag.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    d = w.data
    assert isinstance(d, ag.Tensor) and not d.requires_grad and d.array is w.array
    w.data -= 0.5 * w.grad                  # the textbook's manual SGD step
    np.testing.assert_allclose(w.numpy(), [0.0, 0.0])
    assert w.requires_grad and w.is_leaf
    w.data = ag.tensor([5.0, 6.0])
    np.testing.assert_array_equal(w.numpy(), [5.0, 6.0])


def test_view_shares_storage_and_refuses_what_needs_a_copy():
    x = ag.tensor(A)
    v = x.view(4, 6)
    v.array[0, 0] = 42.0
    assert x.array[0, 0, 0] == 42.0
    with pytest.raises(RuntimeError, match=r"view: .*cannot be viewed as \(24,\) without a copy; use .reshape"):
        x.transpose(0, 2).view(-1)
    assert not x.transpose(0, 2).is_contiguous() and x.transpose(0, 2).contiguous().is_contiguous()
    np.testing.assert_array_equal(x.transpose(0, 2).reshape(-1).numpy(), x.numpy().transpose(2, 1, 0).reshape(-1))


def test_view_of_a_convolution_result_works():
    """Convolution results are stored batch-last (the library's layout); ``view`` reads them as PyTorch would."""
    import nn
    y = nn.Conv2d(1, 4, 3, padding=1)(ag.randn(5, 1, 6, 6))
    np.testing.assert_array_equal(y.view(y.size(0), -1).numpy(), y.numpy().reshape(5, -1))


@pytest.mark.parametrize("make", [lambda x: x.sum(dim=1), lambda x: ag.max(x, 1).values, lambda x: x.std(0),
                                  lambda x: x.transpose(0, 1) @ x, lambda x: x.repeat(2, 3).sum(0),
                                  lambda x: ag.cat(x.split([1, 2], 1)[::-1], 1) * x,
                                  lambda x: x.flip(1).roll(1, 0).tril(), lambda x: x.expand(3, 2, 3).mean(),
                                  lambda x: ag.nn.functional.pad(x, (1, 2, 1, 0), mode="reflect")])
def test_gradients_of_the_pytorch_forms(make):
    x = ag.tensor(M.astype(np.float64), requires_grad=True)
    assert ag.gradcheck(make, [x]) and ag.gradgradcheck(make, [x])


def test_max_over_a_dim_routes_the_gradient_to_the_nan():
    x = ag.tensor([[1.0, float("nan"), 3.0]], requires_grad=True)
    ag.amax(x, 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, 1.0, 0.0]])


# --- the import story ----------------------------------------------------------------------------------------
def test_import_autograd_as_torch_reaches_nn_optim_and_data():
    import nn
    import autograd as torch
    assert torch.nn is nn and torch.nn.functional.relu is nn.functional.relu
    assert torch.optim.Adam is nn.optim.Adam and torch.utils.data.DataLoader is nn.data.DataLoader
    assert torch.cuda.is_available() in (True, False)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        torch.nope


def test_importing_autograd_does_not_import_nn():
    code = "import sys, autograd; assert 'nn' not in sys.modules; autograd.nn; assert 'nn' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_device_objects_as_pytorch():
    dev = ag.device("cuda" if ag.cuda.is_available() else "cpu")
    x = ag.ones(2).to(dev)
    assert x.device == dev and dev == x.device and str(ag.device("cuda", 1)) == "cuda:1"
    assert repr(ag.device("cpu")) == "device(type='cpu')" and ag.device("cpu").type == "cpu"
    import nn
    m = nn.Linear(2, 2).to(ag.device("cpu"))
    assert m.weight.device == "cpu" and m.weight.dtype == np.float32
    with ag.device("cpu") as d:
        assert d == "cpu" and ag.zeros(1).device == "cpu"
    with pytest.raises(ag.DeviceError, match="unknown device 'banana'"):
        ag.device("banana")


def test_everyday_conveniences(tmp_path):
    x = ag.tensor([-1.0, 2.0, -3.0])
    assert x.clamp_(min=0) is x and x.tolist() == [0.0, 2.0, 0.0]
    x.exp_()
    np.testing.assert_allclose(x.numpy(), np.exp([0.0, 2.0, 0.0]), rtol=1e-6)
    w = ag.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ag.GraphError):
        w.relu_()                                 # a leaf that requires grad changes only under no_grad
    with ag.no_grad():
        w.mul_(2).relu_()
    assert w.tolist() == [2.0, 4.0] and not x.is_cuda and x.device.type == "cpu"
    ag.manual_seed(3)
    u = ag.empty(1000).uniform_(-2, 2)
    assert -2 <= u.numpy().min() and u.numpy().max() < 2 and abs(float(ag.empty(4000).normal_(1, 2).mean()) - 1) < 0.2
    (idx,) = ag.where(ag.tensor([1.0, 0.0, 2.0]) > 0)
    assert idx.tolist() == [0, 2] and ag.nonzero(ag.eye(2)).tolist() == [[0, 0], [1, 1]]
    import autograd as torch
    import nn
    m = nn.Linear(2, 2)
    torch.save(m.state_dict(), tmp_path / "m.npz")
    assert torch.load(tmp_path / "m.npz").keys() == m.state_dict().keys()
    with torch.inference_mode():
        assert not m(ag.ones(1, 2)).requires_grad
