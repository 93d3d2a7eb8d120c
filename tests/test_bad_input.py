"""Table-driven bad-input suite over the public API.

Every case builds fresh inputs, calls the API once with something wrong, and checks three things:
the exception has the stated specific type; its message names the op / layer / function and the
offending shape, dtype or value (a regex); and every input array, tensor, model parameter and buffer,
gradient and optimizer state is bit-for-bit what it was before the call (nothing was half-done).
"""
from __future__ import annotations

import numpy as np
import pytest

import autograd as ag
import nn
import nn.functional as F
from autograd import GraphError
from backends import DeviceError
from nn.data import DataLoader, TensorDataset, k_fold, random_split
from nn.data.loader import default_collate
from nn.optim import SGD, Adam, AdamW, Adagrad, RMSprop, Adadelta
from nn.optim import lr_scheduler as sched


# --- snapshots ------------------------------------------------------------------------------------


def _leaves(obj, name, out):
    """(name, ndarray) for every array reachable from ``obj`` (the things a failed call must not touch)."""
    if isinstance(obj, ag.Tensor):
        out.append((name, obj.array))
        if obj.grad is not None:
            out.append((name + ".grad", obj.grad.array))
    elif isinstance(obj, np.ndarray):
        out.append((name, obj))
    elif isinstance(obj, nn.Module):
        for k, v in obj.state_dict().items():
            _leaves(v, f"{name}.{k}", out)
        for k, p in obj.named_parameters():
            if p.grad is not None:
                _leaves(p.grad, f"{name}.{k}.grad", out)
        out.append((name + ".training", np.array(obj.training)))
    elif isinstance(obj, nn.optim.Optimizer):
        for gi, g in enumerate(obj.param_groups):
            for pi, p in enumerate(g["params"]):
                _leaves(p, f"{name}.group{gi}.p{pi}", out)
            out.append((f"{name}.group{gi}.lr", np.array(g["lr"])))
        for pi, (p, st) in enumerate(obj.state.items()):
            for k, v in st.items():
                _leaves(v if isinstance(v, (ag.Tensor, np.ndarray)) else np.array(v), f"{name}.state{pi}.{k}", out)
    elif isinstance(obj, sched.LRScheduler):
        _leaves(obj.optimizer, name + ".optimizer", out)
        out.append((name + ".last_epoch", np.array(obj.last_epoch)))
    elif isinstance(obj, TensorDataset):
        for i, a in enumerate(obj.arrays if hasattr(obj, "arrays") else obj.tensors):
            _leaves(a, f"{name}.{i}", out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _leaves(v, f"{name}[{i}]", out)
    return out


def _snapshot(watched):
    return [(n, a.dtype, a.shape, np.asarray(a).tobytes()) for n, a in _leaves(list(watched), "arg", [])]


# --- builders -------------------------------------------------------------------------------------


def _f32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _t(*shape, rg=True, seed=0, dtype=np.float32):
    return ag.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=rg)


def _model_with_grads():
    ag.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    m(ag.tensor(_f32(5, 3))).sum().backward()
    return m


def _stepped(opt_cls, **kw):
    m = _model_with_grads()
    opt = opt_cls(m.parameters(), **kw)
    opt.step()          # non-empty state
    return m, opt


CASES = []


def case(id, exc, match):
    def deco(build):
        CASES.append(pytest.param(build, exc, match, id=id))
        return build
    return deco


# --- factories ------------------------------------------------------------------------------------

@case("tensor-strings", TypeError, r"tensor: only bool, integer, floating-point or complex data .*dtype <U1")
def _():
    return lambda: ag.tensor(["a", "b"]), []


@case("tensor-object-array", TypeError, r"tensor: .*dtype object")
def _():
    a = np.array([1.0, None], dtype=object)
    return lambda: ag.tensor(a), [a]


@case("tensor-ragged", ValueError, r"tensor: the nested sequence is ragged.*inhomogeneous shape")
def _():
    return lambda: ag.tensor([[1.0, 2.0], [3.0]]), []


@case("tensor-bad-dtype-conversion", ValueError,
      r"tensor: .*non-numeric elements.*could not convert string to float: 'x'")
def _():
    return lambda: ag.tensor([1.0, "x"], dtype="float32"), []


@case("zeros-negative", ValueError, r"zeros: sizes must be non-negative, got -1 in shape \(-1, 3\)")
def _():
    return lambda: ag.zeros(-1, 3), []


@case("ones-float-size", TypeError, r"ones: sizes must be integers, got 2\.0 \(float\)")
def _():
    return lambda: ag.ones(2.0, 3), []


@case("randn-float-size", TypeError, r"randn: sizes must be integers, got 2\.5")
def _():
    return lambda: ag.randn(2.5), []


@case("rand-negative", ValueError, r"rand: sizes must be non-negative, got -2")
def _():
    return lambda: ag.rand((3, -2)), []


@case("full-negative", ValueError, r"full: sizes must be non-negative, got -4")
def _():
    return lambda: ag.full((-4,), 1.0), []


@case("arange-zero-step", ValueError, r"arange: step must be non-zero, got 0")
def _():
    return lambda: ag.arange(0, 10, 0), []


@case("arange-string", TypeError, r"arange: end must be a number, got 'ten'")
def _():
    return lambda: ag.arange(0, "ten"), []


@case("from_numpy-list", TypeError, r"from_numpy: expected a numpy\.ndarray, got builtins\.list")
def _():
    return lambda: ag.from_numpy([1.0, 2.0]), []


@case("from_numpy-object", TypeError, r"from_numpy: .*dtype object")
def _():
    a = np.array(["a", 1], dtype=object)
    return lambda: ag.from_numpy(a), [a]


@case("as_tensor-strings", TypeError, r"as_tensor: only bool, integer, floating-point or complex data .*<U")
def _():
    return lambda: ag.as_tensor(["x", "y"]), []


@case("device-unknown", DeviceError, r"unknown device 'tpu'")
def _():
    return lambda: ag.zeros(2, device="tpu"), []


# --- ops ------------------------------------------------------------------------------------------

@case("add-shapes", ValueError, r"Add: .*broadcast.*\(2, 3\), \(4,\)")
def _():
    x, y = _t(2, 3), _t(4)
    return lambda: x + y, [x, y]


@case("matmul-shapes", ValueError, r"MatMul: .*size 2 is different from 3.*input shapes \[\(2, 3\), \(2, 3\)\]")
def _():
    x, y = _t(2, 3), _t(2, 3, seed=1)
    return lambda: x @ y, [x, y]


@case("reshape-size", ValueError,
      r"Reshape: cannot reshape array of size 6 into shape \(4, ?2\).*input shapes \[\(2, 3\)\]")
def _():
    x = _t(2, 3)
    return lambda: x.reshape(4, 2), [x]


@case("sum-axis", IndexError, r"sum: dim 2 is out of range for a tensor of 2 dims")
def _():
    x = _t(2, 3)
    return lambda: x.sum(dim=2), [x]


@case("mean-axis", IndexError, r"mean: dim -3 is out of range for a tensor of 2 dims")
def _():
    x = _t(2, 3)
    return lambda: x.mean(dim=-3), [x]


@case("var-axis", IndexError, r"var: dim 5 is out of range for a tensor of 1 dims")
def _():
    x = _t(4)
    return lambda: ag.var(x, dim=5), [x]


@case("max-axis", ag.AxisError, r"Max: max: dim 3 is out of range for a tensor of 2 dims")
def _():
    x = _t(2, 3)
    return lambda: x.max(dim=3), [x]


@case("softmax-int", TypeError, r"softmax: expected a floating-point tensor, got dtype int64 \(shape \(2, 3\)\)")
def _():
    x = ag.tensor(np.arange(6).reshape(2, 3))
    return lambda: ag.softmax(x), [x]


@case("log_softmax-int", TypeError, r"log_softmax: expected a floating-point tensor, got dtype int32")
def _():
    x = ag.tensor(np.arange(6, dtype=np.int32))
    return lambda: ag.log_softmax(x), [x]


@case("logsumexp-bool", TypeError, r"logsumexp: expected a floating-point tensor, got dtype bool")
def _():
    x = ag.tensor(np.array([True, False]))
    return lambda: ag.logsumexp(x), [x]


@case("where-float-condition", TypeError, r"where: condition must be boolean, got dtype float32 \(shape \(3,\)\)")
def _():
    c, x, y = _t(3, rg=False), _t(3, seed=1), _t(3, seed=2)
    return lambda: ag.where(c, x, y), [c, x, y]


@case("where-int-list-condition", TypeError, r"where: condition must be boolean, got dtype int64")
def _():
    x, y = _t(3), _t(3, seed=1)
    return lambda: ag.where([1, 0, 1], x, y), [x, y]


@case("where-no-tensor", TypeError, r"where: at least one argument must be a Tensor")
def _():
    return lambda: ag.where(np.array([True]), 1.0, 2.0), []


@case("clip-no-bounds", ValueError, r"clip: at least one of min and max")
def _():
    x = _t(3)
    return lambda: ag.clip(x), [x]


@case("concat-shapes", ValueError, r"Concat: .*dimension 1.*size 3.*size 4.*input shapes \[\(2, 3\), \(2, 4\)\]")
def _():
    x, y = _t(2, 3), _t(2, 4, seed=1)
    return lambda: ag.concat([x, y], dim=0), [x, y]


@case("stack-shapes", ValueError, r"stack: all tensors must have the same shape, got \[\(2,\), \(3,\)\]")
def _():
    x, y = _t(2), _t(3, seed=1)
    return lambda: ag.stack([x, y]), [x, y]


@case("split-sizes", ValueError, r"split: sizes \[2, 2\] do not add up to 5, the size of dim 0 of shape \(5,\)")
def _():
    x = _t(5)
    return lambda: ag.split(x, [2, 2]), [x]


@case("squeeze-dim", ag.AxisError, r"squeeze: dim 2 is out of range for a tensor of 2 dims")
def _():
    x = _t(2, 1)
    return lambda: x.squeeze(2), [x]


@case("unsqueeze-axis", IndexError, r"unsqueeze: dim 4 is out of range")
def _():
    x = _t(2, 3)
    return lambda: x.unsqueeze(4), [x]


@case("getitem-out-of-range", IndexError, r"GetItem: index 5 is out of bounds for axis 0 with size 3")
def _():
    x = _t(3)
    return lambda: x[5], [x]


@case("broadcast_to-incompatible", ValueError, r"BroadcastTo: .*from shape \(3,\) into shape \(2, ?4\)")
def _():
    x = _t(3)
    return lambda: ag.broadcast_to(x, (2, 4)), [x]


@case("permute-dims", ValueError, r"permute: dims \(0, 0\) are not a permutation of the 2 dims of a tensor of "
                                   r"shape \(2, 3\)")
def _():
    x = _t(2, 3)
    return lambda: x.permute(0, 0), [x]


@case("F.flatten-start-dim", IndexError, r"flatten: start_dim=3 is out of range for an input with ndim 2")
def _():
    x = _t(2, 3)
    return lambda: F.flatten(x, 3), [x]


# --- Tensor methods -------------------------------------------------------------------------------

@case("copy_-shape", ValueError, r"copy_: source shape \(3,\) does not broadcast to the destination shape \(2, 2\)")
def _():
    x, src = _t(2, 2, rg=False), _f32(3)
    return lambda: x.copy_(src), [x, src]


@case("add_-shape", ValueError, r"add_: .*shapes \(2,\) and \(3,\)")
def _():
    x, y = _t(2, rg=False), _t(3, rg=False)
    return lambda: x.add_(y), [x, y]


@case("inplace-on-leaf-requiring-grad", GraphError,
      r"add_: in-place change of a tensor that requires grad \(shape \(3,\)\)")
def _():
    x = _t(3)
    return lambda: x.add_(1.0), [x]


@case("item-multi", ValueError, r"item\(\): only one-element tensors .*shape \(2, 2\)")
def _():
    x = _t(2, 2)
    return lambda: x.item(), [x]


@case("backward-non-scalar", RuntimeError,
      r"backward: grad can be implicitly created only for one-element outputs; got shape \(3,\)")
def _():
    x = _t(3)
    return lambda: (x * 2).backward(), [x]


@case("backward-gradient-shape", ValueError, r"backward: gradient shape \(2,\) does not match output shape \(3,\)")
def _():
    x = _t(3)
    return lambda: (x * 2).backward(np.ones(2, np.float32)), [x]


@case("backward-no-graph", GraphError, r"backward: tensor of shape \(\) does not require grad and has no graph")
def _():
    x = _t(2, rg=False)
    return lambda: x.sum().backward(), [x]


@case("requires_grad-int", TypeError, r"only floating-point tensors can require gradients, got dtype int64")
def _():
    x = ag.tensor([1, 2])
    return lambda: x.requires_grad_(), [x]


@case("len-0d", TypeError, r"len\(\) of a 0-d tensor")
def _():
    x = ag.tensor(1.0)
    return lambda: len(x), [x]


@case("setitem-out-of-range", IndexError, r"__setitem__: .*tensor shape \(3,\)")
def _():
    x = _t(3, rg=False)
    return lambda: x.__setitem__(7, 1.0), [x]


@case("grad-unused-input", GraphError, r"grad: input 1 \(shape \(2,\)\) is not part of the graph")
def _():
    x, y = _t(2), _t(2, seed=1)
    return lambda: ag.grad((x * x).sum(), [x, y]), [x, y]


# --- layers ---------------------------------------------------------------------------------------

@case("Linear-features", ValueError, r"Linear\(in_features=3.*got shape \(2, 4\)")
def _():
    m, x = nn.Linear(3, 2), _t(2, 4, rg=False)
    return lambda: m(x), [m, x]


@case("Linear-float64", TypeError, r"Linear\(in_features=3, out_features=2.*dtype float32.*got float64")
def _():
    m, x = nn.Linear(3, 2), _t(2, 3, dtype=np.float64)
    return lambda: m(x), [m, x]


@case("Linear-int", TypeError, r"Linear\(.*expected input of dtype float32.*got int64")
def _():
    m, x = nn.Linear(3, 2), ag.tensor(np.ones((2, 3), dtype=np.int64))
    return lambda: m(x), [m, x]


@case("Linear-float32-input-to-float64-layer", TypeError, r"Linear\(.*dtype float64.*got float32")
def _():
    m, x = nn.Linear(3, 2).double(), _t(2, 3)
    return lambda: m(x), [m, x]


@case("Linear-numpy-float64", TypeError, r"Linear\(.*dtype float32.*got float64")
def _():
    m, x = nn.Linear(3, 2), np.ones((2, 3))
    return lambda: m(x), [m, x]


@case("Linear-negative-features", ValueError, r"Linear: feature counts must be non-negative, got \(-1, 2\)")
def _():
    return lambda: nn.Linear(-1, 2), []


@case("Conv2d-channels", ValueError, r"Conv2d\(3, 4.*expected input with 3 channels, got shape \(1, 2, 5, 5\)")
def _():
    m, x = nn.Conv2d(3, 4, 3), _t(1, 2, 5, 5, rg=False)
    return lambda: m(x), [m, x]


@case("Conv2d-rank", ValueError, r"Conv2d\(3, 4.*expected a 4-D input.*got shape \(3, 5\)")
def _():
    m, x = nn.Conv2d(3, 4, 3), _t(3, 5, rg=False)
    return lambda: m(x), [m, x]


@case("Conv2d-float64", TypeError, r"Conv2d\(3, 4.*dtype float32.*got float64")
def _():
    m, x = nn.Conv2d(3, 4, 3), _t(1, 3, 5, 5, dtype=np.float64)
    return lambda: m(x), [m, x]


@case("Conv1d-float64", TypeError, r"Conv1d\(2, 3.*dtype float32.*got float64")
def _():
    m, x = nn.Conv1d(2, 3, 3), _t(1, 2, 6, dtype=np.float64)
    return lambda: m(x), [m, x]


@case("ConvTranspose2d-float64", TypeError, r"ConvTranspose2d\(2, 3.*dtype float32.*got float64")
def _():
    m, x = nn.ConvTranspose2d(2, 3, 3), _t(1, 2, 4, 4, dtype=np.float64)
    return lambda: m(x), [m, x]


@case("RNN-float64", TypeError, r"RNN\(4, 5.*dtype float32.*got float64")
def _():
    m, x = nn.RNN(4, 5), _t(3, 2, 4, dtype=np.float64)
    return lambda: m(x), [m, x]


@case("LSTM-features", ValueError, r"LSTM: input has 3 features \(shape \(5, 2, 3\)\), expected input_size=4")
def _():
    m, x = nn.LSTM(4, 5), _t(5, 2, 3, rg=False)
    return lambda: m(x), [m, x]


@case("GRU-float64-state", TypeError, r"GRU\(4, 5.*expected initial state of dtype float32.*got float64")
def _():
    m, x, h = nn.GRU(4, 5), _t(3, 2, 4), _t(1, 2, 5, dtype=np.float64)
    return lambda: m(x, h), [m, x, h]


@case("LSTMCell-float64", TypeError, r"LSTMCell\(4, 5\).*dtype float32.*got float64")
def _():
    m, x = nn.LSTMCell(4, 5), _t(2, 4, dtype=np.float64)
    return lambda: m(x), [m, x]


@case("GRUCell-float64-state", TypeError, r"GRUCell\(4, 5\).*expected state of dtype float32.*got float64")
def _():
    m, x, h = nn.GRUCell(4, 5), _t(2, 4), _t(2, 5, dtype=np.float64)
    return lambda: m(x, h), [m, x, h]


@case("BatchNorm1d-channels", ValueError, r"BatchNorm1d\(3\): input has 4 channels on axis 1 \(shape \(2, 4\)\)")
def _():
    m, x = nn.BatchNorm1d(3), _t(2, 4, rg=False)
    return lambda: m(x), [m, x]


@case("BatchNorm2d-rank", ValueError, r"BatchNorm2d: expected 4-D input, got shape \(2, 3\)")
def _():
    m, x = nn.BatchNorm2d(3), _t(2, 3, rg=False)
    return lambda: m(x), [m, x]


@case("BatchNorm2d-float64", TypeError, r"BatchNorm2d\(3.*dtype float32.*got float64")
def _():
    m, x = nn.BatchNorm2d(3), _t(2, 3, 4, 4, dtype=np.float64)
    return lambda: m(x), [m, x]


@case("PReLU-float64", TypeError, r"PReLU\(num_parameters=1\).*dtype float32.*got float64")
def _():
    m, x = nn.PReLU(), _t(2, 3, dtype=np.float64)
    return lambda: m(x), [m, x]


@case("Embedding-float-indices", TypeError, r"embedding: indices must be integers, got dtype float32")
def _():
    m, x = nn.Embedding(10, 3), _t(4, rg=False)
    return lambda: m(x), [m, x]


@case("Embedding-index-range", IndexError, r"embedding: index 10 is out of range for an embedding with 10 rows")
def _():
    m, x = nn.Embedding(10, 3), np.array([1, 10])
    return lambda: m(x), [m, x]


@case("Flatten-start-dim", IndexError,
      r"Flatten\(start_dim=1, end_dim=-1\): start_dim=1 is out of range for an input with ndim 1")
def _():
    m, x = nn.Flatten(), _t(4)
    return lambda: m(x), [m, x]


@case("Flatten-end-dim", IndexError,
      r"Flatten\(start_dim=0, end_dim=3\): end_dim=3 is out of range for an input with ndim 3")
def _():
    m, x = nn.Flatten(0, 3), _t(2, 3, 4)
    return lambda: m(x), [m, x]


@case("Dropout-p", ValueError, r"Dropout: probability p must be in \[0, 1\], got 1\.5")
def _():
    return lambda: nn.Dropout(1.5), []


@case("RReLU-bounds", ValueError, r"RReLU: need 0 <= lower <= upper, got lower=0\.5, upper=0\.1")
def _():
    return lambda: nn.RReLU(0.5, 0.1), []


@case("Softmax-layer-int", TypeError, r"softmax: expected a floating-point tensor, got dtype int64")
def _():
    m, x = nn.Softmax(), ag.tensor([[1, 2]])
    return lambda: m(x), [m, x]


@case("Sequential-inner-dtype", TypeError, r"Linear\(in_features=3, out_features=4.*got float64")
def _():
    m, x = _model_with_grads(), _t(5, 3, dtype=np.float64)
    return lambda: m(x), [m, x]


@case("load_state_dict-shape", nn.StateDictError,
      r"(?s)state_dict for Linear.*weight: checkpoint shape \(4, 4\), model shape \(2, 3\)")
def _():
    m = nn.Linear(3, 2)
    sd = {"weight": np.zeros((4, 4), np.float32), "bias": np.zeros(2, np.float32)}
    return lambda: m.load_state_dict(sd), [m, sd["weight"], sd["bias"]]


# --- losses ---------------------------------------------------------------------------------------

@case("cross_entropy-label-range", IndexError, r"cross_entropy: target label 5 is out of range for 3 classes")
def _():
    x, y = _t(2, 3), np.array([0, 5])
    return lambda: F.cross_entropy(x, y), [x, y]


@case("cross_entropy-float-labels", TypeError,
      r"cross_entropy: class-index targets must be integers, got dtype float32 with shape \(2,\)")
def _():
    x, y = _t(2, 3), np.array([0.0, 1.0], np.float32)
    return lambda: F.cross_entropy(x, y), [x, y]


@case("cross_entropy-target-shape", ValueError,
      r"cross_entropy: class-index target of shape \(3,\) does not match logits of shape \(2, 3\)")
def _():
    x, y = _t(2, 3), np.array([0, 1, 2])
    return lambda: F.cross_entropy(x, y), [x, y]


@case("cross_entropy-weight-shape", ValueError, r"cross_entropy: weight must have shape \(3,\), got \(2,\)")
def _():
    x, y, w = _t(2, 3), np.array([0, 1]), np.ones(2, np.float32)
    return lambda: F.cross_entropy(x, y, weight=w), [x, y, w]


@case("CrossEntropyLoss-reduction", ValueError, r"reduction must be one of .*got 'avg'")
def _():
    x, y = _t(2, 3), np.array([0, 1])
    return lambda: nn.CrossEntropyLoss(reduction="avg")(x, y), [x, y]


@case("CrossEntropyLoss-smoothing", ValueError, r"CrossEntropyLoss: label_smoothing must be in \[0, 1\], got 2")
def _():
    return lambda: nn.CrossEntropyLoss(label_smoothing=2), []


@case("BCELoss-input-range", ValueError, r"binary_cross_entropy: input must be probabilities in \[0, 1\], found 1\.5")
def _():
    p, y = ag.tensor([0.5, 1.5], requires_grad=True), ag.tensor([0.0, 1.0])
    return lambda: nn.BCELoss()(p, y), [p, y]


@case("BCELoss-target-range", ValueError,
      r"binary_cross_entropy: target must lie in \[0, 1\], got min -1\.0 and max 2\.0")
def _():
    p, y = ag.tensor([0.5, 0.5, 0.2], requires_grad=True), ag.tensor([-1.0, 2.0, 0.5])
    return lambda: nn.BCELoss()(p, y), [p, y]


@case("F.bce-target-nan", ValueError, r"binary_cross_entropy: target must lie in \[0, 1\], got min nan")
def _():
    p, y = ag.tensor([0.5, 0.5], requires_grad=True), np.array([np.nan, 1.0], np.float32)
    return lambda: F.binary_cross_entropy(p, y), [p, y]


@case("BCE-shape", ValueError, r"binary_cross_entropy: target shape \(3,\) differs from input shape \(2,\)")
def _():
    p, y = ag.tensor([0.5, 0.5], requires_grad=True), ag.tensor([0.0, 1.0, 1.0])
    return lambda: F.binary_cross_entropy(p, y), [p, y]


@case("BCEWithLogits-shape", ValueError,
      r"binary_cross_entropy_with_logits: target shape \(2, 1\) differs from input shape \(2,\)")
def _():
    x, y = _t(2), ag.tensor([[0.0], [1.0]])
    return lambda: nn.BCEWithLogitsLoss()(x, y), [x, y]


@case("huber-delta", ValueError, r"huber_loss: delta must be positive, got -1")
def _():
    x, y = _t(3), _t(3, seed=1, rg=False)
    return lambda: F.huber_loss(x, y, delta=-1), [x, y]


@case("smooth_l1-beta", ValueError, r"smooth_l1_loss: beta must be non-negative, got -0\.5")
def _():
    x, y = _t(3), _t(3, seed=1, rg=False)
    return lambda: F.smooth_l1_loss(x, y, beta=-0.5), [x, y]


@case("mse-reduction", ValueError, r"reduction must be one of .*got 'max'")
def _():
    x, y = _t(3), _t(3, seed=1, rg=False)
    return lambda: F.mse_loss(x, y, reduction="max"), [x, y]


# --- optimizers -----------------------------------------------------------------------------------

@case("SGD-negative-lr", ValueError, r"SGD: Invalid learning rate value: -0\.1")
def _():
    m = _model_with_grads()
    return lambda: SGD(m.parameters(), lr=-0.1), [m]


@case("SGD-nesterov-without-momentum", ValueError, r"SGD: Nesterov momentum requires a momentum")
def _():
    m = _model_with_grads()
    return lambda: SGD(m.parameters(), lr=0.1, nesterov=True), [m]


@case("SGD-empty", ValueError, r"SGD: optimizer got an empty parameter list")
def _():
    return lambda: SGD([], lr=0.1), []


@case("SGD-tensor-not-list", TypeError, r"SGD: params argument .* got a Tensor")
def _():
    x = _t(3)
    return lambda: SGD(x, lr=0.1), [x]


@case("SGD-int-param", TypeError, r"SGD: optimizer can only optimize floating-point Tensors.*dtype int64")
def _():
    x = ag.tensor([1, 2])
    return lambda: SGD([x], lr=0.1), [x]


@case("Adam-betas", ValueError, r"Adam: Invalid beta parameter at index 1 value: 1\.5")
def _():
    m = _model_with_grads()
    return lambda: Adam(m.parameters(), betas=(0.9, 1.5)), [m]


@case("AdamW-eps", ValueError, r"AdamW: Invalid epsilon value: -1e-08")
def _():
    m = _model_with_grads()
    return lambda: AdamW(m.parameters(), eps=-1e-8), [m]


@case("RMSprop-alpha", ValueError, r"RMSprop: Invalid alpha value: -0\.5")
def _():
    m = _model_with_grads()
    return lambda: RMSprop(m.parameters(), alpha=-0.5), [m]


@case("Adagrad-lr-string", TypeError, r"Adagrad: Invalid learning rate value: '0\.1'")
def _():
    m = _model_with_grads()
    return lambda: Adagrad(m.parameters(), lr="0.1"), [m]


@case("Adadelta-rho", ValueError, r"Adadelta: Invalid rho value: 1\.5")
def _():
    m = _model_with_grads()
    return lambda: Adadelta(m.parameters(), rho=1.5), [m]


@case("optimizer-step-bad-grad-shape", ValueError, r"Adam\.step: the gradient of parameter 0 in group 0")
def _():
    m, opt = _stepped(Adam, lr=0.01)
    p = next(iter(m.parameters()))
    p.grad = ag.zeros(7)
    return lambda: opt.step(), [m, opt]


@case("optimizer-load_state_dict-groups", ValueError,
      r"loaded state dict has 2 parameter group\(s\), the optimizer has 1")
def _():
    m, opt = _stepped(SGD, lr=0.1, momentum=0.9)
    sd = opt.state_dict()
    sd = {"state": sd["state"], "param_groups": sd["param_groups"] * 2}
    return lambda: opt.load_state_dict(sd), [m, opt]


# --- learning-rate schedulers ---------------------------------------------------------------------

@case("StepLR-step_size", ValueError, r"StepLR: step_size must be a positive integer, got 0")
def _():
    m, opt = _stepped(SGD, lr=0.1)
    return lambda: sched.StepLR(opt, step_size=0), [m, opt]


@case("CosineAnnealingLR-T_max", ValueError, r"CosineAnnealingLR: T_max must be a positive integer, got -3")
def _():
    m, opt = _stepped(SGD, lr=0.1)
    return lambda: sched.CosineAnnealingLR(opt, T_max=-3), [m, opt]


@case("LinearLR-start", ValueError, r"LinearLR: start_factor must be in \(0, 1\], got 0")
def _():
    m, opt = _stepped(SGD, lr=0.1)
    return lambda: sched.LinearLR(opt, start_factor=0, total_iters=5), [m, opt]


@case("ConstantLR-factor", ValueError, r"ConstantLR: factor must be in \[0, 1\], got 2")
def _():
    m, opt = _stepped(SGD, lr=0.1)
    return lambda: sched.ConstantLR(opt, factor=2), [m, opt]


@case("MultiStepLR-milestones", TypeError, r"MultiStepLR: milestones must be integers, got \[1\.5\]")
def _():
    m, opt = _stepped(SGD, lr=0.1)
    return lambda: sched.MultiStepLR(opt, milestones=[1.5]), [m, opt]


@case("scheduler-not-optimizer", TypeError, r"StepLR: Linear is not an Optimizer")
def _():
    m = nn.Linear(2, 2)
    return lambda: sched.StepLR(m, step_size=2), [m]


@case("SequentialLR-milestones", ValueError, r"SequentialLR: expected 1 milestone\(s\) for 2")
def _():
    m, opt = _stepped(SGD, lr=0.1)
    a = sched.LinearLR(opt, start_factor=0.5, total_iters=2)
    b = sched.StepLR(opt, step_size=2)
    return lambda: sched.SequentialLR(opt, [a, b], milestones=[1, 2]), [m, opt, a, b]


# --- data -----------------------------------------------------------------------------------------

@case("TensorDataset-lengths", ValueError, r"TensorDataset: arrays must have the same length.*\(4, 2\).*\(3,\)")
def _():
    x, y = _f32(4, 2), np.arange(3)
    return lambda: TensorDataset(x, y), [x, y]


@case("TensorDataset-0d", ValueError, r"TensorDataset: array 1 is 0-d")
def _():
    x, y = _f32(4, 2), np.array(3)
    return lambda: TensorDataset(x, y), [x, y]


@case("TensorDataset-index", IndexError, r"index 9 is out of range for a dataset of 4 samples")
def _():
    x = _f32(4, 2)
    ds = TensorDataset(x)
    return lambda: ds[9], [x, ds]


@case("DataLoader-batch_size", ValueError, r"DataLoader: batch_size must be a positive int, got 0")
def _():
    x = _f32(4, 2)
    return lambda: DataLoader(TensorDataset(x), 0), [x]


@case("random_split-sum", ValueError, r"random_split: lengths \[2, 3\] sum to 5, but the dataset has 4 samples")
def _():
    x = _f32(4, 2)
    return lambda: random_split(TensorDataset(x), [2, 3]), [x]


@case("k_fold-k", ValueError, r"k_fold: need 2 <= k <= number of samples, got k=1 for 4 samples")
def _():
    x = _f32(4, 2)
    return lambda: list(k_fold(TensorDataset(x), 1)), [x]


@case("default_collate-empty", ValueError, r"default_collate: empty batch")
def _():
    return lambda: default_collate([]), []


@case("default_collate-type", TypeError, r"default_collate: cannot batch samples of type object")
def _():
    return lambda: default_collate([object(), object()]), []


# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("build, exc, match", CASES)
def test_bad_input_raises_clearly_and_changes_nothing(build, exc, match):
    call, watched = build()
    before = _snapshot(watched)
    with pytest.raises(exc, match=match):
        call()
    after = _snapshot(watched)
    assert [b[0] for b in before] == [a[0] for a in after]
    for b, a in zip(before, after):
        assert b == a, f"{b[0]} changed by a call that raised"


def test_the_table_is_big_enough():
    assert len(CASES) >= 65


def test_the_snapshot_sees_changes():
    """The unchanged-state check can fail: an in-place update shows in the snapshot of a model and optimizer."""
    m, opt = _stepped(Adam, lr=0.1)
    before = _snapshot([m, opt])
    opt.step()
    assert _snapshot([m, opt]) != before


def test_errors_carry_structured_fields():
    """Op errors are OpErrors with ``op``, ``detail``, ``shapes``, ``value``, still of the built-in kind, and a
    layer or composite reports an op's error under its own name from those fields (no message rewriting)."""
    from autograd.errors import AxisError, OpError, OpIndexError, OpTypeError, OpValueError

    x, w = ag.tensor(np.zeros((1, 3, 5, 5), np.float32)), ag.tensor(np.zeros((4, 2, 3, 3), np.float32))
    with pytest.raises(ValueError) as info:
        F.conv2d(x, w)
    e = info.value
    assert isinstance(e, OpValueError) and isinstance(e, OpError)
    assert e.op == "conv2d" and e.shapes == ((1, 3, 5, 5), (4, 2, 3, 3))
    assert str(e) == f"conv2d: {e.detail}" and e.detail.startswith("input has 3 channels")

    with pytest.raises(ValueError) as info:                  # the helper's value field
        F.mse_loss(x, x, reduction="avg")
    assert (info.value.op, info.value.value) == ("mse_loss", "avg")
    with pytest.raises(ValueError) as info:
        nn.Conv2d(3, 4, 3, stride=0)
    assert info.value.value == (0, 0) and str(info.value).endswith("stride must be positive, got (0, 0)")

    m = nn.Conv1d(2, 2, 9)                                   # layer -> conv1d -> conv2d: one message, one prefix
    with pytest.raises(ValueError) as info:
        m(ag.tensor(np.zeros((1, 2, 4), np.float32)))
    e = info.value
    assert isinstance(e, OpValueError) and e.op == repr(m) and str(e).startswith(f"{m!r}: kernel (1, 9)")
    assert "conv2d:" not in str(e) and "conv1d:" not in str(e)
    with pytest.raises(ValueError) as info:
        F.max_pool1d(ag.tensor(np.zeros((1, 2, 4), np.float32)), 9)
    assert info.value.op == "max_pool1d" and str(info.value).startswith("max_pool1d: kernel (1, 9)")

    with pytest.raises(IndexError) as info:                  # the engine's re-raise of an array-library error
        ag.sum(x, dim=7)
    assert isinstance(info.value, AxisError) and info.value.op is not None
    assert OpTypeError.__mro__[1:3] == (OpError, TypeError) and issubclass(OpIndexError, IndexError)
    e = OpValueError("padding must be non-negative, got (-1,)", op="conv2d", value=(-1,))
    r = e.with_op("Conv2d(1, 1)")
    assert type(r) is OpValueError and str(r) == "Conv2d(1, 1): padding must be non-negative, got (-1,)"
    assert r.value == (-1,) and str(AxisError("plain message")) == "plain message"
