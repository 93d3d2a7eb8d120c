"""Hyper-parameter search and model assessment: random search over a space of configurations, and K-fold
cross-validation."""
from __future__ import annotations

import inspect
import math
import random
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import autograd as ag

from ..data import DataLoader, Subset, k_fold, random_split
from ..losses import CrossEntropyLoss
from ..module import Module
from .history import History
from .loop import _fmt, fit
from .optimizers import make_optimizer

__all__ = ["LogUniform", "Uniform", "Choice", "DEFAULT_SPACE", "random_search", "SearchResult", "cross_validate",
           "CVResult"]


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
    # on_nan="continue": a diverged trial (fit warns) scores NaN, the worst, instead of ending the search
    return fit(model, opt, loss_fn if loss_fn is not None else CrossEntropyLoss(), train_loader, epochs,
               val_loader=val_loader, device=device, progress=False, verbose=False, on_nan="continue")


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
    """Random hyper-parameter search: sample a configuration, train briefly, keep the best on validation.

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
