"""Training utilities: a readable training loop, evaluation, learning curves, hyper-parameter search, K-fold CV.

    from nn.training import fit, evaluate, EarlyStopping, plot_history
    opt = nn.optim.Adam(model.parameters(), lr=1e-3)
    hist = fit(model, opt, nn.CrossEntropyLoss(), train_loader, epochs=10, val_loader=val_loader,
               test_loader=test_loader, early_stopping=EarlyStopping(patience=3, monitor="val_acc"),
               checkpoint_dir="runs/mlp")          # resumes from runs/mlp/checkpoint.npz when it exists
    loss, acc = evaluate(model, test_loader, nn.CrossEntropyLoss())
    plot_history(hist, "runs/mlp/curves.png")

    best = random_search(lambda cfg: make_mlp(cfg["hidden"]), train_set, n_trials=8, epochs=2, seed=0)
    cv = cross_validate(lambda cfg: make_mlp(128), train_set, k=5, epochs=2, seed=0)

Losses and correct-prediction counts are summed as 0-d arrays on the model's device and read back once per
epoch (and every ``log_every`` batches for the progress bar), so a GPU run does not wait on the host after
every batch. ``tqdm`` (progress bars) and ``matplotlib`` (plots) are optional (extra ``bench``): without tqdm
the progress is printed as plain lines.
"""
from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import autograd as ag
import backends
from autograd import Tensor

from .data import DataLoader, Subset, k_fold, random_split, to_device
from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss
from .module import Module
from .serialization import CheckpointError, load, save

__all__ = ["History", "EarlyStopping", "fit", "evaluate", "train_epoch", "plot_history", "make_optimizer",
           "OPTIMIZERS", "LogUniform", "Uniform", "Choice", "DEFAULT_SPACE", "random_search", "SearchResult",
           "cross_validate", "CVResult", "CHECKPOINT_NAME", "CheckpointError"]

CHECKPOINT_NAME = "checkpoint.npz"


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
                self.best_state = {k: t.data.copy() for k, t in model.state_dict().items()}
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
        self.best_state = None if best is None else {k: (v.data if isinstance(v, Tensor) else v)
                                                     for k, v in best.items()}

    def __repr__(self) -> str:
        return (f"EarlyStopping(patience={self.patience}, monitor={self.monitor!r}, min_delta={self.min_delta}, "
                f"best={self.best}, best_epoch={self.best_epoch}, wait={self.wait})")


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
    o, t = out.data, y.data
    if t.dtype.kind in "iu" and o.ndim == t.ndim + 1 and o.shape[:-1] == t.shape:
        return (o.argmax(axis=-1) == t).sum()                     # class labels: argmax of the scores
    if isinstance(loss_fn, (BCEWithLogitsLoss, BCELoss)) and o.shape == t.shape:
        threshold = 0.0 if isinstance(loss_fn, BCEWithLogitsLoss) else 0.5
        return ((o > threshold) == (t > 0.5)).sum() / max(1, o.size // max(1, o.shape[0]))
    return None


def _loss_sum(loss: Tensor, n: int, loss_fn) -> Any:
    """The batch's summed loss as a float64 0-d device array (mean losses are scaled by the batch size)."""
    v = loss.data.astype("float64")
    return v if getattr(loss_fn, "reduction", "mean") == "sum" else v * n


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
                auditor=None) -> dict:
    """Train ``model`` for one pass over ``loader``; returns loss, accuracy, samples, seconds and the loss of
    every step (``step_loss``, fetched from the device once at the end). ``auditor``: an
    :class:`autograd.Auditor` given every batch after the update."""
    device = _model_device(model) if device is None else backends.get_backend(device)
    fdt = _float_dtype(model)
    model.train()
    loss_sum = correct = None
    n = n_acc = 0
    step_losses = []
    t0 = time.perf_counter()
    for i, batch in enumerate(loader, 1):
        x, y = _split_batch(batch, device, fdt)
        out = model(x)
        loss = loss_fn(out, y)
        optimizer.zero_grad()
        loss.backward()
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
                metrics = {"loss": f"{float(loss_sum) / n:.4f}"}
                if correct is not None:
                    metrics["acc"] = f"{float(correct) / n_acc:.4f}"
                metrics["samples/s"] = f"{n / dt:,.0f}"
            progress.update(i, metrics)
    device.synchronize()
    dt = time.perf_counter() - t0
    if n == 0:
        raise ValueError("fit: the training loader yielded no batches")
    return {"loss": float(loss_sum) / n, "acc": None if correct is None else float(correct) / n_acc,
            "samples": n, "time": dt, "step_loss": [float(v) for v in ag.stack(step_losses).reshape(-1).tolist()]}


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
    return loss, acc


# --- checkpoints ---------------------------------------------------------------------------------------------
def _generators(loaders) -> dict:
    """The random generators a run depends on: the CPU backend's and each loader's own (by role)."""
    gens = {"cpu": backends.cpu.rng}
    for role, loader in loaders.items():
        rng = getattr(loader, "_rng", None)       # a DataLoader built with seed=... owns a generator
        if rng is not None:
            gens[role] = rng
    for be in backends._cuda_backends.values():   # CuPy generators: saved when their state is readable
        gens[be.name] = be.rng
    return gens


def _rng_state(loaders) -> dict:
    out = {}
    for role, rng in _generators(loaders).items():
        try:
            out[role] = rng.bit_generator.state
        except (AttributeError, NotImplementedError, TypeError):
            pass
    return out


def _set_rng_state(loaders, states: Mapping) -> None:
    for role, rng in _generators(loaders).items():
        if role in states:
            try:
                rng.bit_generator.state = states[role]
            except (AttributeError, NotImplementedError, TypeError, ValueError):
                pass


def _checkpoint_path(checkpoint_dir) -> str:
    return os.path.join(os.fspath(checkpoint_dir), CHECKPOINT_NAME)


# Resuming checks the whole checkpoint against the model, optimizer, scheduler and early stopping before it
# changes any of them (as Module.load_state_dict does for one module): a checkpoint from another model, an
# edited or damaged one, or one lacking an entry raises CheckpointError naming the entry, and nothing is loaded.
_REQUIRED = ("model", "optimizer", "epoch", "history")


def _is_int(v) -> bool:
    return not isinstance(v, bool) and (isinstance(v, int) or (hasattr(v, "dtype") and getattr(v, "ndim", 1) == 0
                                                                and v.dtype.kind in "iu"))


def _is_real(v) -> bool:
    return _is_int(v) or isinstance(v, float) or (hasattr(v, "dtype") and getattr(v, "ndim", 1) == 0
                                                  and v.dtype.kind == "f")


def _check_tensors(saved, model: Module, where: str) -> list[str]:
    """Problems of ``saved`` as a state dict for ``model``: keys, shapes, dtype kinds (empty when it fits)."""
    if not isinstance(saved, Mapping):
        return [f"'{where}' is a {type(saved).__name__}, not a mapping of names to arrays"]
    own = model.state_dict()
    problems = []
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    if missing:
        problems.append(f"'{where}' lacks {missing}")
    if unexpected:
        problems.append(f"'{where}' has unexpected {unexpected}")
    for k, t in own.items():
        if k not in saved:
            continue
        v = saved[k]
        arr = v.data if isinstance(v, Tensor) else v
        if not (hasattr(arr, "shape") and hasattr(arr, "dtype")):
            problems.append(f"'{where}.{k}' is a {type(v).__name__}, not an array")
            continue
        if tuple(arr.shape) != tuple(t.shape):
            problems.append(f"'{where}.{k}' has shape {tuple(arr.shape)}, the model's {tuple(t.shape)}")
        kinds = {"f": "f", "i": "iu", "u": "iu", "b": "b", "c": "c"}.get(t.dtype.kind, t.dtype.kind)
        if arr.dtype.kind not in kinds:
            problems.append(f"'{where}.{k}' has dtype {arr.dtype}, the model's {t.dtype}")
    return problems


def _check_scheduler(saved, scheduler) -> list[str]:
    if not isinstance(saved, Mapping):
        return [f"'scheduler' is a {type(saved).__name__}, not a dict"]
    own = scheduler.state_dict()
    problems = []
    missing = sorted(k for k in own if k not in saved)
    unexpected = sorted(str(k) for k in saved if k not in own)
    if missing or unexpected:
        problems.append(f"'scheduler' does not match {type(scheduler).__name__} (lacks {missing}, has unexpected "
                        f"{unexpected}; saved by another scheduler?)")
    for k, mine in own.items():
        if k not in saved or k == "_schedulers":
            continue
        v = saved[k]
        if isinstance(mine, bool):
            ok = isinstance(v, bool)
        elif _is_real(mine):
            ok = _is_real(v)
        elif isinstance(mine, (list, tuple)):
            ok = isinstance(v, (list, tuple)) and len(v) == len(mine)
        else:
            ok = True
        if not ok:
            problems.append(f"'scheduler.{k}' is {v!r}, where {type(scheduler).__name__} has {mine!r}")
    if not problems:
        probe = copy.deepcopy(scheduler, {id(scheduler.optimizer): scheduler.optimizer})
        try:
            probe.load_state_dict(saved)
        except Exception as e:  # noqa: BLE001  (reported as the checkpoint's problem)
            problems.append(f"'scheduler' does not load ({type(e).__name__}: {e})")
    return problems


def _check_early_stopping(saved, model: Module) -> list[str]:
    if not isinstance(saved, Mapping):
        return [f"'early_stopping' is a {type(saved).__name__}, not a dict"]
    problems = [f"'early_stopping' lacks '{k}'" for k in ("best", "best_epoch", "wait", "stopped") if k not in saved]
    if problems:
        return problems
    if saved["best"] is not None and not _is_real(saved["best"]):
        problems.append(f"'early_stopping.best' is {saved['best']!r}, not a number")
    if saved["best_epoch"] is not None and not _is_int(saved["best_epoch"]):
        problems.append(f"'early_stopping.best_epoch' is {saved['best_epoch']!r}, not an int")
    if not _is_int(saved["wait"]) or saved["wait"] < 0:
        problems.append(f"'early_stopping.wait' is {saved['wait']!r}, not a non-negative int")
    if not isinstance(saved["stopped"], bool):
        problems.append(f"'early_stopping.stopped' is {saved['stopped']!r}, not a bool")
    if saved.get("best_state") is not None:
        problems += _check_tensors(saved["best_state"], model, "early_stopping.best_state")
    return problems


def _check_history(saved, epoch) -> list[str]:
    if not isinstance(saved, Mapping):
        return [f"'history' is a {type(saved).__name__}, not a dict"]
    lengths = {}
    for name in History.METRICS:
        v = saved.get(name, [])
        if not isinstance(v, (list, tuple)):
            return [f"'history.{name}' is a {type(v).__name__}, not a list"]
        lengths[name] = len(v)
    if len(set(lengths.values())) > 1 or lengths["epoch"] != epoch:
        return [f"'history' has {lengths['epoch']} epoch(s) and metric lists of lengths {sorted(set(lengths.values()))}"
                f", but the checkpoint's 'epoch' is {epoch}"]
    return []


def _check_rng(saved, loaders) -> list[str]:
    if saved is None:
        return []
    if not isinstance(saved, Mapping):
        return [f"'rng' is a {type(saved).__name__}, not a dict"]
    problems = []
    for role, rng in _generators(loaders).items():
        if role not in saved:
            continue
        try:
            probe = type(rng.bit_generator)()
        except Exception:  # noqa: BLE001  (a generator we cannot probe, e.g. CuPy's: set leniently as before)
            continue
        try:
            probe.state = saved[role]
        except Exception as e:  # noqa: BLE001
            problems.append(f"'rng.{role}' is not a valid {type(probe).__name__} state ({type(e).__name__}: {e})")
    return problems


def _check_checkpoint(path: str, ckpt, model: Module, optimizer, scheduler, early_stopping, loaders) -> int:
    """Raise CheckpointError listing every problem of ``ckpt`` for this run; returns the saved epoch."""
    def fail(problems):
        raise CheckpointError(f"fit: cannot resume from {path!r} (nothing was loaded; fix or delete the file, or pass "
                              "resume=False to start afresh): " + "; ".join(problems))

    if not isinstance(ckpt, Mapping):
        fail([f"it holds a {type(ckpt).__name__}, not a dict of 'model', 'optimizer', 'epoch', 'history', ..."])
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        fail([f"the checkpoint has no {', '.join(repr(k) for k in missing)} entr{'y' if len(missing) == 1 else 'ies'}"
              f" (it has {sorted(map(str, ckpt))})"])
    problems = []
    epoch = ckpt["epoch"]
    if not _is_int(epoch) or epoch < 0:
        problems.append(f"'epoch' is {epoch!r}, not a non-negative int")
        epoch = None
    problems += _check_tensors(ckpt["model"], model, "model")
    saved_opt = ckpt["optimizer"]
    if not isinstance(saved_opt, Mapping) or not {"state", "param_groups"} <= set(saved_opt):
        problems.append("'optimizer' is not an optimizer state_dict (a dict with 'state' and 'param_groups')")
    else:
        probe = copy.copy(optimizer)          # load_state_dict rebinds param_groups and state: the original stays
        try:
            probe.load_state_dict(saved_opt)
        except Exception as e:  # noqa: BLE001
            problems.append(f"'optimizer' does not fit {type(optimizer).__name__} ({type(e).__name__}: {e})")
    if scheduler is not None and ckpt.get("scheduler") is not None:
        problems += _check_scheduler(ckpt["scheduler"], scheduler)
    if early_stopping is not None and ckpt.get("early_stopping") is not None:
        problems += _check_early_stopping(ckpt["early_stopping"], model)
    if epoch is not None:
        problems += _check_history(ckpt["history"], int(epoch))
    problems += _check_rng(ckpt.get("rng"), loaders)
    if problems:
        fail(problems)
    return int(epoch)


def _resume(path: str, model: Module, optimizer, scheduler, early_stopping, loaders) -> tuple["History", int]:
    """Load the checkpoint at ``path`` into the run, all or nothing; returns (history, last epoch)."""
    ckpt = load(path, device=_model_device(model))
    epoch = _check_checkpoint(path, ckpt, model, optimizer, scheduler, early_stopping, loaders)
    history = History.from_dict(ckpt["history"])
    # Everything fits. Load what can be undone first, the model (checked, all or nothing itself) last.
    saved = (optimizer.param_groups, optimizer.state, dict(scheduler.__dict__) if scheduler is not None else None,
             dict(early_stopping.__dict__) if early_stopping is not None else None, _rng_state(loaders))
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
        if scheduler is not None and ckpt.get("scheduler") is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        if early_stopping is not None and ckpt.get("early_stopping") is not None:
            early_stopping.load_state_dict(ckpt["early_stopping"])
        _set_rng_state(loaders, ckpt.get("rng") or {})
        model.load_state_dict(ckpt["model"])
    except BaseException:
        optimizer.param_groups, optimizer.state = saved[0], saved[1]
        if scheduler is not None:
            scheduler.__dict__.clear()
            scheduler.__dict__.update(saved[2])
        if early_stopping is not None:
            early_stopping.__dict__.clear()
            early_stopping.__dict__.update(saved[3])
        _set_rng_state(loaders, saved[4])
        raise
    return history, epoch


# --- the training loop ---------------------------------------------------------------------------------------
def _fmt(v, spec=".4f") -> str:
    return "-" if v is None else format(v, spec)


def fit(model: Module, optimizer, loss_fn, train_loader, epochs: int, val_loader=None, test_loader=None,
        scheduler=None, device=None, early_stopping: EarlyStopping | int | None = None, checkpoint_dir=None,
        resume: bool = True, progress: bool = True, verbose: bool | None = None,
        on_epoch_end: Callable[[int, dict], None] | None = None, log_every: int | None = None,
        audit_every: int | None = None) -> History:
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
        scheduler: an epoch-level learning-rate scheduler (``nn.optim.lr_scheduler``), stepped after each epoch.
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
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
    if device is not None:
        model.to(device)
    dev = _model_device(model)
    if isinstance(early_stopping, int) and not isinstance(early_stopping, bool):
        early_stopping = EarlyStopping(patience=early_stopping)
    if early_stopping is not None and val_loader is None:
        raise ValueError("fit: early_stopping monitors a validation metric and needs val_loader")
    verbose = progress if verbose is None else verbose
    loaders = {"train_loader": train_loader, "val_loader": val_loader, "test_loader": test_loader}
    loaders = {k: v for k, v in loaders.items() if v is not None}

    history, start = History(), 0
    path = _checkpoint_path(checkpoint_dir) if checkpoint_dir is not None else None
    if path is not None:
        os.makedirs(os.fspath(checkpoint_dir), exist_ok=True)
        if resume and os.path.exists(path):
            history, start = _resume(path, model, optimizer, scheduler, early_stopping, loaders)
            if verbose:
                print(f"fit: resuming from {path} after epoch {start}", file=sys.stderr)

    auditor = ag.audit(model, loss_fn, every=audit_every) if audit_every is not None else None
    stopped = early_stopping is not None and early_stopping.stopped
    for epoch in range(start + 1, epochs + 1):
        if stopped:
            break
        t0 = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        bar = _Progress(progress, _len(train_loader), f"epoch {epoch}/{epochs}", log_every)
        try:
            tr = train_epoch(model, optimizer, loss_fn, train_loader, dev, bar, auditor)
        finally:
            bar.close()
        k = len(tr["step_loss"])
        history.step_epoch += [epoch - 1 + (i + 1) / k for i in range(k)]
        history.step_loss += tr["step_loss"]
        if auditor is not None:
            history.audits += [{"step": r.step, "ok": r.ok, "seconds": r.seconds} for r in auditor.reports]
            auditor.reports.clear()
        rec = {"epoch": epoch, "train_loss": tr["loss"], "train_acc": tr["acc"], "lr": float(lr),
               "train_time": tr["time"], "samples_per_s": tr["samples"] / max(tr["time"], 1e-12)}
        if val_loader is not None:
            rec["val_loss"], rec["val_acc"] = evaluate(model, val_loader, loss_fn, dev)
        if test_loader is not None:
            rec["test_loss"], rec["test_acc"] = evaluate(model, test_loader, loss_fn, dev)
        if scheduler is not None:
            scheduler.step()
        rec["time"] = time.perf_counter() - t0
        history.append(rec)
        if early_stopping is not None:
            stopped = early_stopping.step(rec[early_stopping.monitor], epoch, model)
            history.best_epoch, history.stopped_early = early_stopping.best_epoch, stopped
        if path is not None:
            save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                  "scheduler": None if scheduler is None else scheduler.state_dict(),
                  "early_stopping": None if early_stopping is None else early_stopping.state_dict(),
                  "history": history.to_dict(), "rng": _rng_state(loaders)}, path)
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


def _len(loader) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


# --- plots -----------------------------------------------------------------------------------------------------
def _smooth(values: list, points: int = 50) -> list:
    """Trailing moving average over about ``len(values) / points`` steps (at least 1)."""
    w = max(1, len(values) // points)
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= w:
            acc -= values[i - w]
        out.append(acc / min(i + 1, w))
    return out


def plot_history(history: History | Mapping, path, title: str | None = None) -> str:
    """Write a PNG of the learning curves: training loss per step (raw and smoothed) with the loss per epoch
    (train, validation, test), and accuracy per epoch.

    Needs matplotlib (``pip install "xpgrad[bench]"``); draws with the Agg canvas, so no display is needed and
    the global matplotlib backend is not changed. Returns the path written.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as e:
        raise ImportError("plot_history needs matplotlib, an optional dependency: pip install matplotlib "
                          "(or pip install -e '.[bench]')") from e
    h = history if isinstance(history, History) else History.from_dict(history)
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)

    def curve(ax, name, label, style):
        pts = [(e, v) for e, v in zip(h.epoch, h[name]) if v is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
            return True
        return False

    drew_loss = []
    if h.step_loss:             # per step: raw (faint) and smoothed, so even a one-epoch run has a curve
        ax_loss.plot(h.step_epoch, h.step_loss, color="tab:blue", alpha=0.25, lw=0.8)
        ax_loss.plot(h.step_epoch, _smooth(h.step_loss), color="tab:blue", label="train (per step, smoothed)")
        drew_loss.append(True)
    drew_loss += [curve(ax_loss, n, lab, s) for n, lab, s in
                  (("train_loss", "train (epoch mean)", "o-"), ("val_loss", "validation", "s--"),
                   ("test_loss", "test", "^:"))]
    drew_acc = [curve(ax_acc, n, lab, s) for n, lab, s in
                (("train_acc", "train", "o-"), ("val_acc", "validation", "s--"), ("test_acc", "test", "^:"))]
    for ax, ylabel, drew in ((ax_loss, "loss", drew_loss), (ax_acc, "accuracy", drew_acc)):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if any(drew):
            ax.legend()
    if h.best_epoch is not None:
        for ax in (ax_loss, ax_acc):
            ax.axvline(h.best_epoch, color="grey", lw=0.8, ls=":")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, format="png")
    return path


# --- optimizers by name ------------------------------------------------------------------------------------
# name -> (constructor name in nn.optim, fixed keyword arguments, default learning rate)
OPTIMIZERS: dict[str, tuple[str, dict, float]] = {
    "sgd": ("SGD", {}, 0.1),
    "momentum": ("SGD", {"momentum": 0.9}, 0.01),
    "nesterov": ("SGD", {"momentum": 0.9, "nesterov": True}, 0.01),
    "adagrad": ("Adagrad", {}, 0.01),
    "rmsprop": ("RMSprop", {}, 1e-3),
    "adadelta": ("Adadelta", {}, 1.0),
    "adam": ("Adam", {}, 1e-3),
    "adamw": ("AdamW", {}, 1e-3),
}


def make_optimizer(name: str, params: Iterable, lr: float | None = None, weight_decay: float | None = None,
                   **kwargs):
    """An optimizer by name (see :data:`OPTIMIZERS`): ``momentum``/``nesterov`` are SGD with momentum 0.9.

    ``lr=None`` takes the name's default (Adam 1e-3, SGD 0.1, Adadelta 1.0, ...); ``weight_decay=None`` keeps the
    optimizer's default (0, or 1e-2 for AdamW).
    """
    from . import optim
    key = name.lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    cls_name, fixed, default_lr = OPTIMIZERS[key]
    kw = dict(fixed, lr=default_lr if lr is None else float(lr), **kwargs)
    if weight_decay is not None:
        kw["weight_decay"] = float(weight_decay)
    return getattr(optim, cls_name)(params, **kw)


# --- random search and cross-validation ---------------------------------------------------------------------
class LogUniform:
    """A number drawn log-uniformly from [low, high] (learning rates, weight decay)."""

    def __init__(self, low: float, high: float):
        if not 0 < low < high:
            raise ValueError(f"LogUniform: need 0 < low < high, got {low}, {high}")
        self.low, self.high = float(low), float(high)

    def sample(self, rng: random.Random) -> float:
        return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))

    def __repr__(self) -> str:
        return f"LogUniform({self.low:g}, {self.high:g})"


class Uniform:
    """A number drawn uniformly from [low, high]."""

    def __init__(self, low: float, high: float):
        if not low < high:
            raise ValueError(f"Uniform: need low < high, got {low}, {high}")
        self.low, self.high = float(low), float(high)

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)

    def __repr__(self) -> str:
        return f"Uniform({self.low:g}, {self.high:g})"


class Choice:
    """One of the given values, each equally likely (hidden widths, optimizer names)."""

    def __init__(self, values: Iterable):
        self.values = list(values)
        if not self.values:
            raise ValueError("Choice: needs at least one value")

    def sample(self, rng: random.Random):
        return self.values[rng.randrange(len(self.values))]

    def __repr__(self) -> str:
        return f"Choice({self.values!r})"


DEFAULT_SPACE = {"lr": LogUniform(1e-4, 1e-2), "weight_decay": LogUniform(1e-6, 1e-3),
                 "hidden": Choice([32, 64, 128, 256])}


def _sample(space: Mapping, rng: random.Random) -> dict:
    return {k: (v.sample(rng) if hasattr(v, "sample") else v) for k, v in space.items()}


def _build(build_model: Callable, config: dict) -> Module:
    """``build_model(config)``, or ``build_model()`` when it takes no argument."""
    try:
        params = inspect.signature(build_model).parameters.values()
        takes_arg = any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params)
    except (TypeError, ValueError):
        takes_arg = True
    model = build_model(config) if takes_arg else build_model()
    if not isinstance(model, Module):
        raise TypeError(f"build_model must return an nn.Module, got {type(model).__name__}")
    return model


def _train_and_score(build_model, config, train_set, val_set, *, epochs, batch_size, optimizer, loss_fn, device,
                     seed) -> History:
    """Build a model from ``config`` (seeded), train it on ``train_set``, validate on ``val_set``."""
    ag.manual_seed(seed)
    model = _build(build_model, config)
    if device is not None:
        model.to(device)
    opt = make_optimizer(config.get("optimizer", optimizer), model.parameters(), lr=config.get("lr"),
                         weight_decay=config.get("weight_decay"))
    train_loader = DataLoader(train_set, batch_size, shuffle=True, seed=seed)
    val_loader = DataLoader(val_set, max(batch_size, 256))
    return fit(model, opt, loss_fn if loss_fn is not None else CrossEntropyLoss(), train_loader, epochs,
               val_loader=val_loader, device=device, progress=False, verbose=False)


@dataclass
class SearchResult:
    """What :func:`random_search` found: the best configuration, its score, and every trial."""

    best_config: dict
    best_score: float
    best_index: int
    metric: str
    trials: list        # [{"config": {...}, "val_acc": ..., "val_loss": ..., "train_loss": ...}, ...]

    def __str__(self) -> str:
        keys = sorted({k for t in self.trials for k in t["config"]})
        head = " ".join(f"{k:>12}" for k in ["trial"] + keys + ["val_loss", "val_acc"])
        lines = [head]
        for i, t in enumerate(self.trials):
            vals = [f"{i:>12}"] + [f"{t['config'].get(k, ''):>12.4g}" if isinstance(t["config"].get(k), float)
                                   else f"{str(t['config'].get(k, '')):>12}" for k in keys]
            vals += [f"{_fmt(t['val_loss']):>12}", f"{_fmt(t['val_acc']):>12}"]
            lines.append(" ".join(vals) + ("  <- best" if i == self.best_index else ""))
        return "\n".join(lines)


def random_search(build_model: Callable[[dict], Module], dataset, *, space: Mapping | None = None,
                  n_trials: int = 10, epochs: int = 2, val_fraction: float = 0.2, val_dataset=None,
                  batch_size: int = 64, optimizer: str = "adam", loss_fn=None, metric: str = "val_acc",
                  device=None, seed: int = 0, verbose: bool = False) -> SearchResult:
    """Random hyper-parameter search, as the notes describe: sample, train briefly, keep the best on validation.

    Each trial draws a configuration from ``space`` (default :data:`DEFAULT_SPACE`: learning rate log-uniform in
    [1e-4, 1e-2], weight decay log-uniform in [1e-6, 1e-3], hidden width from {32, 64, 128, 256}), builds the
    model with ``build_model(config)``, trains it for ``epochs`` epochs with ``make_optimizer(optimizer,
    lr=config["lr"], weight_decay=config["weight_decay"])`` (a config key ``"optimizer"`` overrides the name) on
    the training part and scores it on the validation part.

    Args:
        build_model: ``config -> nn.Module`` (e.g. reads ``config["hidden"]``).
        dataset: the training data; ``val_fraction`` of it is held out (seeded split) unless ``val_dataset`` is
            given.
        metric: ``"val_acc"`` (higher is better) or ``"val_loss"`` (lower is better), of the last epoch.
        seed: seeds the sampling, the split, the model initialisation and the shuffling: the same seed gives the
            same trials and scores.

    Returns:
        A :class:`SearchResult`; ``print(result)`` shows a table of the trials.
    """
    if metric not in ("val_acc", "val_loss"):
        raise ValueError(f"random_search: metric must be 'val_acc' or 'val_loss', got {metric!r}")
    if n_trials < 1:
        raise ValueError(f"random_search: n_trials must be >= 1, got {n_trials}")
    space = DEFAULT_SPACE if space is None else space
    if val_dataset is None:
        train_set, val_set = random_split(dataset, [1 - val_fraction, val_fraction], seed=seed)
    else:
        train_set, val_set = dataset, val_dataset
    rng = random.Random(seed)
    trials = []
    for i in range(n_trials):
        config = _sample(space, rng)
        h = _train_and_score(build_model, config, train_set, val_set, epochs=epochs, batch_size=batch_size,
                             optimizer=optimizer, loss_fn=loss_fn, device=device, seed=seed + 1 + i)
        trials.append({"config": config, "val_acc": h.val_acc[-1], "val_loss": h.val_loss[-1],
                       "train_loss": h.train_loss[-1]})
        if verbose:
            print(f"trial {i}: {config} -> val_loss {_fmt(h.val_loss[-1])} val_acc {_fmt(h.val_acc[-1])}",
                  flush=True)
    sign = 1.0 if metric == "val_acc" else -1.0
    scores = [(sign * t[metric]) if t[metric] is not None and not math.isnan(t[metric]) else -math.inf
              for t in trials]
    best = max(range(n_trials), key=lambda j: scores[j])       # first of equals
    return SearchResult(dict(trials[best]["config"]), trials[best][metric], best, metric, trials)


@dataclass
class CVResult:
    """K-fold cross-validation scores: one validation accuracy (and loss) per fold, their mean and std."""

    scores: list
    losses: list
    mean: float
    std: float

    def __str__(self) -> str:
        folds = ", ".join(f"{s:.4f}" for s in self.scores)
        return f"{len(self.scores)}-fold validation accuracy {self.mean:.4f} ± {self.std:.4f} ({folds})"


def cross_validate(build_model: Callable, dataset, k: int = 5, *, config: Mapping | None = None, epochs: int = 2,
                   batch_size: int = 64, optimizer: str = "adam", loss_fn=None, device=None, seed: int = 0,
                   verbose: bool = False) -> CVResult:
    """K-fold cross-validation with :func:`nn.data.k_fold`: train a fresh model on K−1 folds, validate on the rest.

    Args:
        build_model: ``config -> nn.Module`` (or a function of no arguments).
        dataset: the data to split into ``k`` folds (seeded shuffle).
        config: hyper-parameters (``lr``, ``weight_decay``, ``optimizer``, anything ``build_model`` reads);
            default ``{}`` (the optimizer's default learning rate).
        seed: seeds the folds, the initialisations and the shuffling.

    Returns:
        A :class:`CVResult` with the per-fold validation accuracies, their mean and (population) std.
    """
    config = dict(config or {})
    scores, losses = [], []
    for i, (train_idx, val_idx) in enumerate(k_fold(dataset, k, shuffle=True, seed=seed)):
        h = _train_and_score(build_model, config, Subset(dataset, train_idx), Subset(dataset, val_idx),
                             epochs=epochs, batch_size=batch_size, optimizer=optimizer, loss_fn=loss_fn,
                             device=device, seed=seed + 1 + i)
        scores.append(h.val_acc[-1])
        losses.append(h.val_loss[-1])
        if verbose:
            print(f"fold {i + 1}/{k}: val_loss {_fmt(h.val_loss[-1])} val_acc {_fmt(h.val_acc[-1])}", flush=True)
    valid = [s for s in scores if s is not None]
    mean = sum(valid) / len(valid) if valid else math.nan
    std = math.sqrt(sum((s - mean) ** 2 for s in valid) / len(valid)) if valid else math.nan
    return CVResult(scores, losses, mean, std)
