"""What a run records and decides between epochs: its per-epoch :class:`History` and :class:`EarlyStopping`.

Both are plain state with ``state_dict``-style round trips, so the loop, checkpoints and plots share them
without depending on each other.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from autograd import Tensor

from ..module import Module

__all__ = ["History", "EarlyStopping"]


# --- history -------------------------------------------------------------------------------------------
@dataclass
class History:
    """Per-epoch metrics of a :func:`fit` run; each field is a list with one entry per epoch.

    Missing metrics (no validation loader, no accuracy for a regression loss) are ``None``.
    ``time`` is the wall time of the whole epoch (training and evaluation), ``train_time`` the training
    part, ``samples_per_s`` the training throughput, ``lr`` the learning rate the epoch was trained with
    (first parameter group). ``best_epoch`` is set by early stopping, ``stopped_early`` when it stopped.
    Per training step (all epochs together): ``step_loss`` the batch loss at ``step_epoch`` (the position in
    epochs, e.g. 0.5 = half-way through the first), so short runs still have a learning curve. ``audits``:
    one ``{"step", "ok", "seconds"}`` per gradient audit (``fit(..., audit_every=N)``).
    """

    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    time: list = field(default_factory=list)
    train_time: list = field(default_factory=list)
    samples_per_s: list = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    step_epoch: list = field(default_factory=list)
    step_loss: list = field(default_factory=list)
    audits: list = field(default_factory=list)

    METRICS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr", "time",
               "train_time", "samples_per_s")

    def append(self, record: Mapping[str, Any]) -> None:
        """Add one epoch; ``record`` maps metric names to values (absent ones become None)."""
        unknown = set(record) - set(self.METRICS)
        if unknown:
            raise KeyError(f"History.append: unknown metrics {sorted(unknown)}; known: {list(self.METRICS)}")
        for name in self.METRICS:
            getattr(self, name).append(record.get(name))

    def __len__(self) -> int:
        return len(self.epoch)

    def __getitem__(self, name: str) -> list:
        if name not in self.METRICS:
            raise KeyError(f"History has no metric {name!r}; known: {list(self.METRICS)}")
        return getattr(self, name)

    def record(self, i: int = -1) -> dict:
        """The metrics of epoch index ``i`` (default: the last one) as a dict."""
        return {name: getattr(self, name)[i] for name in self.METRICS}

    def to_dict(self) -> dict:
        """Plain lists, numbers and None (JSON- and ``nn.save``-friendly)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "History":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in d.items() if k in names})


# --- early stopping -------------------------------------------------------------------------------------
class EarlyStopping:
    """Stop when the monitored validation metric has not improved for ``patience`` epochs.

    Args:
        patience: epochs without improvement tolerated before stopping.
        monitor: ``"val_loss"`` (lower is better) or ``"val_acc"`` (higher is better).
        min_delta: the least change that counts as an improvement.
        restore_best_weights: when training ends (stopped or not), load the weights of the best epoch
            back into the model.
    """

    def __init__(self, patience: int = 5, monitor: str = "val_loss", min_delta: float = 0.0,
                 restore_best_weights: bool = True) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping: patience must be a positive int, got {patience!r}")
        if monitor not in ("val_loss", "val_acc"):
            raise ValueError(f"EarlyStopping: monitor must be 'val_loss' or 'val_acc', got {monitor!r}")
        if min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta}")
        self.patience, self.monitor, self.min_delta = patience, monitor, float(min_delta)
        self.restore_best_weights = restore_best_weights
        self.mode = "min" if monitor == "val_loss" else "max"
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.stopped = False
        self.best_state: dict | None = None       # parameter/buffer arrays of the best epoch (copies)

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: float, epoch: int, model: Module) -> bool:
        """Record epoch ``epoch``'s metric; returns True when training should stop."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise ValueError(f"EarlyStopping: the monitored metric {self.monitor!r} is missing at epoch {epoch} "
                             "(is a validation loader given, and does the loss give class predictions?)")
        if self._improved(value):
            self.best, self.best_epoch, self.wait = float(value), int(epoch), 0
            if self.restore_best_weights:
                self.best_state = {k: t.array.copy() for k, t in model.state_dict().items()}
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped = True
        return self.stopped

    def restore(self, model: Module) -> None:
        """Load the best epoch's weights into ``model`` (when they were kept)."""
        if self.restore_best_weights and self.best_state is not None:
            model.load_state_dict(self.best_state)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "stopped": self.stopped,
                "best_state": self.best_state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self.stopped = int(state["wait"]), bool(state["stopped"])
        best = state.get("best_state")
        self.best_state = None if best is None else {k: (v.array if isinstance(v, Tensor) else v)
                                                     for k, v in best.items()}

    def __repr__(self) -> str:
        return (f"EarlyStopping(patience={self.patience}, monitor={self.monitor!r}, min_delta={self.min_delta}, "
                f"best={self.best}, best_epoch={self.best_epoch}, wait={self.wait})")
