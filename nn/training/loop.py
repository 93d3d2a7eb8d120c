"""The training loop: one epoch (:func:`train_epoch`), evaluation (:func:`evaluate`) and :func:`fit`.

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
import os
import sys
import time
import warnings
from typing import Any, Callable

import autograd as ag
import backends
from autograd import Tensor

from ..data import to_device
from ..losses import BCELoss, BCEWithLogitsLoss
from ..module import Module
from ..optim.lr_scheduler import ReduceLROnPlateau
from .checkpoint import _checkpoint_path, _resume, _save_checkpoint
from .divergence import OTHER_RANK, DivergenceError, first_nonfinite, nonfinite_state
from .history import EarlyStopping, History

__all__ = ["fit", "evaluate", "train_epoch", "DivergenceError"]

ON_NAN = ("stop", "continue")


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


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class _Progress:
    """A tqdm bar for one epoch, or plain lines on stderr when tqdm is missing (or ``enabled`` is False)."""

    def __init__(self, enabled: bool, total: int | None, desc: str, log_every: int | None):
        self.enabled = enabled
        self.tqdm = _tqdm() if enabled else None
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

    def write(self, line: str) -> None:
        if self.tqdm is not None:
            self.tqdm.write(line, file=sys.stdout)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --- one epoch, evaluation --------------------------------------------------------------------------------
def train_epoch(model: Module, optimizer, loss_fn, loader, device=None, progress: _Progress | None = None,
                auditor=None, on_nan: str = "stop", epoch: int | None = None) -> dict:
    """Train ``model`` for one pass over ``loader``; returns loss, accuracy, samples, seconds and the loss of
    every step (``step_loss``, fetched from the device once at the end). ``auditor``: an
    :class:`autograd.Auditor` given every batch after the update.

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
    t0 = time.perf_counter()
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
        if auditor is not None:
            auditor.step(x, y)
        bs = int(y.shape[0]) if y.ndim else int(x.shape[0])
        step_losses.append(loss.detach())
        loss_sum = _add(loss_sum, _loss_sum(step_losses[-1], bs, loss_fn))
        c = _correct(out, y, loss_fn)
        if c is not None:
            correct, n_acc = _add(correct, c), n_acc + bs
        n += bs
        if progress is not None:
            metrics = None
            if progress.want(i):                               # the only mid-epoch host sync
                dt = time.perf_counter() - t0
                running = float(loss_sum)
                if check and not math.isfinite(running):
                    _raise_diverged(step_losses, epoch, steps)
                metrics = {"loss": f"{running / n:.4f}"}
                if correct is not None:
                    metrics["acc"] = f"{float(correct) / n_acc:.4f}"
                metrics["samples/s"] = f"{n / dt:,.0f}"
            progress.update(i, metrics)
    device.synchronize()
    dt = time.perf_counter() - t0
    if n == 0:
        raise ValueError("fit: the training loader yielded no batches")
    total = float(loss_sum)
    if check and not math.isfinite(total):
        _raise_diverged(step_losses, epoch, steps)
    return {"loss": total / n, "acc": None if correct is None else float(correct) / n_acc,
            "samples": n, "time": dt, "step_loss": _host_floats(step_losses)}


def _host_floats(step_losses) -> list[float]:
    return [float(v) for v in ag.stack(step_losses).reshape(-1).tolist()]


def _raise_diverged(step_losses, epoch, steps) -> None:
    """The summed loss is not finite: raise DivergenceError for the first step whose loss is not."""
    values = _host_floats(step_losses)
    i = first_nonfinite(values)
    i = len(values) - 1 if i is None else i          # (a sum overflowing: report the last step)
    raise DivergenceError(epoch, i + 1, values[i], steps=steps)


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
def _fmt(v, spec=".4f") -> str:
    return "-" if v is None else format(v, spec)


def fit(model: Module, optimizer, loss_fn, train_loader, epochs: int, val_loader=None, test_loader=None,
        scheduler=None, device=None, early_stopping: EarlyStopping | int | None = None, checkpoint_dir=None,
        resume: bool = True, progress: bool = True, verbose: bool | None = None,
        on_epoch_end: Callable[[int, dict], None] | None = None, log_every: int | None = None,
        audit_every: int | None = None, distributed: bool | None = None, on_nan: str = "stop") -> History:
    """Train ``model`` for ``epochs`` epochs and return its :class:`History`.

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
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
    if on_nan not in ON_NAN:
        raise ValueError(f"fit: on_nan must be 'stop' or 'continue', got {on_nan!r}")
    if device is not None:
        model.to(device)
    dev = _model_device(model)
    if isinstance(early_stopping, int) and not isinstance(early_stopping, bool):
        early_stopping = EarlyStopping(patience=early_stopping)
    if early_stopping is not None and val_loader is None:
        raise ValueError("fit: early_stopping monitors a validation metric and needs val_loader")
    comm = _communicator(model, distributed)
    main = comm is None or comm.rank == 0
    verbose = progress if verbose is None else verbose
    progress, verbose = progress and main, verbose and main
    loaders = {"train_loader": train_loader, "val_loader": val_loader, "test_loader": test_loader}
    loaders = {k: v for k, v in loaders.items() if v is not None}

    history, start = History(), 0
    path = _checkpoint_path(checkpoint_dir) if checkpoint_dir is not None else None
    if path is not None:
        os.makedirs(os.fspath(checkpoint_dir), exist_ok=True)
        if comm is not None:
            comm.barrier()                    # rank 0 made the directory; nobody reads before everyone looked
        if resume and os.path.exists(path):
            history, start = _resume(path, model, optimizer, scheduler, early_stopping, loaders, dev)
            if verbose:
                print(f"fit: resuming from {path} after epoch {start}", file=sys.stderr)

    auditor = ag.audit(model, loss_fn, every=audit_every) if audit_every is not None else None
    stopped = early_stopping is not None and early_stopping.stopped
    warned = False                            # on_nan="continue" warns once
    for epoch in range(start + 1, epochs + 1):
        if stopped:
            break
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        _set_epoch(loaders, epoch - 1)
        bar = _Progress(progress, _len(train_loader), f"epoch {epoch}/{epochs}", log_every)
        try:
            tr = train_epoch(model, optimizer, loss_fn, train_loader, dev, bar, auditor,
                             on_nan="stop" if on_nan == "stop" and comm is None else "continue", epoch=epoch)
        except DivergenceError as e:
            e.history = history
            raise
        finally:
            bar.close()
        if comm is not None:
            tr = _reduce_train(comm, tr)
        diverged = _divergence(model, tr, epoch, _len(train_loader), comm)   # before the checkpoint
        if diverged is not None:
            if on_nan == "stop":
                diverged.history = history
                raise diverged
            if not warned:
                warnings.warn(f"fit: {diverged}; training goes on (on_nan='continue'), and no checkpoint is written "
                              "while the weights or the epoch's loss are not finite", RuntimeWarning, stacklevel=2)
                warned = True
        k = len(tr["step_loss"])
        history.step_epoch += [epoch - 1 + (i + 1) / k for i in range(k)]
        history.step_loss += tr["step_loss"]
        if auditor is not None:
            history.audits += [{"step": r.step, "ok": r.ok, "seconds": r.seconds} for r in auditor.reports]
            auditor.reports.clear()
        rec = {"epoch": epoch, "train_loss": tr["loss"], "train_acc": tr["acc"], "lr": float(lr),
               "train_time": tr["time"], "samples_per_s": tr["samples"] / max(tr["time"], 1e-12)}
        if val_loader is not None:
            rec["val_loss"], rec["val_acc"] = _reduced_evaluate(comm, model, val_loader, loss_fn, dev)
        if test_loader is not None:
            rec["test_loss"], rec["test_acc"] = _reduced_evaluate(comm, model, test_loader, loss_fn, dev)
        if isinstance(scheduler, ReduceLROnPlateau):        # steps on a metric: the validation loss, if any
            scheduler.step(rec["val_loss"] if rec.get("val_loss") is not None else rec["train_loss"])
        elif scheduler is not None:
            scheduler.step()
        rec["time"] = time.perf_counter() - t0
        history.append(rec)
        if early_stopping is not None:
            stopped = early_stopping.step(rec[early_stopping.monitor], epoch, model)
            history.best_epoch, history.stopped_early = early_stopping.best_epoch, stopped
        if path is not None and diverged is None:
            if main:
                _save_checkpoint(path, model, optimizer, scheduler, early_stopping, history, epoch, loaders)
            if comm is not None:
                comm.barrier()                # the checkpoint is complete before any rank goes on
        if verbose:
            print(f"epoch {epoch:>3}/{epochs}  loss {_fmt(rec['train_loss'])}  acc {_fmt(rec['train_acc'])}  "
                  f"val_loss {_fmt(rec.get('val_loss'))}  val_acc {_fmt(rec.get('val_acc'))}  "
                  f"test_acc {_fmt(rec.get('test_acc'))}  {rec['time']:.1f}s  "
                  f"{rec['samples_per_s']:,.0f} samples/s", flush=True)
        if on_epoch_end is not None:
            on_epoch_end(epoch, history.record())
        if stopped and verbose:
            print(f"early stopping after epoch {epoch}: best {early_stopping.monitor} "
                  f"{early_stopping.best:.4f} at epoch {early_stopping.best_epoch}", flush=True)
    if early_stopping is not None:
        early_stopping.restore(model)
        history.best_epoch, history.stopped_early = early_stopping.best_epoch, early_stopping.stopped
    return history


def _divergence(model: Module, tr: dict, epoch: int, steps: int | None, comm) -> DivergenceError | None:
    """The epoch's divergence, or None: its first non-finite step loss (the epoch's loss is the same on every
    rank), else the first non-finite weight after its last step (a flag summed over the ranks)."""
    if not math.isfinite(tr["loss"]):
        i = first_nonfinite(tr["step_loss"])
        i = len(tr["step_loss"]) - 1 if i is None else i
        return DivergenceError(epoch, i + 1, tr["step_loss"][i] if tr["step_loss"] else tr["loss"], steps=steps)
    bad = nonfinite_state(model)
    if comm is not None and comm.allreduce_floats([0.0 if bad is None else 1.0])[0] and bad is None:
        bad = (OTHER_RANK, math.nan)
    if bad is None:
        return None
    k = len(tr["step_loss"])
    return DivergenceError(epoch, k, bad[1], where=bad[0], steps=steps)


def _len(loader) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None
