"""Loss modules (PyTorch names). Each has ``reduction='mean' | 'sum' | 'none'`` and calls ``loss(input, target)``.

Squared error: ``MSELoss()`` is PyTorch's (ŷ − y)²; ``MSELoss(half=True)`` is the textbook's ½(ŷ − y)²
(gradient ŷ − y), also available as ``F.mse_loss(..., half=True)`` / ``F.half_mse_loss``.
"""
from __future__ import annotations

import autograd as ag
from autograd import Tensor
from autograd.ops.support import check_reduction

from . import functional as F
from .module import Module

__all__ = ["MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "CrossEntropyLoss", "NLLLoss", "BCELoss",
           "BCEWithLogitsLoss"]


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        check_reduction(type(self).__name__, reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _tensor(weight))


def _tensor(x):
    return x if x is None or isinstance(x, Tensor) else ag.tensor(x)


class MSELoss(_Loss):
    """Mean squared error (ŷ − y)²; ``half=True`` gives ½(ŷ − y)²."""

    def __init__(self, reduction: str = "mean", *, half: bool = False) -> None:
        super().__init__(reduction)
        self.half = half

    def forward(self, input: Tensor, target) -> Tensor:
        return F.mse_loss(input, target, self.reduction, half=self.half)

    def extra_repr(self) -> str:
        parts = [super().extra_repr(), "half=True" if self.half else ""]
        return ", ".join(p for p in parts if p)


class L1Loss(_Loss):
    """Mean absolute error |ŷ − y|."""

    def forward(self, input: Tensor, target) -> Tensor:
        return F.l1_loss(input, target, self.reduction)


class HuberLoss(_Loss):
    """½d² for |d| < delta, delta(|d| − ½delta) beyond."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input: Tensor, target) -> Tensor:
        return F.huber_loss(input, target, self.reduction, self.delta)


class SmoothL1Loss(_Loss):
    """½d²/beta for |d| < beta, |d| − ½beta beyond."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input: Tensor, target) -> Tensor:
        return F.smooth_l1_loss(input, target, self.reduction, self.beta)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy from logits, with class-index or probability targets (see ``F.cross_entropy``)."""

    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input: Tensor, target) -> Tensor:
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities (use after ``LogSoftmax``)."""

    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target) -> Tensor:
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy on probabilities in [0, 1] (logs clamped at −100)."""

    def forward(self, input: Tensor, target) -> Tensor:
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    """Sigmoid + binary cross-entropy in one stable expression; ``pos_weight`` scales the positive term."""

    def __init__(self, weight=None, reduction: str = "mean", pos_weight=None) -> None:
        super().__init__(weight, reduction)
        self.register_buffer("pos_weight", _tensor(pos_weight))

    def forward(self, input: Tensor, target) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight)
