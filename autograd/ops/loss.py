"""Loss primitives: fused softmax cross-entropy and binary cross-entropy, plus the stable BCE-with-logits.

The public functions validate their targets (clear errors for out-of-range
labels, float labels, probabilities outside [0, 1]) and apply the reduction
(``'mean' | 'sum' | 'none'``) with PyTorch's conventions.
"""
from __future__ import annotations

from ..errors import OpIndexError, OpTypeError, OpValueError
from ..function import Function, is_grad_enabled
from ..spec import OpSpec, composite, public
from ..tensor import Tensor, _make
from ._util import as_tensor, const
from .activation import softplus
from .nn_ops import log_softmax
from .reduction import sum as _sum
from .shape import broadcast_to, permute, reshape, unsqueeze
from .support import REDUCTIONS, as_target, check_reduction, reduce_loss
from .unary import exp, log

__all__ = ["softmax_cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits"]

# --- softmax cross-entropy -----------------------------------------------------------------


def _ce_sample(d):
    n, c = d.int(1, 4), d.int(1, 4)
    spatial = () if d.int(0, 3) else (d.int(1, 2),)
    kwargs = {"reduction": d.choice(REDUCTIONS), "label_smoothing": d.choice([0.0, 0.0, 0.1, 0.5])}
    logits = d.array((n, c) + spatial, -4.0, 4.0)
    if d.bool():
        kwargs["weight"] = d.array((c,), 0.5, 2.0)
    if d.int(0, 2) == 0:                      # probability targets (a second, differentiable input)
        return [logits, d.array((n, c) + spatial, 0.0, 1.0)], kwargs
    labels = [d.int(0, c - 1) for _ in range(n * (spatial[0] if spatial else 1))]
    if len(labels) > 1 and d.bool():          # ignore some, never all
        for i in range(1, len(labels)):
            if d.bool():
                labels[i] = -100
    kwargs["labels"] = (tuple(labels), (n,) + spatial)
    return [logits], kwargs


def _ce_ref(np, x, t=None, labels=None, weight=None, reduction="mean", label_smoothing=0.0):
    """NumPy cross-entropy on (N, C, ...) logits, as PyTorch defines it."""
    c = x.shape[1]
    xl = np.moveaxis(x, 1, -1).reshape(-1, c)
    logp = xl - xl.max(axis=1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
    w = np.ones(c) if weight is None else weight
    eps = label_smoothing
    out_shape = (x.shape[0],) + x.shape[2:]
    if t is None:
        y = np.asarray(labels[0]).reshape(-1)
        valid = y != -100
        ys = np.where(valid, y, 0)
        q = (eps / c) * w[None, :] * valid[:, None]
        q[np.arange(len(ys)), ys] += (1 - eps) * w[ys] * valid
        loss = -(q * logp).sum(axis=1)
        denom = (w[ys] * valid).sum()
    else:
        tl = np.moveaxis(t, 1, -1).reshape(-1, c)
        loss = -((tl * (1 - eps) + eps / c) * w * logp).sum(axis=1)
        denom = len(loss)
    if reduction == "none":
        return loss.reshape(out_shape)
    return loss.sum() / denom if reduction == "mean" else loss.sum()


def _ce_call(x, t=None, labels=None, **kw):
    if labels is not None:
        t = _make(x._backend.asarray(labels[0], dtype="int64").reshape(labels[1]), x._backend, False)
    if kw.get("weight") is not None:
        kw["weight"] = Tensor(kw["weight"], dtype=x.dtype, device=x.device)
    return softmax_cross_entropy(x, t, **kw)


class SoftmaxCrossEntropy(Function):
    """f = −Σ_c q_c log softmax(x)_c per row, q the (smoothed, weighted) target;  df/dx = softmax(x) Σ q − q,
    df/dt = −(1 − ε) w log softmax(x) for probability targets t. With ``scale`` set, f = scale · Σ_rows f
    (the 'mean' and 'sum' reductions inside the one node) and each row's gradient is scaled alike."""
    spec = OpSpec(ref=_ce_ref, call=_ce_call, sample=_ce_sample)
    labels = None       # (M,) integer class indices, or None when a probability target is the second input
    weight = None       # (C,) per-class weights (raw array) or None
    smoothing = 0.0
    ignore_index = -100
    scale = None        # None: the (M,) per-row losses; a float: their sum times it, as a 0-d array

    ctx = None          # hard-label fast path: what the fused forward keeps for the fused backward

    def forward(self, x, t=None):
        xp = self.xp
        m, c = x.shape
        if t is None and not self.smoothing and self.weight is None:
            # integer labels: loss_i = log Σ_c exp(z_ic) − z_{i,y_i} with z = x − max; no dense target
            loss, self.ctx = self.backend.fused.softmax_xent_forward(x, self.labels, self.ignore_index)
        else:
            logp = x - x.max(axis=1, keepdims=True)
            logp -= xp.log(xp.exp(logp).sum(axis=1, keepdims=True))
            self.logp = logp
            self.q = q = self._target(t, m, c, x.dtype)
            loss = -(q * logp).sum(axis=1)
        if self.scale is None:
            return loss
        total = loss.sum(keepdims=True).reshape(())      # a 0-d array (a plain sum() gives a NumPy scalar)
        total *= self.scale                               # a Python float: stays in the logits' dtype
        return total

    def _target(self, t, m, c, dtype):
        """The matrix q with loss = −Σ_c q_c log p_c (dense, (M, C))."""
        xp, eps, w = self.xp, self.smoothing, self.weight
        if t is not None:
            q = t * dtype.type(1 - eps) + dtype.type(eps / c) if eps else t.copy()
            if w is not None:
                q *= w
            return q
        y = self.labels
        valid = y != self.ignore_index
        ys = xp.where(valid, y, 0)
        wy = valid.astype(dtype) if w is None else w[ys] * valid
        if eps:
            q = xp.empty((m, c), dtype)
            q[...] = dtype.type(eps / c) if w is None else w * dtype.type(eps / c)
            q *= valid[:, None]
        else:
            q = xp.zeros((m, c), dtype)
        q[xp.arange(m), ys] += wy * dtype.type(1 - eps)
        return q

    def backward(self, gy):
        has_t = len(self.inputs) == 2
        x = self.inputs[0]
        if self.scale is not None:      # the reduced loss: every row's gradient is gy · scale
            shape = (x.shape[0],)
            if is_grad_enabled():
                gy = broadcast_to(gy * self.scale, shape)
            else:
                g = self.xp.empty(shape, gy.dtype)
                g[...] = gy.array * self.scale
                gy = const(g, x)
        if not is_grad_enabled() and self.ctx is not None:
            # df/dx = (softmax(x) − onehot(y)) · valid · g, from the saved context (kept for retain_graph)
            if not x._rg:
                return None,
            gx = self.backend.fused.softmax_xent_backward(self.ctx, x.array, self.labels, gy.array, self.ignore_index)
            return const(gx, x),
        if not is_grad_enabled():
            g = gy.array[:, None]
            p = self.xp.exp(self.logp)
            q = self.q
            gx = (p * q.sum(axis=1, keepdims=True) - q) * g if x._rg else None
            gt = None
            if has_t and self.inputs[1]._rg:
                gt = -self.logp * g * gy.dtype.type(1 - self.smoothing)
                if self.weight is not None:
                    gt *= self.weight
            return (None if gx is None else const(gx, x)), (None if gt is None else const(gt, x))
        # recorded (create_graph) path, in Tensor ops
        g = unsqueeze(gy, 1)
        logp = log_softmax(x, dim=1)
        w = None if self.weight is None else const(self.weight, x)
        if has_t:
            t = self.inputs[1]
            q = t * (1 - self.smoothing) + self.smoothing / x.shape[1] if self.smoothing else t
            if w is not None:
                q = q * w
            gt = -logp * g * (1 - self.smoothing)
            if w is not None:
                gt = gt * w
        else:
            q = self.q if self.ctx is None else self._target(None, x.shape[0], x.shape[1], x.dtype)
            q, gt = const(q, x), None
        gx = (exp(logp) * _sum(q, dim=1, keepdim=True) - q) * g
        return gx, gt


@public(SoftmaxCrossEntropy)
def softmax_cross_entropy(logits: Tensor, target, weight=None, ignore_index: int = -100, reduction: str = "mean",
                          label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of softmax(logits) against class indices or class probabilities (PyTorch's rules).

    Args:
        logits: (N, C) or (N, C, d1, ...) unnormalised scores; (C,) for a single sample.
        target: integer class indices of shape (N,) / (N, d1, ...) (or () for (C,) logits), or probabilities
            (one-hot or soft) of the same shape as ``logits``.
        weight: optional (C,) per-class weights.
        ignore_index: label that contributes nothing (index targets only).
        reduction: 'mean' (index targets: divided by the summed weights of non-ignored labels; probability
            targets: by the number of samples), 'sum' or 'none'.
        label_smoothing: ε in [0, 1]; the target becomes (1 − ε)·target + ε/C.

    Computed as one fused node on log-softmax (shift by the max), so float32 logits of size 1e4 stay finite.
    """
    op = "cross_entropy"
    check_reduction(op, reduction)
    if not isinstance(logits, Tensor) or logits.dtype.kind != "f":
        raise OpTypeError(f"logits must be a floating-point Tensor, got {getattr(logits, 'dtype', type(logits))}",
                          op=op)
    if not 0.0 <= label_smoothing <= 1.0:
        raise OpValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}", op=op)
    if logits.ndim == 0:
        raise OpValueError("logits must have a class axis, got a 0-d tensor", op=op)
    single = logits.ndim == 1
    if single:
        logits = unsqueeze(logits, 0)
    c = logits.shape[1]
    if not isinstance(target, Tensor):
        target = as_tensor(target, logits) if not hasattr(target, "dtype") else Tensor(target, device=logits.device)
    if single:
        target = unsqueeze(target, 0)
    label_shape = (logits.shape[0],) + logits.shape[2:]
    kind = target.dtype.kind
    if target.shape == logits.shape and kind in "fiub":     # probabilities, or one-hot rows of any dtype
        probs = target if kind == "f" else _make(target.array.astype(logits.dtype), target._backend, False)
        labels = None
    elif kind in "iu":
        if target.shape != label_shape:
            raise OpValueError(f"class-index target of shape {target.shape} does not match logits of shape "
                               f"{logits.shape} (expected {label_shape}; or probabilities of shape {logits.shape})",
                               op=op)
        labels = target.array.reshape(-1) if target._backend is logits._backend else \
            logits._backend.asarray(target.array).reshape(-1)
        valid, n_counted = None, labels.size       # valid None: every label is counted
        lo, hi = (int(labels.min()), int(labels.max())) if labels.size else (0, -1)
        if lo < 0 or hi >= c or lo <= ignore_index <= hi:  # some label is out of range or ignored
            valid = labels != ignore_index
            bad = valid & ((labels < 0) | (labels >= c))
            if bool(bad.any()):
                first = int(labels[bad][0])
                raise OpIndexError(f"target label {first} is out of range for {c} classes "
                                   f"(labels must be in [0, {c - 1}] or equal ignore_index={ignore_index})", op=op)
            n_counted = int(valid.sum())
        probs = None
    elif kind == "f":
        raise OpTypeError(f"class-index targets must be integers, got dtype {target.dtype} with shape "
                          f"{target.shape}; cast with .astype('int64'), or pass probabilities of shape {logits.shape}",
                          op=op)
    else:
        raise OpTypeError(f"unsupported target dtype {target.dtype}", op=op)
    if weight is not None:
        weight = as_tensor(weight, logits) if not isinstance(weight, Tensor) else weight
        if weight.shape != (c,):
            raise OpValueError(f"weight must have shape ({c},), got {weight.shape}", op=op)
        weight = weight.array.astype(logits.dtype, copy=False)
    moved = logits.ndim > 2
    x2 = logits
    if moved:   # (N, C, d1, ...) -> (N·d1·..., C)
        perm = (0,) + tuple(range(2, logits.ndim)) + (1,)
        x2 = reshape(permute(logits, *perm), (-1, c))
    # the reduction happens inside the node: 'sum' scales the summed rows by 1, 'mean' by 1 / (number of rows),
    # or for class indices by 1 / (summed weights of the counted, non-ignored labels), as PyTorch's nll_loss
    scale = denom = None
    if reduction == "sum":
        scale = 1.0
    elif reduction == "mean":
        if probs is not None:
            scale = 1.0 / x2.shape[0] if x2.shape[0] else float("nan")
        else:
            denom = float(n_counted if weight is None else
                          (weight[labels] if valid is None else weight[labels * valid] * valid).sum())
            scale = 1.0 / denom if denom else 0.0
    attrs = dict(labels=labels, weight=weight, smoothing=float(label_smoothing), ignore_index=int(ignore_index),
                 scale=scale)
    if probs is None:
        loss = SoftmaxCrossEntropy.apply(x2, **attrs)
    else:
        if probs.dtype != logits.dtype:
            probs = probs.astype(logits.dtype)
        t2 = reshape(permute(probs, *perm), (-1, c)) if moved else probs
        loss = SoftmaxCrossEntropy.apply(x2, t2, **attrs)
    if reduction == "none":
        return reshape(loss, ()) if single else reshape(loss, label_shape)
    if denom == 0:
        # nothing counted: PyTorch's 0/0 gives a nan loss but a zero gradient (every counted term is 0)
        return loss + const(logits.xp.full((), float("nan"), logits.dtype), logits)
    return loss


# --- binary cross-entropy --------------------------------------------------------------------


def _clamped_log(xp, p):
    """log p with log 0 = −100 and every value ≥ −100 (PyTorch's BCELoss clamp), without warnings."""
    pos = p > 0
    return xp.where(pos, xp.maximum(xp.log(xp.where(pos, p, 1)), -100), -100).astype(p.dtype, copy=False)


class BinaryCrossEntropy(Function):
    """f = −(y log p + (1 − y) log(1 − p)) (logs clamped at −100);  df/dp = (p − y)/(p(1 − p)),
    df/dy = log(1 − p) − log p."""
    elementwise = True
    spec = OpSpec(ref=lambda np, p, y: -(y * np.log(p) + (1 - y) * np.log(1 - p)), nargs=2, shapes="same",
                  call=lambda p, y: binary_cross_entropy(p, y, reduction="none"),
                  domain=[(0.05, 0.95), (0.05, 0.95)])   # targets outside [0, 1] raise: keep finite differences inside

    def forward(self, p, y):
        xp = self.xp
        self.logp, self.log1mp = _clamped_log(xp, p), _clamped_log(xp, 1 - p)
        return -(y * self.logp + (1 - y) * self.log1mp)

    def backward(self, gy):
        p, y = self.inputs
        if not is_grad_enabled():
            xp, g = self.xp, gy.array
            gp = g * (p.array - y.array) / xp.maximum(p.array * (1 - p.array), p.dtype.type(1e-12)) if p._rg else None
            gt = g * (self.log1mp - self.logp) if y._rg else None
            return (None if gp is None else const(gp, p)), (None if gt is None else const(gt, p))
        from .arithmetic import maximum
        gp = gy * (p - y) / maximum(p * (1.0 - p), 1e-12)
        gt = gy * (log(1.0 - p) - log(p))
        return gp, gt


def _as_weight(w, like: Tensor) -> Tensor:
    """A weight as a Tensor of ``like``'s dtype (a float64 weight must not promote a float32 loss)."""
    w = w if isinstance(w, Tensor) else as_tensor(w, like)
    return w if w.dtype == like.dtype else w.astype(like.dtype)


@public(BinaryCrossEntropy, functional=True)
def binary_cross_entropy(input: Tensor, target, weight=None, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy on probabilities ``input`` in [0, 1] (logs clamped at −100 like PyTorch).

    Raises ValueError when a probability or a target lies outside [0, 1] (or is NaN).
    """
    op = "binary_cross_entropy"
    check_reduction(op, reduction)
    target = as_target(target, input, op)
    d = input.array
    if d.size and not bool(((d >= 0) & (d <= 1)).all()):
        bad = d[~((d >= 0) & (d <= 1))]
        raise OpValueError(f"input must be probabilities in [0, 1], found {float(bad[0])!r} "
                           f"({int(bad.size)} of {d.size} elements out of range, shape {input.shape}); "
                           "pass logits to binary_cross_entropy_with_logits instead", op=op)
    y = target.array
    if y.size:
        lo, hi = float(y.min()), float(y.max())
        if not (0.0 <= lo and hi <= 1.0):      # NaN fails both comparisons too
            raise OpValueError(f"target must lie in [0, 1], got min {lo!r} and max {hi!r} "
                               f"(shape {target.shape})", op=op)
    loss = BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * _as_weight(weight, input)
    return reduce_loss(loss, reduction)


@public(functional=True)
def binary_cross_entropy_with_logits(input: Tensor, target, weight=None, reduction: str = "mean",
                                     pos_weight=None) -> Tensor:
    """Sigmoid + binary cross-entropy in the stable form (1 − y)·x + l·softplus(−x), l = 1 + (pos_weight − 1)·y.

    softplus(−x) = max(−x, 0) + log(1 + e^(−|x|)), so large |x| never overflows; with pos_weight = 1 this is
    max(x, 0) − x·y + log(1 + e^(−|x|)).
    """
    op = "binary_cross_entropy_with_logits"
    check_reduction(op, reduction)
    target = as_target(target, input, op)
    if pos_weight is not None:
        pos_weight = _as_weight(pos_weight, input)
    sp = softplus(-input)
    if pos_weight is None:
        loss = (1.0 - target) * input + sp
    else:
        loss = (1.0 - target) * input + (1.0 + (pos_weight - 1.0) * target) * sp
    if weight is not None:
        loss = loss * _as_weight(weight, input)
    return reduce_loss(loss, reduction)


def _bce_logits_sample(d):
    shape = d.shape(max_dims=2, min_side=1)
    arrays = [d.array(shape, -6.0, 6.0), d.array(shape, 0.0, 1.0)]
    if d.bool():
        arrays.append(d.array(shape[-1:], 0.5, 3.0))
    return arrays, {"reduction": d.choice(REDUCTIONS)}


def _bce_logits_ref(np, x, y, pw=None, reduction="mean"):
    lw = 1 if pw is None else 1 + (pw - 1) * y
    loss = (1 - y) * x + lw * (np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x))))
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.mean()


composite("binary_cross_entropy_with_logits",
          OpSpec(ref=_bce_logits_ref, sample=_bce_logits_sample,
                 call=lambda x, y, pw=None, reduction="mean": binary_cross_entropy_with_logits(
                     x, y, reduction=reduction, pos_weight=pw)))
