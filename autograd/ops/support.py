"""Public helpers for code built on the ops (nn/'s functional API, layers and losses): argument checks that
name the op or layer in their errors, loss reduction, and wrapping a raw array as a constant tensor.

Everything here raises :class:`~autograd.errors.OpError` subclasses (``op``, ``value``, ``shapes`` set), with
the caller's name as the message's prefix, so a layer reports itself without rewriting an op's message.
"""
from __future__ import annotations

from ..errors import OpValueError
from ..tensor import Tensor, _make
from ._util import as_tensor
from ._util import const as _const
from ._util import int_tuple as _int_tuple
from .reduction import mean as _mean
from .reduction import sum as _sum

__all__ = ["REDUCTIONS", "const", "int_tuple", "check_reduction", "reduce_loss", "as_target", "check_positive",
           "check_padding", "check_same_padding"]

REDUCTIONS = ("mean", "sum", "none")


def const(array, like: Tensor) -> Tensor:
    """Wrap a raw array (of ``like``'s backend) as a tensor outside the graph, without a copy."""
    return _const(array, like)


def int_tuple(v, n: int, name: str, op: str) -> tuple:
    """An int, or a length-``n`` tuple or list of ints, as an ``n``-tuple of ints (window sizes, strides,
    paddings). Bools are not ints here. Raises OpValueError ``"<op>: <name> must be an int or ..."``."""
    return _int_tuple(v, n, name, op)


def check_reduction(op: str, reduction: str) -> None:
    """Raise OpValueError ``"<op>: reduction must be one of ('mean', 'sum', 'none'), got ..."`` unless
    ``reduction`` is one of :data:`REDUCTIONS`."""
    if reduction not in REDUCTIONS:
        raise OpValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}", op=op, value=reduction)


def reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    """An element-wise loss reduced as ``reduction`` says: its mean, its sum, or itself for ``"none"``."""
    if reduction == "mean":
        return _mean(loss)
    if reduction == "sum":
        return _sum(loss)
    return loss


def as_target(target, like: Tensor, op: str) -> Tensor:
    """A regression target as a tensor of ``like``'s dtype and backend (a non-float target is cast outside
    the graph). Raises OpValueError ``"<op>: target shape ... differs from input shape ..."`` unless the
    shapes match exactly (no broadcasting, unlike PyTorch's warning)."""
    t = target if isinstance(target, Tensor) else as_tensor(target, like)
    if t.dtype != like.dtype:
        t = t.astype(like.dtype) if t.dtype.kind == "f" else _make(t.array.astype(like.dtype), t._backend, False)
    if t.shape != like.shape:
        raise OpValueError(f"target shape {t.shape} differs from input shape {like.shape}", op=op,
                           shapes=(t.shape, like.shape))
    return t


def check_positive(op: str, note: str = "", shapes=None, **named) -> None:
    """Raise OpValueError ``"<op>: <name> must be positive, got <v><note>"`` for the first of ``named`` (int
    tuples such as kernel_size, stride, dilation; checked in the order given) with an entry below 1."""
    for what, v in named.items():
        if min(v) < 1:
            raise OpValueError(f"{what} must be positive, got {v}{note}", op=op, value=v, shapes=shapes)


def check_padding(op: str, padding: tuple, note: str = "", shapes=None) -> None:
    """Raise OpValueError ``"<op>: padding must be non-negative, got <padding><note>"`` for a negative entry."""
    if min(padding) < 0:
        raise OpValueError(f"padding must be non-negative, got {padding}{note}", op=op, value=padding,
                           shapes=shapes)


def check_same_padding(op: str, stride: tuple, note: str = "", shapes=None) -> None:
    """Raise OpValueError ``"<op>: padding='same' needs stride 1, got stride <stride><note>"`` unless every
    stride is 1."""
    if any(s != 1 for s in stride):
        raise OpValueError(f"padding='same' needs stride 1, got stride {stride}{note}", op=op, value=stride,
                           shapes=shapes)
