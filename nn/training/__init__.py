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

One module per job, each importing only those above it (no cycles):

    history       History, EarlyStopping                   the state of a run
    optimizers    OPTIMIZERS, make_optimizer               optimizers by name
    divergence    DivergenceError, finiteness checks       a run whose loss or weights are NaN/inf
    checkpoint    CHECKPOINT_NAME, writing, resuming       (history)
    callbacks     Callback, Run, Progress, Checkpointer,   the parts of a fit run, one per concern
                  GradientAuditor, DivergenceGuard,        (history, checkpoint, divergence)
                  EarlyStopper, SchedulerStep, OnEpochEnd
    loop          train_epoch, evaluate, fit, run_fit      (history, callbacks, divergence)
    plots         plot_history                             (history)
    search        random_search, cross_validate, spaces    (loop, optimizers)

``tqdm`` (progress bars) and ``matplotlib`` (plots) are optional (extra ``bench``): without tqdm the progress
is printed as plain lines.
"""
from __future__ import annotations

from .callbacks import (Callback, Checkpointer, DivergenceGuard, EarlyStopper, GradientAuditor, OnEpochEnd, Progress,
                        Run, SchedulerStep)
from .checkpoint import CHECKPOINT_NAME, CheckpointError
from .divergence import DivergenceError
from .history import EarlyStopping, History
from .loop import evaluate, fit, run_fit, train_epoch
from .optimizers import OPTIMIZERS, make_optimizer
from .plots import _smooth, plot_history  # noqa: F401  (_smooth: tested directly)
from .search import DEFAULT_SPACE, Choice, CVResult, LogUniform, SearchResult, Uniform, cross_validate, random_search

__all__ = ["History", "EarlyStopping", "fit", "evaluate", "train_epoch", "plot_history", "make_optimizer",
           "OPTIMIZERS", "LogUniform", "Uniform", "Choice", "DEFAULT_SPACE", "random_search", "SearchResult",
           "cross_validate", "CVResult", "CHECKPOINT_NAME", "CheckpointError",
           "DivergenceError", "run_fit", "Callback", "Run", "Progress", "Checkpointer", "GradientAuditor",
           "DivergenceGuard", "EarlyStopper", "SchedulerStep", "OnEpochEnd"]
