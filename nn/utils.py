"""Gradient utilities: clipping by total norm or by value.

Both replace each ``p.grad`` with a new Tensor (gradients may be shared between tensors, so they are never
changed in place) and never copy gradients to the host.
"""
from __future__ import annotations

import math
from typing import Iterable

import autograd as ag
from autograd import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _params(parameters) -> list:
    if isinstance(parameters, Tensor):
        return [parameters]
    return list(parameters)


def _vector_norm(xp, a, p: float):
    """The ``p``-norm of all elements of array ``a`` as a 0-d array of ``a``'s dtype."""
    if a.size == 0:
        return xp.zeros((), dtype=a.dtype)
    if p == math.inf:
        return xp.max(xp.abs(a))
    if p == -math.inf:
        return xp.min(xp.abs(a))
    if p == 2.0:
        r = a.ravel()
        return xp.sqrt(xp.vdot(r, r))
    if p == 1.0:
        return xp.sum(xp.abs(a))
    return xp.sum(xp.abs(a) ** p) ** (1.0 / p)


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale the gradients so that their total ``norm_type``-norm is at most ``max_norm``.

    The total norm is the norm of all gradients concatenated into one vector. Every gradient is multiplied by
    ``min(1, max_norm / (total_norm + 1e-6))`` (PyTorch's rule), computed on the device without a host sync.

    Args:
        parameters: a Tensor or an iterable of Tensors whose ``.grad`` to clip (None gradients are skipped).
        max_norm: the largest allowed total norm.
        norm_type: the order of the norm (``math.inf`` for the largest absolute value).
        error_if_nonfinite: raise RuntimeError when the total norm is NaN or infinite (this reads it on the
            host).

    Returns:
        The total norm of the gradients before clipping, a 0-d Tensor on the first gradient's device.
    """
    params = _params(parameters)
    max_norm = float(max_norm)
    norm_type = float(norm_type)
    if not (norm_type > 0 or norm_type == -math.inf):
        raise ValueError(f"clip_grad_norm_: norm_type must be positive or +-inf, got {norm_type}")
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return ag.tensor(0.0)
    be = grads[0].device
    xp = be.xp
    with ag.no_grad(), be.activate():
        norms = []
        for g in grads:
            a = g.array if g.device is be else be.asarray(g.device.to_host(g.array))
            norms.append(_vector_norm(xp, a, norm_type))
        total = _vector_norm(xp, xp.stack(norms), norm_type)
        if error_if_nonfinite and not bool(xp.isfinite(total)):
            raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
                               "non-finite, so it cannot be clipped; pass error_if_nonfinite=False to scale the "
                               "gradients by it anyway")
        coef = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for p in params:
        g = p.grad
        if g is None:
            continue
        c = coef if g.device is be else g.device.asarray(be.to_host(coef))
        with g.device.activate():
            p.grad = ag.as_tensor(g.array * c.astype(g.dtype, copy=False))
    return ag.as_tensor(total)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clip every gradient element to ``[-clip_value, clip_value]`` (new gradient Tensors).

    Args:
        parameters: a Tensor or an iterable of Tensors whose ``.grad`` to clip (None gradients are skipped).
        clip_value: the largest allowed absolute value (non-negative).
    """
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be non-negative, got {clip_value}")
    for p in _params(parameters):
        g = p.grad
        if g is None:
            continue
        with g.device.activate():
            p.grad = ag.as_tensor(g.xp.clip(g.array, -clip_value, clip_value))
