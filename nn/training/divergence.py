"""Divergence: a run whose training loss, or weights, stop being finite numbers.

:func:`~nn.training.fit` stops such a run with :class:`DivergenceError` (or, with ``on_nan="continue"``, warns
once and trains on), and never writes a checkpoint holding non-finite weights. The checks are cheap: the loss
is read where the loop reads it anyway (every step on the CPU, where that is a host float; on a GPU at the
progress refreshes and at the end of the epoch), and the weights once per epoch, before the checkpoint.
"""
from __future__ import annotations

import math

import backends

__all__ = ["DivergenceError"]

OTHER_RANK = "<another rank>"       # DivergenceError.where when the non-finite weight is another rank's


class DivergenceError(ArithmeticError):
    """Training diverged: the loss of a step (or, at the end of an epoch, a weight) is NaN or infinite.

    Attributes: ``epoch`` (1-based), ``step`` (the batch index in that epoch, 1-based), ``steps`` (batches
    per epoch, or None when the loader has no length), ``value`` (the non-finite number), ``where``
    (``"loss"``, or the name of the state-dict entry that holds the value) and ``history`` (the
    :class:`~nn.training.History` of the epochs completed before, set by ``fit``).
    """

    def __init__(self, epoch: int | None, step: int, value: float, where: str = "loss", steps: int | None = None):
        self.epoch, self.step, self.steps, self.value, self.where = epoch, step, steps, float(value), where
        self.history = None
        at = f"epoch {epoch}, step {step}" if epoch is not None else f"step {step}"
        if steps is not None:
            at += f" of {steps}"
        if where == "loss":
            what = f"the training loss is {self.value!r}"
        else:
            weight = f"the weight '{where}'" if where != OTHER_RANK else "a weight on another rank"
            what = f"after the update of that step {weight} holds {self.value!r} (the losses were finite)"
        super().__init__(f"training diverged at {at}: {what}; lower the learning rate, or run the training step "
                         "under `with ag.detect_anomaly():` (autograd.detect_anomaly()) to find the op that first "
                         "makes a NaN or inf (on_nan='continue' trains on regardless)")


def first_nonfinite(values) -> int | None:
    """The index of the first NaN or infinite number in ``values`` (floats), or None."""
    for i, v in enumerate(values):
        if not math.isfinite(v):
            return i
    return None


def loss_divergence(step_losses: list, epoch: int, steps: int | None, total: float = math.nan) -> DivergenceError:
    """The error for an epoch whose summed loss ``total`` is not finite: at its first non-finite step loss, or
    at the last step when every step's loss is finite (the sum overflowed)."""
    i = first_nonfinite(step_losses)
    i = len(step_losses) - 1 if i is None else i
    return DivergenceError(epoch, i + 1, step_losses[i] if step_losses else total, steps=steps)


def nonfinite_state(model) -> tuple[str, float] | None:
    """``(name, value)`` of the first floating state-dict entry of ``model`` (parameters and buffers) holding a
    NaN or inf, or None when every entry is finite. One pass over the weights; on a GPU the per-entry checks
    are all queued before the first is read back."""
    entries = [(k, t.array) for k, t in model.state_dict().items() if t.dtype.kind in "fc"]
    flags = [backends.backend_of(a).xp.isfinite(a).all() for _, a in entries]
    for (name, a), ok in zip(entries, flags):
        if not bool(ok):
            xp = backends.backend_of(a).xp
            return name, float(a[~xp.isfinite(a)].reshape(-1)[0].real)
    return None
