"""nn.Module machinery: registration, iteration, modes, device/dtype moves, state_dict, containers, repr."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import autograd as ag
import backends
import nn
import nn.functional as F


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.scale = nn.Parameter(ag.ones(1))
        self.register_buffer("steps", ag.zeros(1))
        self.register_buffer("scratch", ag.zeros(2), persistent=False)
        self.plain = ag.ones(2)           # a plain Tensor attribute is not registered

    def forward(self, x):
        return F.relu(self.bn(self.fc(x))) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(4, 2, bias=False)

    def forward(self, x):
        return self.head(self.block(x))


def test_registration_and_iteration_order():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["block.scale", "block.fc.weight", "block.fc.bias", "block.bn.weight", "block.bn.bias",
                     "head.weight"]
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())
    assert [n for n, _ in net.named_buffers()] == ["block.steps", "block.scratch", "block.bn.running_mean",
                                                   "block.bn.running_var", "block.bn.num_batches_tracked"]
    assert [n for n, _ in net.named_children()] == ["block", "head"]
    assert [type(m).__name__ for m in net.modules()] == ["Net", "Block", "Linear", "BatchNorm1d", "Linear"]
    assert len(list(net.block.parameters(recurse=False))) == 1
    assert net.head.bias is None and "bias" in net.head._parameters
    assert "plain" not in dict(net.block.named_buffers())


def test_reassignment_rules():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="parameter 'weight'"):
        m.weight = ag.zeros(2, 2)          # a plain Tensor cannot replace a Parameter
    m.weight = nn.Parameter(ag.zeros(2, 2))
    assert float(m.weight.sum().item()) == 0.0
    m.bias = None
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    seq = nn.Sequential(nn.ReLU())
    with pytest.raises(TypeError, match="child module"):
        seq[0] = 3
    blk = Block()
    with pytest.raises(TypeError, match="buffer"):
        blk.steps = [1, 2]
    blk.steps = ag.ones(1)
    assert float(dict(blk.named_buffers())["steps"].item()) == 1.0

    class NoInit(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(ag.ones(1))

    with pytest.raises(AttributeError, match="super"):
        NoInit()


def test_shared_parameters_counted_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_train_eval_propagates():
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5)))
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_zero_grad_sets_none():
    net = Net()
    net(ag.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_astype_double_float_keep_identity_and_int_buffers():
    net = Net()
    p = net.block.fc.weight
    net.double()
    assert p is net.block.fc.weight and isinstance(p, nn.Parameter) and p.requires_grad
    assert all(t.dtype == np.float64 for t in net.parameters())
    assert net.block.bn.running_mean.dtype == np.float64
    assert net.block.bn.num_batches_tracked.dtype == np.int64
    out = net(ag.randn(4, 3, dtype="float64"))
    assert out.dtype == np.float64
    net.float()
    assert all(t.dtype == np.float32 for t in net.parameters())
    net.astype("float64")
    assert net.head.weight.dtype == np.float64


def test_to_cpu_is_noop_and_unknown_device_errors():
    net = Net()
    w = net.head.weight.array
    assert net.to("cpu") is net
    assert net.head.weight.array is w
    with pytest.raises(backends.DeviceError):
        net.to("tpu")


@pytest.mark.skipif(not backends.cuda_available(), reason="CuPy or a CUDA GPU is not available")
def test_to_cuda_moves_params_buffers_and_grads():
    net = Net()
    net(ag.randn(4, 3)).sum().backward()
    p = net.head.weight
    net.eval()
    x = ag.randn(4, 3)
    ref = net(x).numpy()
    net.to("cuda")
    assert p is net.head.weight and isinstance(p, nn.Parameter) and p.device == "cuda"
    assert p.grad.device == "cuda"
    assert all(b.device == "cuda" for b in net.buffers())
    np.testing.assert_allclose(net(x.to("cuda")).numpy(), ref, rtol=1e-5, atol=1e-6)
    net.cpu()
    assert p.device == "cpu"


def test_state_dict_contents_and_roundtrip():
    ag.manual_seed(0)
    a, b = Net(), Net()
    sd = a.state_dict()
    assert isinstance(sd, OrderedDict)
    assert list(sd) == ["block.scale", "block.steps", "block.fc.weight", "block.fc.bias", "block.bn.weight",
                        "block.bn.bias", "block.bn.running_mean", "block.bn.running_var",
                        "block.bn.num_batches_tracked", "head.weight"]
    assert not any(t.requires_grad for t in sd.values())
    result = b.load_state_dict({k: v.numpy() for k, v in sd.items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    x = ag.randn(5, 3)
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_load_state_dict_copies_into_existing_tensors_keeping_dtype():
    net = nn.Linear(2, 3)
    w = net.weight
    v0 = w._version
    net.load_state_dict({"weight": np.arange(6, dtype=np.float64).reshape(3, 2), "bias": ag.ones(3)})
    assert net.weight is w and w.dtype == np.float32 and w.requires_grad
    assert w._version > v0
    np.testing.assert_array_equal(w.numpy(), np.arange(6).reshape(3, 2))
    # a loaded state is a copy, not an alias of the source
    src = {"weight": np.zeros((3, 2), np.float32), "bias": np.zeros(3, np.float32)}
    net.load_state_dict(src)
    src["weight"][0, 0] = 5
    assert net.weight.numpy()[0, 0] == 0


def test_load_state_dict_reports_every_problem_and_leaves_model_untouched():
    net = Net()
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    bad = {k: v.numpy() for k, v in net.state_dict().items()}
    del bad["head.weight"]                               # missing
    bad["block.extra"] = np.zeros(2)                     # unexpected
    bad["block.fc.weight"] = np.zeros((3, 4))            # wrong shape (4, 3) expected
    bad["block.fc.bias"] = np.full(4, 7.0)               # fine, but must not be loaded
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(bad)
    msg = str(info.value)
    assert "head.weight" in msg and "block.extra" in msg and "block.fc.weight" in msg
    assert "(3, 4)" in msg and "(4, 3)" in msg
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)


def test_load_state_dict_non_strict():
    net = nn.Linear(2, 2)
    res = net.load_state_dict({"weight": np.eye(2), "other": np.zeros(1)}, strict=False)
    assert res.missing_keys == ["bias"] and res.unexpected_keys == ["other"]
    np.testing.assert_array_equal(net.weight.numpy(), np.eye(2))
    with pytest.raises(RuntimeError, match="Size mismatch"):
        net.load_state_dict({"weight": np.eye(3)}, strict=False)


def test_call_runs_forward_and_hooks():
    lin = nn.Linear(2, 2)
    seen = []
    h = lin.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    lin(ag.randn(3, 2))
    h.remove()
    lin(ag.randn(3, 2))
    assert seen == [(3, 2)]
    with pytest.raises(NotImplementedError):
        nn.Module()(1)


def test_hooks_may_remove_themselves_while_running():
    lin = nn.Linear(2, 2)
    calls = []

    def once_pre(m, args):
        calls.append("pre")
        pre.remove()

    def once(m, args, out):
        calls.append("post")
        post.remove()
    pre, post = lin.register_forward_pre_hook(once_pre), lin.register_forward_hook(once)
    lin(ag.randn(3, 2))
    lin(ag.randn(3, 2))
    assert calls == ["pre", "post"]


def test_sequential_container():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    assert len(seq) == 2 and isinstance(seq[0], nn.Linear) and isinstance(seq[-1], nn.ReLU)
    seq.append(nn.Linear(3, 1))
    assert len(seq) == 3 and [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2
    assert seq(ag.randn(4, 2)).shape == (4, 1)
    with pytest.raises(IndexError):
        seq[3]
    named = nn.Sequential(OrderedDict(fc=nn.Linear(2, 2), act=nn.Tanh()))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]
    assert named.fc is named[0]


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers.append(nn.Linear(2, 1))
    assert len(layers) == 4 and len(list(layers.parameters())) == 8
    assert list(layers.state_dict())[:2] == ["0.weight", "0.bias"]
    x = ag.randn(1, 2)
    for layer in layers:
        x = layer(x)
    assert x.shape == (1, 1)
    d = nn.ModuleDict({"a": nn.Linear(1, 1), "b": nn.ReLU()})
    assert "a" in d and list(d.keys()) == ["a", "b"] and len(list(d.parameters())) == 2


def test_flatten_identity_apply():
    x = ag.randn(2, 3, 4)
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0)(x).shape == (24,)
    assert nn.Identity(54, unused="x")(x) is x
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    net.apply(lambda m: nn.init.zeros_(m.weight) if isinstance(m, nn.Linear) else None)
    assert all(float(m.weight.abs().sum().item()) == 0 for m in net)


def test_repr_like_pytorch():
    net = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10, bias=False))
    assert repr(net) == ("Sequential(\n"
                         "  (0): Linear(in_features=784, out_features=128, bias=True)\n"
                         "  (1): ReLU()\n"
                         "  (2): Dropout(p=0.2, inplace=False)\n"
                         "  (3): Linear(in_features=128, out_features=10, bias=False)\n"
                         ")")
    nested = repr(Net())
    assert "(block): Block(\n    (fc): Linear(in_features=3, out_features=4, bias=True)" in nested
    assert repr(nn.BatchNorm2d(3)) == "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
