"""The training loop: one epoch (:func:`train_epoch`), evaluation (:func:`evaluate`) and :func:`fit`.

:func:`fit` is a convenience: its arguments build callbacks (:mod:`.callbacks`: progress, checkpoints, early
stopping, the scheduler, gradient audits, divergence checks) around the loop core :func:`run_fit`, which trains,
reduces the metrics over the ranks, evaluates and fills the :class:`History`, and nothing else.

Losses and correct-prediction counts are summed as 0-d arrays on the model's device and read back once per
epoch (and every ``log_every`` batches for the progress bar), so a GPU run does not wait on the host after
every batch. ``tqdm`` (progress bars) is optional: without it the progress is printed as plain lines.

Divergence (:class:`DivergenceError`): the loss is checked where it is on the host anyway, which on the CPU is
every step (a NumPy scalar, checked before its backward) and on a GPU the progress refreshes and the end of the
epoch (the summed loss stays non-finite once a step's loss was; the first bad step is then found among the
epoch's step losses). The weights (every floating state-dict entry) are checked once per epoch, after its last
step and before the checkpoint: a checkpoint never holds non-finite weights.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable

import autograd as ag
import backends
from autograd import Tensor

from ..data import to_device
from ..losses import BCELoss, BCEWithLogitsLoss
from ..module import Module
from .callbacks import (ON_NAN, Callback, Checkpointer, DivergenceGuard, EarlyStopper, GradientAuditor, OnEpochEnd,
                        Progress, Run, SchedulerStep, _divergence, _fmt, _len, _Progress, _tqdm, hooks, merge)
from .divergence import DivergenceError, loss_divergence
from .history import EarlyStopping, History

__all__ = ["fit", "run_fit", "default_callbacks", "evaluate", "train_epoch", "DivergenceError"]

_ = _divergence, _fmt, _tqdm    # (reached here: loop._divergence, loop._tqdm by tests, loop._fmt by search)


# --- helpers ------------------------------------------------------------------------------------------------
def _model_device(model: Module):
    for p in model.parameters():
        return p.device
    return backends.default_device()


def _float_dtype(model: Module):
    for p in model.parameters():
        if p.dtype.kind == "f":
            return p.dtype
    return None


def _split_batch(batch, device, float_dtype) -> tuple:
    """A loader's ``(inputs, targets)`` batch as Tensors on ``device``."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError("fit/evaluate: the loader must yield (inputs, targets) pairs, got "
                        f"{type(batch).__name__}{'' if not isinstance(batch, (tuple, list)) else f' of {len(batch)}'}")
    x, y = to_device(tuple(batch), device, float_dtype)
    return x, y


def _correct(out: Tensor, y: Tensor, loss_fn) -> Any:
    """Number of correct predictions as a 0-d device array, or None when accuracy has no meaning here."""
    o, t = out.array, y.array
    if t.dtype.kind in "iu" and o.ndim == t.ndim + 1 and o.shape[:-1] == t.shape:
        return (o.argmax(axis=-1) == t).sum()                     # class labels: argmax of the scores
    if isinstance(loss_fn, (BCEWithLogitsLoss, BCELoss)) and o.shape == t.shape:
        threshold = 0.0 if isinstance(loss_fn, BCEWithLogitsLoss) else 0.5
        return ((o > threshold) == (t > 0.5)).sum() / max(1, o.size // max(1, o.shape[0]))
    return None


def _loss_sum(loss: Tensor, n: int, loss_fn) -> Any:
    """The batch's summed loss as a float64 0-d device array (mean losses are scaled by the batch size)."""
    v = loss.array.astype("float64")
    return v if getattr(loss_fn, "reduction", "mean") == "sum" else v * n


def _host_scalar_loss(device) -> bool:
    """Whether a step's loss can be read on the host without a device sync (then it is checked every step)."""
    return device.kind == "cpu"            # a NumPy scalar


def _add(acc, value):
    return value if acc is None else acc + value


def _as_float(x) -> float | None:
    return None if x is None else float(x)


# --- one epoch, evaluation --------------------------------------------------------------------------------
def train_epoch(model: Module, optimizer, loss_fn, loader, device=None, progress: _Progress | None = None,
                auditor=None, on_nan: str = "stop", epoch: int | None = None, callbacks=None,
                run: Run | None = None) -> dict:
    """Train ``model`` for one pass over ``loader``; returns loss, accuracy, samples, seconds and the loss of
    every step (``step_loss``, fetched from the device once at the end). ``auditor``: an
    :class:`autograd.Auditor` given every batch after the update. ``callbacks``: their ``on_step_end(run, step,
    x, y, loss)`` hooks are called after every step (only those that define it; ``run``: the :class:`Run` they
    get, a bare one when None), after the auditor and the ``progress`` bar.

    ``on_nan="stop"`` raises :class:`DivergenceError` (naming ``epoch`` when given, the step and the value) at the
    first non-finite loss seen: every step on the CPU, at the progress refreshes and the end on a GPU (see the
    module's docstring). ``"continue"`` does not check (:func:`fit` checks the epoch's results itself)."""
    device = _model_device(model) if device is None else backends.get_backend(device)
    fdt = _float_dtype(model)
    model.train()
    loss_sum = correct = None
    n = n_acc = 0
    step_losses = []
    sync = getattr(model, "finish_gradient_sync", None)
    check = on_nan == "stop"
    each_step = check and _host_scalar_loss(device)
    steps = _len(loader)
    step_hooks = _step_hooks(progress, auditor, callbacks)
    t0 = time.perf_counter()

    def running() -> dict:
        """The running metrics for a progress refresh: the only mid-epoch host sync."""
        dt = time.perf_counter() - t0
        total = float(loss_sum)
        if check and not math.isfinite(total):
            raise loss_divergence(_host_floats(step_losses), epoch, steps, total)
        metrics = {"loss": f"{total / n:.4f}"}
        if correct is not None:
            metrics["acc"] = f"{float(correct) / n_acc:.4f}"
        metrics["samples/s"] = f"{n / dt:,.0f}"
        return metrics

    if step_hooks:
        if run is None:
            run = Run(model, optimizer, loss_fn, {"train_loader": loader}, None, device)
        run.running = running
    for i, batch in enumerate(loader, 1):
        x, y = _split_batch(batch, device, fdt)
        out = model(x)
        loss = loss_fn(out, y)
        if each_step and not math.isfinite(loss.array):
            raise DivergenceError(epoch, i, float(loss.array), steps=steps)
        optimizer.zero_grad()
        loss.backward()
        if sync is not None:
            sync()                     # data parallel: gradients averaged over the ranks (no-op when done)
        optimizer.step()
        bs = int(y.shape[0]) if y.ndim else int(x.shape[0])
        step_losses.append(loss.detach())
        loss_sum = _add(loss_sum, _loss_sum(step_losses[-1], bs, loss_fn))
        c = _correct(out, y, loss_fn)
        if c is not None:
            correct, n_acc = _add(correct, c), n_acc + bs
        n += bs
        if step_hooks:
            for hook in step_hooks:
                hook(run, i, x, y, loss)
    device.synchronize()
    dt = time.perf_counter() - t0
    if n == 0:
        raise ValueError("fit: the training loader yielded no batches")
    total = float(loss_sum)
    if check and not math.isfinite(total):
        raise loss_divergence(_host_floats(step_losses), epoch, steps, total)
    return {"loss": total / n, "acc": None if correct is None else float(correct) / n_acc,
            "samples": n, "time": dt, "step_loss": _host_floats(step_losses)}


def _step_hooks(progress: _Progress | None, auditor, callbacks) -> list:
    """The per-step calls ``hook(run, step, x, y, loss)``: the auditor, the progress bar, the callbacks' hooks."""
    out = []
    if auditor is not None:
        out.append(lambda run, i, x, y, loss: auditor.step(x, y))
    if progress is not None:
        out.append(lambda run, i, x, y, loss: progress.update(i, run.running() if progress.want(i) else None))
    if callbacks:
        out += hooks(callbacks, "on_step_end")
    return out


def _host_floats(step_losses) -> list[float]:
    return [float(v) for v in ag.stack(step_losses).reshape(-1).tolist()]


def evaluate(model: Module, loader, loss_fn=None, device=None) -> tuple[float | None, float | None]:
    """``(mean loss, accuracy)`` of ``model`` on ``loader`` under ``no_grad`` in evaluation mode.

    Args:
        model: the model (its training mode is restored afterwards).
        loader: yields ``(inputs, targets)`` batches (arrays or Tensors; moved to the model's device).
        loss_fn: optional loss; without it the loss is None.
        device: where to compute (default: the device of the model's parameters).

    Returns:
        The loss averaged over samples (None without ``loss_fn``) and the fraction of correct predictions
        (argmax of the scores against integer labels; thresholded for BCE losses; None when the targets are
        not class labels).
    """
    loss, acc, _ = _evaluate(model, loader, loss_fn, device)
    return loss, acc


def _evaluate(model: Module, loader, loss_fn=None, device=None) -> tuple[float | None, float | None, int]:
    """:func:`evaluate` plus the number of samples seen."""
    device = _model_device(model) if device is None else backends.get_backend(device)
    fdt = _float_dtype(model)
    was_training = model.training
    model.eval()
    loss_sum = correct = None
    n = n_acc = 0
    try:
        with ag.no_grad():
            for batch in loader:
                x, y = _split_batch(batch, device, fdt)
                out = model(x)
                bs = int(y.shape[0]) if y.ndim else int(x.shape[0])
                if loss_fn is not None:
                    loss_sum = _add(loss_sum, _loss_sum(loss_fn(out, y), bs, loss_fn))
                c = _correct(out, y, loss_fn)
                if c is not None:
                    correct, n_acc = _add(correct, c), n_acc + bs
                n += bs
    finally:
        model.train(was_training)
    if n == 0:
        raise ValueError("evaluate: the loader yielded no batches")
    loss = None if loss_sum is None else float(loss_sum) / n
    acc = None if correct is None else float(correct) / n_acc
    return loss, acc, n


# --- data parallel: what fit does differently with several ranks -------------------------------------------------
def _communicator(model: Module, distributed: bool | None):
    """The communicator fit reduces metrics over, or None for a single-process run."""
    from .. import parallel
    if distributed is None:
        distributed = isinstance(model, parallel.DistributedDataParallel)
    if not distributed:
        return None
    comm = getattr(model, "comm", None) or parallel.world()
    return comm if comm.size > 1 else None


def _reduce_train(comm, tr: dict) -> dict:
    """The epoch's training metrics over every rank's samples; step losses averaged over ranks step by step."""
    from ..parallel import reduce_mean
    n = tr["samples"]
    loss, acc = reduce_mean([tr["loss"], tr["acc"]], weight=n)
    k = len(tr["step_loss"])
    total_n, total_k = comm.allreduce_floats([n, k])
    out = dict(tr, loss=loss, acc=acc, samples=int(total_n))
    if total_k == k * comm.size:            # the same number of steps everywhere (padded sampler)
        out["step_loss"] = [v / comm.size for v in comm.allreduce_floats(tr["step_loss"])]
    return out


def _reduced_evaluate(comm, model, loader, loss_fn, device):
    loss, acc, n = _evaluate(model, loader, loss_fn, device)
    if comm is None:
        return loss, acc
    from ..parallel import reduce_mean
    loss, acc = reduce_mean([loss, acc], weight=n)
    return loss, acc


def _set_epoch(loaders, epoch: int) -> None:
    for loader in loaders.values():
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)


# --- the training loop ---------------------------------------------------------------------------------------
def fit(model: Module, optimizer, loss_fn, train_loader, epochs: int, val_loader=None, test_loader=None,
        scheduler=None, device=None, early_stopping: EarlyStopping | int | None = None, checkpoint_dir=None,
        resume: bool = True, progress: bool = True, verbose: bool | None = None,
        on_epoch_end: Callable[[int, dict], None] | None = None, log_every: int | None = None,
        audit_every: int | None = None, distributed: bool | None = None, on_nan: str = "stop",
        callbacks: list[Callback] | None = None) -> History:
    """Train ``model`` for ``epochs`` epochs and return its :class:`History`.

    A convenience over :func:`run_fit`: the arguments build the callbacks (progress, checkpoints, early stopping,
    the scheduler, gradient audits, divergence checks; see :mod:`nn.training.callbacks`).

    Each epoch: one pass over ``train_loader`` (``zero_grad``, forward, ``loss_fn``, ``backward``, ``step``), then
    :func:`evaluate` on ``val_loader`` and ``test_loader`` when given, then ``scheduler.step()``.

    Args:
        model: the network (moved to ``device`` when given).
        optimizer: e.g. ``nn.optim.Adam(model.parameters(), lr=1e-3)``.
        loss_fn: e.g. ``nn.CrossEntropyLoss()``; called as ``loss_fn(model(x), y)``.
        train_loader, val_loader, test_loader: iterables of ``(inputs, targets)`` batches (a
            :class:`~nn.data.DataLoader`); arrays are moved to the model's device, floating ones cast to its dtype.
        epochs: total number of epochs (a resumed run continues up to it).
        scheduler: an epoch-level learning-rate scheduler (``nn.optim.lr_scheduler``), stepped after each epoch;
            a ``ReduceLROnPlateau`` is stepped on the epoch's validation loss (the training loss without
            ``val_loader``).
        device: ``"cpu"``/``"cuda"``; default: where the model's parameters are.
        early_stopping: an :class:`EarlyStopping`, or an int (patience on the validation loss); needs
            ``val_loader``. With ``restore_best_weights`` the model ends with its best epoch's weights.
        checkpoint_dir: when given, model, optimizer, scheduler, early-stopping state, history, epoch and the
            random generators' states are saved there (``checkpoint.npz``, via ``nn.save``) after every epoch.
        resume: with ``checkpoint_dir``, continue from the checkpoint found there: a seeded run that is
            interrupted and resumed gives the same results as an uninterrupted one (on the CPU backend). The
            whole checkpoint is checked first (model keys, shapes and dtypes, optimizer state, scheduler,
            early stopping, epoch and history); a checkpoint that does not fit raises :class:`CheckpointError`
            naming the entry, and nothing is loaded.
        progress: a tqdm progress bar per epoch with running loss, accuracy and samples/s (plain lines on
            stderr without tqdm).
        verbose: print one summary line per epoch (default: ``progress``).
        on_epoch_end: called as ``on_epoch_end(epoch, record)`` after each epoch (record: the History row).
        log_every: refresh the running metrics every this many batches (default ~20 times per epoch).
        audit_every: every this many steps, check the model's gradient on the current batch against float64
            finite differences (:func:`autograd.audit`); a mismatch raises :class:`autograd.GradientAuditError`.
        distributed: data-parallel mode (default: when ``model`` is a
            :class:`~nn.parallel.DistributedDataParallel` and there is more than one rank). Then every metric is
            the mean over all ranks' samples (so early stopping decides the same everywhere), step losses are
            averaged over the ranks, samplers get ``set_epoch``, only rank 0 shows progress, prints and writes
            the checkpoint (the others wait for it), and a resumed run loads the checkpoint on every rank.
        on_nan: what a diverged run does, one whose training loss or weights are no longer finite (NaN or
            inf). ``"stop"`` (default): raise :class:`DivergenceError` naming the epoch, the step and the value
            (its ``history`` attribute: the epochs completed before), at the first non-finite loss (checked every
            step on the CPU; on a GPU at the progress refreshes and the end of the epoch, which need a host sync
            anyway; with several ranks at the end of the epoch, the same on every rank) or, at the end of an
            epoch, the first non-finite weight. ``"continue"``: warn once and train on. Either way the checkpoint
            is only written with finite weights and loss, so the last good one stays.
        callbacks: more :class:`~nn.training.callbacks.Callback` objects. The arguments above build the default
            ones (:func:`default_callbacks`); a callback that is an instance of a default's class replaces it in its
            place (e.g. your own :class:`~nn.training.callbacks.Progress`), the others run after the defaults.
    """

    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
    if on_nan not in ON_NAN:
        raise ValueError(f"fit: on_nan must be 'stop' or 'continue', got {on_nan!r}")
    if device is not None:
        model.to(device)
    if isinstance(early_stopping, int) and not isinstance(early_stopping, bool):
        early_stopping = EarlyStopping(patience=early_stopping)
    if early_stopping is not None and val_loader is None:
        raise ValueError("fit: early_stopping monitors a validation metric and needs val_loader")
    comm = _communicator(model, distributed)
    verbose = progress if verbose is None else verbose
    defaults = default_callbacks(scheduler=scheduler, early_stopping=early_stopping, checkpoint_dir=checkpoint_dir,
                                 resume=resume, progress=progress, verbose=verbose, on_epoch_end=on_epoch_end,
                                 log_every=log_every, audit_every=audit_every, on_nan=on_nan)
    return run_fit(model, optimizer, loss_fn, train_loader, epochs, val_loader, test_loader,
                   merge(defaults, callbacks), comm=comm)


def default_callbacks(scheduler=None, early_stopping: EarlyStopping | None = None, checkpoint_dir=None,
                      resume: bool = True, progress: bool = True, verbose: bool = False,
                      on_epoch_end: Callable[[int, dict], None] | None = None, log_every: int | None = None,
                      audit_every: int | None = None, on_nan: str = "stop") -> list[Callback]:
    """The callbacks :func:`fit` builds from its arguments, in their order (see :mod:`nn.training.callbacks`)."""
    out: list[Callback] = []
    if audit_every is not None:
        out.append(GradientAuditor(audit_every))
    if scheduler is not None:
        out.append(SchedulerStep(scheduler))
    if early_stopping is not None:
        out.append(EarlyStopper(early_stopping, verbose=verbose))
    if checkpoint_dir is not None:
        out.append(Checkpointer(checkpoint_dir, resume, scheduler, early_stopping, verbose=verbose))
    out.append(Progress(progress, verbose, log_every, tqdm=_tqdm))
    out.append(DivergenceGuard(on_nan))
    if on_epoch_end is not None:
        out.append(OnEpochEnd(on_epoch_end))
    return out


def run_fit(model: Module, optimizer, loss_fn, train_loader, epochs: int, val_loader=None, test_loader=None,
            callbacks=(), comm=None) -> History:
    """The loop core of :func:`fit`: train ``epochs`` epochs (from ``run.start_epoch``, which a resume sets) with
    nothing but ``callbacks`` around it; metrics are reduced over ``comm``'s ranks when given. Returns the
    run's :class:`History`."""
    loaders = {"train_loader": train_loader, "val_loader": val_loader, "test_loader": test_loader}
    loaders = {k: v for k, v in loaders.items() if v is not None}
    dev = _model_device(model)
    run = Run(model, optimizer, loss_fn, loaders, epochs, dev, comm)
    callbacks = list(callbacks)
    epoch_start, train_end = hooks(callbacks, "on_epoch_start"), hooks(callbacks, "on_train_epoch_end")
    epoch_end = hooks(callbacks, "on_epoch_end")
    step_callbacks = [cb for cb in callbacks if hooks([cb], "on_step_end")]
    try:
        for hook in hooks(callbacks, "on_fit_start"):
            hook(run)
        for epoch in range(run.start_epoch + 1, epochs + 1):
            if run.stop_training:
                break
            run.epoch, run.diverged = epoch, None
            t0 = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            _set_epoch(loaders, epoch - 1)
            for hook in epoch_start:
                hook(run, epoch)
            try:
                tr = train_epoch(model, optimizer, loss_fn, train_loader, dev,
                                 on_nan="stop" if run.check_steps else "continue", epoch=epoch,
                                 callbacks=step_callbacks, run=run)
            except DivergenceError as e:
                e.history = run.history
                raise
            finally:
                run.running = None
            if comm is not None:
                tr = _reduce_train(comm, tr)
            for hook in train_end:
                hook(run, epoch, tr)
            history = run.history
            k = len(tr["step_loss"])
            history.step_epoch += [epoch - 1 + (i + 1) / k for i in range(k)]
            history.step_loss += tr["step_loss"]
            rec = {"epoch": epoch, "train_loss": tr["loss"], "train_acc": tr["acc"], "lr": float(lr),
                   "train_time": tr["time"], "samples_per_s": tr["samples"] / max(tr["time"], 1e-12)}
            if val_loader is not None:
                rec["val_loss"], rec["val_acc"] = _reduced_evaluate(comm, model, val_loader, loss_fn, dev)
            if test_loader is not None:
                rec["test_loss"], rec["test_acc"] = _reduced_evaluate(comm, model, test_loader, loss_fn, dev)
            rec["time"] = time.perf_counter() - t0
            history.append(rec)
            for hook in epoch_end:
                hook(run, epoch, rec)
        for hook in hooks(callbacks, "on_fit_end"):
            hook(run)
    except BaseException as e:
        for hook in hooks(callbacks, "on_exception"):
            hook(run, e)
        raise
    return run.history
