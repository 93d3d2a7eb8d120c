"""Callbacks: the parts of a :func:`~nn.training.fit` run, one class per concern, each replaceable.

The loop core (:mod:`.loop`) trains, reduces the metrics over the ranks, evaluates and fills the
:class:`History`; everything else is a :class:`Callback` told about the run at these points (hooks), in the
order the callbacks are listed:

    on_fit_start(run)                        before the first epoch (resuming happens here)
    on_epoch_start(run, epoch)               after the samplers got set_epoch, before the training pass
    on_step_end(run, step, x, y, loss)       after each optimizer step (1-based ``step`` in the epoch); called
                                             only for callbacks that define it, so the others cost nothing per step
    on_train_epoch_end(run, epoch, train)    after the training pass (``train``: loss, acc, samples, time,
                                             step_loss; over all ranks), before its step losses enter the history
    on_epoch_end(run, epoch, record)         after the epoch's record (train, val, test) is in ``run.history``
    on_fit_end(run)                          when training ends normally (not after an error)
    on_exception(run, error)                 when fit is about to raise ``error`` (release what you hold)

A callback stops the run by setting ``run.stop_training`` (the loop checks it before each epoch). The defaults
:func:`fit` builds from its arguments, in this order: :class:`GradientAuditor` (``audit_every``),
:class:`SchedulerStep` (``scheduler``), :class:`EarlyStopper` (``early_stopping``), :class:`Checkpointer`
(``checkpoint_dir``), :class:`Progress`, :class:`DivergenceGuard`, :class:`OnEpochEnd` (``on_epoch_end``).
A callback passed in ``fit(..., callbacks=[...])`` that is an instance of one of these classes takes the place
of that default; the others run after the defaults, in the order given.
"""
from __future__ import annotations

import math
import os
import sys
import warnings
from typing import Any, Callable

import autograd as ag

from ..optim.lr_scheduler import ReduceLROnPlateau
from .checkpoint import _checkpoint_path, _resume, _save_checkpoint
from .divergence import OTHER_RANK, DivergenceError, loss_divergence, nonfinite_state
from .history import EarlyStopping, History

__all__ = ["Callback", "Run", "Progress", "Checkpointer", "GradientAuditor", "DivergenceGuard", "EarlyStopper",
           "SchedulerStep", "OnEpochEnd", "HOOKS"]

HOOKS = ("on_fit_start", "on_epoch_start", "on_step_end", "on_train_epoch_end", "on_epoch_end", "on_fit_end",
         "on_exception")
ON_NAN = ("stop", "continue")


class Callback:
    """Base class: override the hooks you need (see the module's docstring); the others do nothing."""

    def on_fit_start(self, run: "Run") -> None:
        pass

    def on_epoch_start(self, run: "Run", epoch: int) -> None:
        pass

    def on_step_end(self, run: "Run", step: int, x, y, loss) -> None:
        pass

    def on_train_epoch_end(self, run: "Run", epoch: int, train: dict) -> None:
        pass

    def on_epoch_end(self, run: "Run", epoch: int, record: dict) -> None:
        pass

    def on_fit_end(self, run: "Run") -> None:
        pass

    def on_exception(self, run: "Run", error: BaseException) -> None:
        pass


def hooks(callbacks, name: str) -> list:
    """The bound ``name`` hooks of those ``callbacks`` that define it (not the base class's no-op)."""
    base = getattr(Callback, name)
    return [getattr(cb, name) for cb in callbacks if getattr(type(cb), name, base) is not base]


class Run:
    """What the callbacks see of a run, and share: set up by :func:`fit` (or by hand for your own loop).

    ``model``, ``optimizer``, ``loss_fn``, ``loaders`` (by role: ``train_loader``, ``val_loader``,
    ``test_loader``), ``train_loader``, ``epochs``, ``device``, ``comm`` (the communicator metrics are reduced
    over, None for one process), ``main`` (whether this is the rank that shows progress and writes files),
    ``history`` (the :class:`History`, replaced by a resumed one), ``start_epoch`` (epochs done before: set by a
    resume), ``epoch`` (the current one), ``stop_training`` (set it to end the run before the next epoch),
    ``check_steps`` (whether the training pass raises :class:`DivergenceError` at the first non-finite step loss),
    ``diverged`` (the epoch's :class:`DivergenceError` when it diverged and training goes on, else None) and,
    during a training pass, ``running()``: the running metrics (loss, acc, samples/s) as formatted strings (a
    host sync on a GPU).
    """

    def __init__(self, model, optimizer, loss_fn, loaders: dict, epochs: int | None, device, comm=None) -> None:
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.loaders = loaders
        self.train_loader = loaders.get("train_loader")
        self.epochs, self.device, self.comm = epochs, device, comm
        self.main = comm is None or comm.rank == 0
        self.history = History()
        self.start_epoch = 0
        self.epoch: int | None = None
        self.stop_training = False
        self.check_steps = False
        self.diverged: DivergenceError | None = None
        self.running: Callable[[], dict] | None = None


def _len(loader) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


# --- progress -------------------------------------------------------------------------------------------------
def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class _Progress:
    """A tqdm bar for one epoch, or plain lines on stderr when tqdm is missing (or ``enabled`` is False)."""

    def __init__(self, enabled: bool, total: int | None, desc: str, log_every: int | None, tqdm=None):
        self.enabled = enabled
        self.tqdm = (tqdm or _tqdm)() if enabled else None
        self.total, self.desc = total, desc
        default = max(1, (total or 100) // (20 if self.tqdm else 5))
        self.log_every = log_every or default
        self.bar = (self.tqdm(total=total, desc=desc, unit="batch", leave=False, file=sys.stderr,
                              dynamic_ncols=True) if self.tqdm else None)

    def want(self, batch_index: int) -> bool:
        """Whether to show running metrics after batch ``batch_index`` (1-based): needs a host sync."""
        return self.enabled and batch_index % self.log_every == 0

    def update(self, batch_index: int, metrics: dict | None) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if metrics:
                self.bar.set_postfix(metrics, refresh=False)
        elif metrics:
            of = f"/{self.total}" if self.total else ""
            text = "  ".join(f"{k} {v}" for k, v in metrics.items())
            print(f"{self.desc} [{batch_index}{of}]  {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _fmt(v, spec=".4f") -> str:
    return "-" if v is None else format(v, spec)


class Progress(Callback):
    """A progress bar per epoch with running loss, accuracy and samples/s (``bar``; plain lines on stderr without
    tqdm), refreshed every ``log_every`` batches (default ~20 times per epoch), and one summary line per epoch on
    stdout (``summary``, default: ``bar``). Only the main rank shows either. Subclass and override
    :meth:`summary_line` or :meth:`write` to show them elsewhere."""

    def __init__(self, bar: bool = True, summary: bool | None = None, log_every: int | None = None, tqdm=None):
        self.bar, self.summary = bar, bar if summary is None else summary
        self.log_every, self.tqdm = log_every, tqdm
        self._bar: _Progress | None = None
        self._show_bar = self._show_summary = False

    def on_fit_start(self, run: Run) -> None:
        self._show_bar, self._show_summary = self.bar and run.main, self.summary and run.main

    def on_epoch_start(self, run: Run, epoch: int) -> None:
        self._bar = _Progress(self._show_bar, _len(run.train_loader), f"epoch {epoch}/{run.epochs}", self.log_every,
                              self.tqdm)

    def on_step_end(self, run: Run, step: int, x, y, loss) -> None:
        bar = self._bar
        bar.update(step, run.running() if bar.enabled and step % bar.log_every == 0 else None)

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_train_epoch_end(self, run: Run, epoch: int, train: dict) -> None:
        self._close()

    def on_exception(self, run: Run, error: BaseException) -> None:
        self._close()

    def summary_line(self, run: Run, epoch: int, record: dict) -> str:
        return (f"epoch {epoch:>3}/{run.epochs}  loss {_fmt(record['train_loss'])}  acc {_fmt(record['train_acc'])}  "
                f"val_loss {_fmt(record.get('val_loss'))}  val_acc {_fmt(record.get('val_acc'))}  "
                f"test_acc {_fmt(record.get('test_acc'))}  {record['time']:.1f}s  "
                f"{record['samples_per_s']:,.0f} samples/s")

    def write(self, line: str) -> None:
        print(line, flush=True)

    def on_epoch_end(self, run: Run, epoch: int, record: dict) -> None:
        if self._show_summary:
            self.write(self.summary_line(run, epoch, record))


# --- gradient audits --------------------------------------------------------------------------------------------
class GradientAuditor(Callback):
    """Every ``every`` steps, check the model's gradient on the current batch against float64 finite differences
    (:func:`autograd.audit`; a mismatch raises :class:`autograd.GradientAuditError`); each audit is recorded in
    ``history.audits`` at the end of its epoch."""

    def __init__(self, every: int, **options):
        self.every, self.options = every, options
        self.auditor = None

    def on_fit_start(self, run: Run) -> None:
        self.auditor = ag.audit(run.model, run.loss_fn, every=self.every, **self.options)

    def on_step_end(self, run: Run, step: int, x, y, loss) -> None:
        self.auditor.step(x, y)

    def on_epoch_end(self, run: Run, epoch: int, record: dict) -> None:
        run.history.audits += [{"step": r.step, "ok": r.ok, "seconds": r.seconds} for r in self.auditor.reports]
        self.auditor.reports.clear()


# --- learning-rate schedule, early stopping ---------------------------------------------------------------------
class SchedulerStep(Callback):
    """Step an epoch-level learning-rate scheduler after each epoch; a ``ReduceLROnPlateau`` on the epoch's
    validation loss (the training loss without one)."""

    def __init__(self, scheduler):
        self.scheduler = scheduler

    def on_epoch_end(self, run: Run, epoch: int, record: dict) -> None:
        if isinstance(self.scheduler, ReduceLROnPlateau):        # steps on a metric: the validation loss, if any
            self.scheduler.step(record["val_loss"] if record.get("val_loss") is not None else record["train_loss"])
        else:
            self.scheduler.step()


class EarlyStopper(Callback):
    """Drives an :class:`EarlyStopping` (or an int: its patience on the validation loss): records each epoch's
    monitored metric, stops the run when it says so (announced at the end with ``verbose``), and at the end
    restores the best weights (``restore_best_weights``) and sets ``history.best_epoch`` and ``stopped_early``.
    An already stopped one (e.g. resumed) trains no further epochs."""

    def __init__(self, early_stopping: EarlyStopping | int, verbose: bool = False):
        if isinstance(early_stopping, int) and not isinstance(early_stopping, bool):
            early_stopping = EarlyStopping(patience=early_stopping)
        self.early_stopping, self.verbose = early_stopping, verbose
        self._announce = False

    def on_fit_start(self, run: Run) -> None:
        self._announce = False
        run.stop_training = self.early_stopping.stopped

    def on_epoch_end(self, run: Run, epoch: int, record: dict) -> None:
        es = self.early_stopping
        stopped = es.step(record[es.monitor], epoch, run.model)
        run.history.best_epoch, run.history.stopped_early = es.best_epoch, stopped
        if stopped:
            run.stop_training = self._announce = True

    def on_fit_end(self, run: Run) -> None:
        es = self.early_stopping
        if self._announce and self.verbose and run.main:
            print(f"early stopping after epoch {run.epoch}: best {es.monitor} {es.best:.4f} at epoch {es.best_epoch}",
                  flush=True)
        es.restore(run.model)
        run.history.best_epoch, run.history.stopped_early = es.best_epoch, es.stopped


# --- checkpoints ------------------------------------------------------------------------------------------------
class Checkpointer(Callback):
    """Save the run (model, optimizer, ``scheduler``, ``early_stopping``, history, epoch, random generators) to
    ``directory/checkpoint.npz`` after every epoch whose weights and loss are finite (``run.diverged`` is None),
    and with ``resume`` continue from the checkpoint found there (checked whole first; see
    :mod:`.checkpoint`). With several ranks only the main one writes, the others wait for it. List it after the
    callbacks whose state it saves."""

    def __init__(self, directory, resume: bool = True, scheduler=None, early_stopping: EarlyStopping | None = None,
                 verbose: bool = False):
        self.directory, self.resume, self.verbose = directory, resume, verbose
        self.scheduler, self.early_stopping = scheduler, early_stopping
        self.path = _checkpoint_path(directory)

    def on_fit_start(self, run: Run) -> None:
        os.makedirs(os.fspath(self.directory), exist_ok=True)
        if run.comm is not None:
            run.comm.barrier()                # rank 0 made the directory; nobody reads before everyone looked
        if self.resume and os.path.exists(self.path):
            run.history, run.start_epoch = _resume(self.path, run.model, run.optimizer, self.scheduler,
                                                   self.early_stopping, run.loaders, run.device)
            if self.verbose and run.main:
                print(f"fit: resuming from {self.path} after epoch {run.start_epoch}", file=sys.stderr)
            if self.early_stopping is not None:
                run.stop_training = self.early_stopping.stopped

    def on_epoch_end(self, run: Run, epoch: int, record: dict) -> None:
        if run.diverged is None:
            if run.main:
                _save_checkpoint(self.path, run.model, run.optimizer, self.scheduler, self.early_stopping, run.history,
                                 epoch, run.loaders)
            if run.comm is not None:
                run.comm.barrier()            # the checkpoint is complete before any rank goes on


# --- divergence -------------------------------------------------------------------------------------------------
def _divergence(model, tr: dict, epoch: int, steps: int | None, comm) -> DivergenceError | None:
    """The epoch's divergence, or None: its first non-finite step loss (the epoch's loss is the same on every
    rank), else the first non-finite weight after its last step (a flag summed over the ranks)."""
    if not math.isfinite(tr["loss"]):
        return loss_divergence(tr["step_loss"], epoch, steps, tr["loss"])
    bad = nonfinite_state(model)
    if comm is not None and comm.allreduce_floats([0.0 if bad is None else 1.0])[0] and bad is None:
        bad = (OTHER_RANK, math.nan)
    if bad is None:
        return None
    k = len(tr["step_loss"])
    return DivergenceError(epoch, k, bad[1], where=bad[0], steps=steps)


def _fit_caller_stacklevel() -> int:
    """``warnings.warn``'s stacklevel, for a warning raised by this function's caller, that names the caller of
    :func:`fit` (as fit's own ``stacklevel=2`` did); 2 outside fit."""
    loop = __name__.rpartition(".")[0] + ".loop"
    f, level = sys._getframe(1), 1
    while f is not None and not (f.f_code.co_name == "fit" and f.f_globals.get("__name__") == loop):
        f, level = f.f_back, level + 1
    return level + 1 if f is not None else 2


class DivergenceGuard(Callback):
    """A run whose training loss or weights stop being finite: ``on_nan="stop"`` raises :class:`DivergenceError`
    (its ``history``: the epochs completed before) at the first non-finite step loss (checked in the training
    pass: every step on the CPU, at the progress refreshes on a GPU; with several ranks at the end of the
    epoch) or, at the end of an epoch, the first non-finite weight; ``"continue"`` warns once and trains on.
    Either way ``run.diverged`` is set for the epoch, so a :class:`Checkpointer` keeps the last good checkpoint."""

    def __init__(self, on_nan: str = "stop"):
        if on_nan not in ON_NAN:
            raise ValueError(f"fit: on_nan must be 'stop' or 'continue', got {on_nan!r}")
        self.on_nan = on_nan
        self.warned = False

    def on_fit_start(self, run: Run) -> None:
        self.warned = False
        run.check_steps = self.on_nan == "stop" and run.comm is None

    def on_train_epoch_end(self, run: Run, epoch: int, train: dict) -> None:
        diverged = _divergence(run.model, train, epoch, _len(run.train_loader), run.comm)   # before the checkpoint
        run.diverged = diverged
        if diverged is None:
            return
        if self.on_nan == "stop":
            diverged.history = run.history
            raise diverged
        if not self.warned:
            warnings.warn(f"fit: {diverged}; training goes on (on_nan='continue'), and no checkpoint is written "
                          "while the weights or the epoch's loss are not finite", RuntimeWarning,
                          stacklevel=_fit_caller_stacklevel())
            self.warned = True


# --- the old on_epoch_end argument --------------------------------------------------------------------------------
class OnEpochEnd(Callback):
    """Call ``fn(epoch, record)`` after each epoch (``record``: the History row, every metric)."""

    def __init__(self, fn: Callable[[int, dict], Any]):
        self.fn = fn

    def on_epoch_end(self, run: Run, epoch: int, record: dict) -> None:
        self.fn(epoch, run.history.record())


def merge(defaults: list, user) -> list:
    """``defaults`` with each replaced, in its place, by the first of ``user`` that is an instance of its class;
    the rest of ``user`` after them, in order."""
    user = list(user or ())
    out = []
    for cb in defaults:
        mine = next((u for u in user if isinstance(u, type(cb))), None)
        if mine is not None:
            user.remove(mine)
            cb = mine
        out.append(cb)
    return out + user
