"""Stateless layer functions (PyTorch's ``torch.nn.functional`` names and argument orders).

    import nn.functional as F
    y = F.relu(F.linear(x, w, b))
    loss = F.cross_entropy(logits, labels, label_smoothing=0.1)

Random functions (``dropout``, ``rrelu`` in training) draw from the input's
backend generator (``x.device.rng``), seeded by ``ag.manual_seed``.
"""
from __future__ import annotations

import autograd as ag
from autograd import Tensor
from autograd.spec import OpSpec, composite, public_ops
from autograd.ops.activation import PReLU
from autograd.ops.support import as_target, check_reduction, const, reduce_loss

__all__ = ["linear", "relu", "leaky_relu", "prelu", "rrelu", "elu", "silu", "swish", "sigmoid", "tanh",
           "softplus", "softmax", "log_softmax", "dropout", "batch_norm", "embedding", "one_hot", "flatten",
           "mse_loss", "half_mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "cross_entropy", "nll_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "l2_penalty", "l1_penalty"]


# Ops whose nn.functional form is the autograd one (same arguments): taken from their records, not rewritten.
# (linear, prelu, sigmoid, tanh, binary_cross_entropy, binary_cross_entropy_with_logits, ...)
_FROM_RECORDS = {rec.name: rec.func for rec in public_ops().values() if rec.functional}
globals().update(_FROM_RECORDS)
__all__ += sorted(set(_FROM_RECORDS) - set(__all__))


def _rand(x: Tensor):
    """Uniform [0, 1) samples shaped like ``x`` from its backend's generator (float32 for half precision)."""
    dt = x.dtype if x.dtype.kind == "f" and x.dtype.itemsize in (4, 8) else ag.float32
    return x.device.rng.random(x.shape, dtype=dt)


# --- dense and activations ----------------------------------------------------------------


def _result(input: Tensor, out: Tensor, inplace: bool) -> Tensor:
    """``inplace=True`` (PyTorch's in-place activations): write ``out`` into ``input`` and return ``input`` when
    no graph is recorded through it; inside a recorded graph an op cannot overwrite its own input, so the result
    is ``out``, a new tensor with the same values (use the returned tensor in both cases)."""
    if not inplace or out is input or (input.requires_grad and ag.is_grad_enabled()):
        return out
    input.array[...] = out.array
    input.mark_modified()
    return input


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0); ``inplace`` as described in :func:`_result`."""
    return _result(input, ag.relu(input), inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    return _result(input, ag.leaky_relu(input, negative_slope), inplace)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False) -> Tensor:
    """Randomised leaky ReLU.

    In training every element gets its own slope a ~ U(lower, upper) (drawn from the input's backend
    generator); in evaluation the slope is fixed at (lower + upper) / 2.
    """
    if not 0 <= lower <= upper:
        raise ValueError(f"rrelu: need 0 <= lower <= upper, got lower={lower}, upper={upper}")
    if not training:
        return _result(input, ag.leaky_relu(input, (lower + upper) / 2), inplace)
    slope = _rand(input)
    slope *= upper - lower
    slope += lower
    return _result(input, PReLU.apply(input, const(slope.astype(input.dtype, copy=False), input)), inplace)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    return _result(input, ag.elu(input, alpha), inplace)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x·σ(x) (Swish)."""
    return _result(input, ag.silu(input), inplace)


swish = silu


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(βx)) / β (computed stably for any x, so ``threshold`` is not needed)."""
    return ag.softplus(input, beta)


def softmax(input: Tensor, dim: int = -1) -> Tensor:
    """Overflow-safe softmax along ``dim``."""
    return ag.softmax(input, dim)


def log_softmax(input: Tensor, dim: int = -1) -> Tensor:
    return ag.log_softmax(input, dim)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1, _op: str = "flatten") -> Tensor:
    """Merge axes ``start_dim`` .. ``end_dim`` into one (negative dims count from the end).

    Raises:
        IndexError: a dim outside [-ndim, ndim - 1] (a 0-d input counts as 1-d, as in PyTorch).
    """
    nd = max(input.ndim, 1)
    for name, d in (("start_dim", start_dim), ("end_dim", end_dim)):
        if not -nd <= d < nd:
            raise IndexError(f"{_op}: {name}={d} is out of range for an input with ndim {input.ndim} "
                             f"(shape {tuple(input.shape)}; expected a dim in [{-nd}, {nd - 1}])")
    s, e = start_dim % nd, end_dim % nd
    if s > e:
        raise ValueError(f"{_op}: start_dim {start_dim} comes after end_dim {end_dim} for shape {input.shape}")
    if input.ndim == 0:
        return ag.reshape(input, (1,))
    n = 1
    for k in input.shape[s:e + 1]:
        n *= k
    return ag.reshape(input, input.shape[:s] + (n,) + input.shape[e + 1:])


# --- regularisation layers ----------------------------------------------------------------


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Inverted dropout: in training keep each element with probability 1 − p and scale it by 1/(1 − p);
    identity when not training. The mask comes from the input's backend generator."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _result(input, input * 0.0, inplace)
    keep = _rand(input) >= p
    mask = keep.astype(input.dtype)
    mask *= 1.0 / (1.0 - p)
    return _result(input, input * const(mask, input), inplace)


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight=None, bias=None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation over every axis but 1 (channels).

    Training (or no running statistics): normalise with the batch mean and biased variance (one fused
    node), and update ``running_mean``/``running_var`` in place when given:
    r ← (1 − momentum)·r + momentum·batch_stat, using the unbiased variance for ``running_var``.
    Evaluation: normalise with the running statistics.
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C, ...), got shape {input.shape}")
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise ValueError(f"batch_norm: {name} has shape {tuple(t.shape)}, expected ({c},) for input of shape "
                             f"{input.shape}")
    if training or running_mean is None or running_var is None:
        n = input.numel() // c if c else 0
        if training and n <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input of "
                             f"shape {input.shape}")
        stats = {} if training and running_mean is not None else None
        y = ag.batch_norm_train(input, weight, bias, eps=eps, stats=stats)
        if stats:
            m = float(momentum)
            unbiased = stats["var"] * (n / (n - 1))
            _ema(running_mean, stats["mean"], m)
            if running_var is not None:
                _ema(running_var, unbiased, m)
        return y
    shape = (1, c) + (1,) * (input.ndim - 2)
    rstd = 1 / input.xp.sqrt(running_var.array.astype(input.dtype, copy=False) + input.dtype.type(eps))
    rmean = running_mean.array.astype(input.dtype, copy=False)
    if weight is None:
        scale = const(rstd, input)
        shift = const(-rmean * rstd, input)
    else:
        scale = weight * const(rstd, input)
        shift = bias - const(rmean, input) * scale
    return input * ag.reshape(scale, shape) + ag.reshape(shift, shape)


def _ema(buf: Tensor, value, momentum: float) -> None:
    """buf ← (1 − momentum)·buf + momentum·value, in place (the buffer's version is bumped)."""
    d = buf.array
    d *= 1.0 - momentum
    d += (value * momentum).astype(d.dtype, copy=False)
    buf.mark_modified()


def embedding(input, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by the integer tensor ``input``; gradients scatter-add.

    Positions equal to ``padding_idx`` contribute no gradient.
    """
    idx = input.array if isinstance(input, Tensor) else input
    idx = weight.device.asarray(idx)
    n = weight.shape[0]
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    if idx.size:
        bad = (idx < 0) | (idx >= n)
        if bool(bad.any()):
            raise IndexError(f"embedding: index {int(idx[bad].reshape(-1)[0])} is out of range for an embedding "
                             f"with {n} rows (indices must be in [0, {n - 1}]; index shape {tuple(idx.shape)})")
    out = weight[idx]
    if padding_idx is not None:
        pad = const((idx == padding_idx)[..., None], weight)
        out = ag.where(pad, out.detach(), out)
    return out


def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """Integer class indices as int64 one-hot rows (a new last axis of length ``num_classes``)."""
    t = tensor if isinstance(tensor, Tensor) else ag.as_tensor(tensor)
    if t.dtype.kind not in "iu":
        raise TypeError(f"one_hot: class indices must be integers, got dtype {t.dtype}")
    if num_classes < 0:
        num_classes = int(t.array.max()) + 1 if t.numel() else 0
    if t.numel() and bool(((t.array < 0) | (t.array >= num_classes)).any()):
        raise IndexError(f"one_hot: class values must be in [0, {num_classes - 1}]")
    eye = t.xp.eye(num_classes, dtype="int64")
    return ag.as_tensor(eye[t.array], device=t.device)


# --- losses -------------------------------------------------------------------------------


def mse_loss(input: Tensor, target, reduction: str = "mean", *, half: bool = False) -> Tensor:
    """Squared error (ŷ − y)², reduced.

    ``half=True`` gives the textbook's ½(ŷ − y)² (whose gradient is ŷ − y); see also :func:`half_mse_loss`.
    Input and target must have the same shape (no silent broadcasting of (N, 1) against (N,)).
    """
    check_reduction("mse_loss", reduction)
    d = input - as_target(target, input, "mse_loss")
    sq = d * d
    return reduce_loss(sq * 0.5 if half else sq, reduction)


def half_mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """½(ŷ − y)², the squared loss of linear regression in the textbook; ``mse_loss(..., half=True)``."""
    return mse_loss(input, target, reduction, half=True)


def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """|ŷ − y|, reduced."""
    check_reduction("l1_loss", reduction)
    return reduce_loss(ag.abs(input - as_target(target, input, "l1_loss")), reduction)


def huber_loss(input: Tensor, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """½d² where |d| < delta, else delta·(|d| − ½delta), with d = ŷ − y."""
    check_reduction("huber_loss", reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    d = input - as_target(target, input, "huber_loss")
    a = ag.abs(d)
    loss = ag.where(a.array < delta, (d * d) * 0.5, (a - 0.5 * delta) * delta)
    return reduce_loss(loss, reduction)


def smooth_l1_loss(input: Tensor, target, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """½d²/beta where |d| < beta, else |d| − ½beta (Huber divided by beta); beta = 0 is the L1 loss."""
    check_reduction("smooth_l1_loss", reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    if beta == 0:
        return l1_loss(input, target, reduction)
    d = input - as_target(target, input, "smooth_l1_loss")
    a = ag.abs(d)
    loss = ag.where(a.array < beta, (d * d) * (0.5 / beta), a - 0.5 * beta)
    return reduce_loss(loss, reduction)


def cross_entropy(input: Tensor, target, weight=None, *, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy from logits (one fused, overflow-safe node).

    ``target`` holds integer class indices ((N,) or (N, d1, ...)) or class probabilities / one-hot rows of the
    same shape as ``input``. See :func:`autograd.softmax_cross_entropy` for the exact rules.
    """
    return ag.softmax_cross_entropy(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                                    label_smoothing=label_smoothing)


def nll_loss(input: Tensor, target, weight=None, *, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of log-probabilities ``input`` (N, C, ...) at integer ``target`` (N, ...)."""
    op = "nll_loss"
    check_reduction(op, reduction)
    single = input.ndim == 1
    x = ag.unsqueeze(input, 0) if single else input
    t = target if isinstance(target, Tensor) else ag.as_tensor(target, device=input.device)
    if single:
        t = ag.reshape(t, (1,))
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {t.dtype}")
    c = x.shape[1]
    if t.shape != (x.shape[0],) + x.shape[2:]:
        raise ValueError(f"{op}: target shape {t.shape} does not match input shape {input.shape}")
    if x.ndim > 2:
        x = ag.reshape(ag.permute(x, *((0,) + tuple(range(2, x.ndim)) + (1,))), (-1, c))
    y = x.device.asarray(t.array).reshape(-1)
    valid = y != ignore_index
    if y.size and bool((valid & ((y < 0) | (y >= c))).any()):
        raise IndexError(f"{op}: target label {int(y[valid & ((y < 0) | (y >= c))][0])} is out of range for "
                         f"{c} classes")
    ys = x.xp.where(valid, y, 0)
    w = valid.astype(x.dtype)
    if weight is not None:
        warr = (weight.array if isinstance(weight, Tensor) else x.device.asarray(weight)).astype(x.dtype)
        w = w * warr[ys]
    loss = -x[x.xp.arange(x.shape[0]), ys] * const(w, x)
    if reduction == "none":
        return ag.reshape(loss, () if single else t.shape)
    if reduction == "sum":
        return ag.sum(loss)
    return ag.sum(loss) * (1.0 / float(w.sum())) if float(w.sum()) else ag.sum(loss) * float("nan")


def _param_list(params) -> list:
    if isinstance(params, Tensor):
        return [params]
    out = [p for p in params if p is not None]
    if not out:
        raise ValueError("penalty: no parameters given")
    return out


def l2_penalty(params) -> Tensor:
    """½ Σ‖p‖² over the given tensors (e.g. ``model.parameters()``).

    Its gradient is p itself, so ``loss + wd * l2_penalty(params)`` is weight decay with coefficient ``wd``
    (the textbook's λ/2·‖w‖²).
    """
    ps = _param_list(params)
    total = ag.sum(ps[0] * ps[0])
    for p in ps[1:]:
        total = total + ag.sum(p * p)
    return total * 0.5


def l1_penalty(params) -> Tensor:
    """Σ |p| over the given tensors (L1 regularisation; add ``lam * l1_penalty(params)`` to the loss)."""
    ps = _param_list(params)
    total = ag.sum(ag.abs(ps[0]))
    for p in ps[1:]:
        total = total + ag.sum(ag.abs(p))
    return total




# --- test specs: the composites above get the registry's generated tests (forward vs NumPy, float32 kept,
# no mutation, gradcheck, gradgradcheck) like every autograd op; keys are "F.<name>" ---------------------------
_REDUCTIONS = ("mean", "sum", "none")


def _np_reduce(np, v, reduction):
    return np.mean(v) if reduction == "mean" else np.sum(v) if reduction == "sum" else v


def _reduction_kw(d, shapes):
    return {"reduction": d.choice(_REDUCTIONS)}


def _apart(np, arrays, kink: float | None = None):
    """Targets at least 0.2 from the inputs (|d| has a kink at 0) and, given ``kink``, |d| away from it too."""
    x, t = arrays
    off = np.where(t >= 0, t + 0.2, t - 0.2)
    if kink is not None:
        off = np.where(np.abs(np.abs(off) - kink) < 0.1, off * 1.3, off)
    return [x, x + off]


def _huber_ref(np, x, t, reduction, delta=1.0):
    a = np.abs(x - t)
    return _np_reduce(np, np.where(a < delta, 0.5 * a * a, delta * (a - 0.5 * delta)), reduction)


def _nll_sample(d):
    n, c = d.int(1, 4), d.int(1, 4)
    x = d.array((n, c))
    t = d.index_array(c, n) % c
    return [x, t.astype("float64")], {"reduction": d.choice(_REDUCTIONS)}


def _nll_ref(np, x, t, reduction):
    return _np_reduce(np, -x[np.arange(len(t)), t.astype(np.int64)], reduction)


def _bn_eval_sample(d):
    c = d.int(1, 3)
    shape = (d.int(1, 3), c) + (d.int(1, 3),) * d.int(0, 1)
    return ([d.array(shape), d.array((c,)), d.array((c,), 0.2, 2.0), d.array((c,)), d.array((c,))],
            {"eps": d.choice([1e-5, 0.1])})


def _bn_eval_ref(np, x, rm, rv, w, b, eps):
    s = (1, -1) + (1,) * (x.ndim - 2)
    return (x - rm.reshape(s)) / np.sqrt(rv.reshape(s) + eps) * w.reshape(s) + b.reshape(s)


def _flatten_ref(np, x, start_dim, end_dim):
    s, e = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:])


def _flatten_kw(d, shapes):
    n = len(shapes[0])
    start = d.int(0, n - 1)
    end = d.int(start, n - 1)
    return {"start_dim": start - n * d.int(0, 1), "end_dim": end - n * d.int(0, 1)}


_two = {"nargs": 2, "shapes": "same", "grad_inputs": (0,), "kwargs": _reduction_kw}
composite("F.mse_loss", OpSpec(ref=lambda np, x, t, reduction: _np_reduce(np, (x - t) ** 2, reduction),
                               call=lambda x, t, **kw: mse_loss(x, t, **kw), **_two))
composite("F.half_mse_loss", OpSpec(ref=lambda np, x, t, reduction: _np_reduce(np, 0.5 * (x - t) ** 2, reduction),
                                    call=lambda x, t, **kw: half_mse_loss(x, t, **kw), **_two))
composite("F.l1_loss", OpSpec(ref=lambda np, x, t, reduction: _np_reduce(np, np.abs(x - t), reduction),
                              call=lambda x, t, **kw: l1_loss(x, t, **kw), prepare=_apart, **_two))
composite("F.huber_loss", OpSpec(ref=_huber_ref, call=lambda x, t, **kw: huber_loss(x, t, **kw),
                                 prepare=lambda np, a: _apart(np, a, 1.0), **_two))
composite("F.smooth_l1_loss", OpSpec(ref=_huber_ref, call=lambda x, t, **kw: smooth_l1_loss(x, t, **kw),
                                     prepare=lambda np, a: _apart(np, a, 1.0), **_two))
composite("F.nll_loss", OpSpec(ref=_nll_ref, sample=_nll_sample, grad_inputs=(0,),
                               call=lambda x, t, **kw: nll_loss(x, t.astype("int64"), **kw)))
composite("F.batch_norm_eval", OpSpec(
    ref=_bn_eval_ref, sample=_bn_eval_sample, grad_inputs=(0, 3, 4),
    call=lambda x, rm, rv, w, b, eps: batch_norm(x, rm, rv, w, b, training=False, eps=eps)))
composite("F.dropout_eval", OpSpec(ref=lambda np, x: x, call=lambda x: dropout(x, 0.5, training=False)))
composite("F.l2_penalty", OpSpec(ref=lambda np, a, b: 0.5 * (np.sum(a * a) + np.sum(b * b)), nargs=2,
                                 shapes=lambda d: [d.shape(), d.shape()], call=lambda a, b: l2_penalty([a, b])))
composite("F.l1_penalty", OpSpec(ref=lambda np, a, b: np.sum(np.abs(a)) + np.sum(np.abs(b)), nargs=2, avoid=(0.0,),
                                 shapes=lambda d: [d.shape(), d.shape()], call=lambda a, b: l1_penalty([a, b])))
composite("F.flatten", OpSpec(ref=_flatten_ref, shapes="min1dim", kwargs=_flatten_kw,
                              call=lambda x, **kw: flatten(x, **kw)))
