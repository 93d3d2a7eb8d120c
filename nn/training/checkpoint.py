"""Checkpoints of a :func:`~nn.training.fit` run: writing one after each epoch, and resuming from one.

A checkpoint (``checkpoint.npz`` via ``nn.save``) holds the model, optimizer, scheduler and early-stopping
state, the history, the epoch and the random generators' states. Resuming checks all of it against the run
before changing anything (as ``Module.load_state_dict`` does for one module).
"""
from __future__ import annotations

import copy
import os
from typing import Mapping

import backends
from autograd import Tensor

from ..module import Module
from ..serialization import CheckpointError, load, save
from .history import History

__all__ = ["CHECKPOINT_NAME", "CheckpointError"]

CHECKPOINT_NAME = "checkpoint.npz"


def _generators(loaders) -> dict:
    """The random generators a run depends on: the CPU backend's and each loader's own (by role)."""
    gens = {"cpu": backends.cpu.rng}
    for role, loader in loaders.items():
        rng = getattr(loader, "_rng", None)       # a DataLoader built with seed=... owns a generator
        if rng is not None:
            gens[role] = rng
    for be in backends.cuda_backends():   # CuPy generators: saved when their state is readable
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
        arr = v.array if isinstance(v, Tensor) else v
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


def _resume(path: str, model: Module, optimizer, scheduler, early_stopping, loaders, device) -> tuple[History, int]:
    """Load the checkpoint at ``path`` into the run (arrays onto ``device``, the model's), all or nothing;
    returns (history, last epoch)."""
    ckpt = load(path, device=device)
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


def _save_checkpoint(path: str, model: Module, optimizer, scheduler, early_stopping, history: History, epoch: int,
                     loaders) -> None:
    """Write the run's state after epoch ``epoch`` to ``path`` (what :func:`_resume` reads back)."""
    save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
          "scheduler": None if scheduler is None else scheduler.state_dict(),
          "early_stopping": None if early_stopping is None else early_stopping.state_dict(),
          "history": history.to_dict(), "rng": _rng_state(loaders)}, path)
