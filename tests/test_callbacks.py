"""The training loop in pieces (issue 24, part 5): callbacks (nn.training.callbacks) around the loop core
(nn.training.run_fit), each testable alone and replaceable in fit(..., callbacks=[...])."""
from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest

import autograd as ag
import nn
from autograd import Tensor
from nn.data import DataLoader, TensorDataset
from nn.training import (CHECKPOINT_NAME, Callback, Checkpointer, DivergenceError, DivergenceGuard, EarlyStopper,
                         EarlyStopping, GradientAuditor, History, OnEpochEnd, Progress, Run, SchedulerStep, fit,
                         run_fit, train_epoch)
from nn.training.callbacks import HOOKS, hooks, merge
from nn.training.loop import default_callbacks

pytestmark = pytest.mark.filterwarnings("ignore:(overflow|invalid value) encountered:RuntimeWarning")  # NumPy's

N, BATCH = 48, 16                    # 3 steps per epoch


def data(seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((3, 6)) * 3
    y = rng.integers(0, 3, N)
    x = (centers[y] + 0.5 * rng.standard_normal((N, 6))).astype(np.float32)
    return TensorDataset(x, y.astype(np.int64))


def mlp():
    ag.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def setup(lr=0.05):
    model = mlp()
    return model, nn.optim.SGD(model.parameters(), lr=lr), nn.CrossEntropyLoss(), DataLoader(data(), BATCH)


class Recorder(Callback):
    """Records every hook call (name and the arguments that identify it)."""

    def __init__(self):
        self.calls = []

    def on_fit_start(self, run):
        self.calls.append(("fit_start", run.start_epoch, len(run.history)))

    def on_epoch_start(self, run, epoch):
        self.calls.append(("epoch_start", epoch, run.epoch))

    def on_step_end(self, run, step, x, y, loss):
        assert isinstance(x, Tensor) and isinstance(y, Tensor) and isinstance(loss, Tensor)
        assert x.shape == (BATCH, 6) and y.shape == (BATCH,) and loss.ndim == 0
        self.calls.append(("step_end", run.epoch, step))

    def on_train_epoch_end(self, run, epoch, train):
        assert set(train) == {"loss", "acc", "samples", "time", "step_loss"} and len(train["step_loss"]) == 3
        assert len(run.history) == epoch - 1                    # this epoch's record is not in yet
        self.calls.append(("train_epoch_end", epoch, train["samples"]))

    def on_epoch_end(self, run, epoch, record):
        assert run.history.record() == {k: record.get(k) for k in History.METRICS}
        assert (record.get("val_loss") is not None) == ("val_loader" in run.loaders)
        self.calls.append(("epoch_end", epoch, len(run.history)))

    def on_fit_end(self, run):
        self.calls.append(("fit_end", run.epoch, len(run.history)))

    def on_exception(self, run, error):
        self.calls.append(("exception", type(error).__name__))


# --- the hooks ------------------------------------------------------------------------------------------------
def test_a_custom_callback_sees_the_hooks_in_order_with_their_arguments():
    model, opt, loss_fn, loader = setup()
    rec = Recorder()
    h = fit(model, opt, loss_fn, loader, 2, val_loader=DataLoader(data(), 48), progress=False, callbacks=[rec])
    epoch = lambda e: ([("epoch_start", e, e)] + [("step_end", e, s) for s in (1, 2, 3)]
                       + [("train_epoch_end", e, N), ("epoch_end", e, e)])
    assert rec.calls == [("fit_start", 0, 0)] + epoch(1) + epoch(2) + [("fit_end", 2, 2)]
    assert len(h) == 2
    assert set(HOOKS) == {name for name in vars(Callback) if name.startswith("on_")}


def test_a_callback_that_stops_training():
    class StopAfter(Callback):
        def on_epoch_end(self, run, epoch, record):
            if epoch == 2:
                run.stop_training = True

    model, opt, loss_fn, loader = setup()
    rec = Recorder()
    h = fit(model, opt, loss_fn, loader, 5, val_loader=DataLoader(data(), 48), progress=False,
            callbacks=[StopAfter(), rec])
    assert h.epoch == [1, 2] and not h.stopped_early
    assert rec.calls[-1] == ("fit_end", 2, 2)


def test_on_exception_is_told_and_the_error_propagates():
    class Boom(Callback):
        def on_epoch_end(self, run, epoch, record):
            raise KeyError("boom")

    model, opt, loss_fn, loader = setup()
    rec = Recorder()
    with pytest.raises(KeyError, match="boom"):
        fit(model, opt, loss_fn, loader, 3, val_loader=DataLoader(data(), 48), progress=False,
            callbacks=[rec, Boom()])
    assert rec.calls[-2:] == [("epoch_end", 1, 1), ("exception", "KeyError")]


def test_only_callbacks_that_define_a_hook_are_called_for_it():
    class Steps(Callback):
        def on_step_end(self, run, step, x, y, loss):
            pass

    plain, steps = Callback(), Steps()
    assert hooks([plain, steps, Recorder()], "on_step_end")[0].__self__ is steps
    assert len(hooks([plain, steps], "on_step_end")) == 1 and hooks([plain], "on_epoch_end") == []


def test_train_epoch_calls_step_hooks_with_a_bare_run_and_running_metrics():
    class Running(Callback):
        def __init__(self):
            self.seen = []

        def on_step_end(self, run, step, x, y, loss):
            self.seen.append((step, run.running()))

    model, opt, loss_fn, loader = setup()
    cb = Running()
    tr = train_epoch(model, opt, loss_fn, loader, callbacks=[cb])
    assert [s for s, _ in cb.seen] == [1, 2, 3]
    assert set(cb.seen[-1][1]) == {"loss", "acc", "samples/s"}
    assert float(cb.seen[-1][1]["loss"]) == pytest.approx(tr["loss"], abs=1e-4)


# --- fit's defaults, and replacing them ---------------------------------------------------------------------------
def test_default_callbacks_follow_fits_arguments():
    opt = nn.optim.SGD(mlp().parameters(), lr=0.1)
    sched = nn.optim.lr_scheduler.StepLR(opt, step_size=1)
    cbs = default_callbacks(scheduler=sched, early_stopping=EarlyStopping(), checkpoint_dir="x",
                            on_epoch_end=print, audit_every=2)
    assert [type(c) for c in cbs] == [GradientAuditor, SchedulerStep, EarlyStopper, Checkpointer, Progress,
                                      DivergenceGuard, OnEpochEnd]
    assert [type(c) for c in default_callbacks()] == [Progress, DivergenceGuard]
    mine, extra = Progress(bar=False), Recorder()
    merged = merge(default_callbacks(), [extra, mine])
    assert merged[0] is mine and merged[2] is extra and len(merged) == 3


def test_a_silent_progress_replaces_the_default_one(capsys):
    class Quiet(Progress):
        def __init__(self):
            super().__init__(bar=False, summary=True)
            self.lines = []

        def write(self, line):
            self.lines.append(line)

    model, opt, loss_fn, loader = setup()
    quiet = Quiet()
    h = fit(model, opt, loss_fn, loader, 2, progress=True, callbacks=[quiet])
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert len(quiet.lines) == 2 and quiet.lines[0].startswith("epoch   1/2  loss ")
    assert f"loss {h.train_loss[1]:.4f}" in quiet.lines[1]


def test_default_callbacks_reproduce_fit_with_run_fit():
    """fit == run_fit(default_callbacks(...)) on a seeded run."""
    results = []
    for how in ("fit", "run_fit"):
        model, opt, loss_fn, loader = setup()
        sched = nn.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        es = EarlyStopping(patience=2)
        val = DataLoader(data(), 48)
        if how == "fit":
            h = fit(model, opt, loss_fn, loader, 4, val_loader=val, scheduler=sched, early_stopping=es,
                    progress=False)
        else:
            h = run_fit(model, opt, loss_fn, loader, 4, val,
                        callbacks=default_callbacks(scheduler=sched, early_stopping=es, progress=False))
        results.append(({k: h[k] for k in ("train_loss", "val_loss", "lr")}, h.step_loss, h.best_epoch))
    assert results[0] == results[1]


# --- each callback alone ---------------------------------------------------------------------------------------
def test_scheduler_step_alone():
    model, opt, loss_fn, loader = setup()
    sched = nn.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    h = run_fit(model, opt, loss_fn, loader, 3, callbacks=[SchedulerStep(sched)])
    assert h.lr == pytest.approx([0.05, 0.025, 0.0125])
    plateau = nn.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    seen = []
    step = plateau.step
    plateau.step = lambda metric: (seen.append(metric), step(metric))[1]
    h = run_fit(model, opt, loss_fn, loader, 2, callbacks=[SchedulerStep(plateau)])
    assert seen == h.train_loss                                  # no val_loader: the training loss


def test_early_stopper_alone_stops_announces_and_restores(capsys):
    model, opt, loss_fn, loader = setup()
    es = EarlyStopper(EarlyStopping(patience=1, monitor="val_acc"), verbose=True)
    h = run_fit(model, opt, loss_fn, loader, 10, DataLoader(data(), 48), callbacks=[es])
    assert h.stopped_early and len(h) < 10 and h.best_epoch == es.early_stopping.best_epoch
    assert capsys.readouterr().out == (f"early stopping after epoch {len(h)}: best val_acc "
                                       f"{es.early_stopping.best:.4f} at epoch {h.best_epoch}\n")
    # already stopped: no further epoch
    assert len(run_fit(model, opt, loss_fn, loader, 10, DataLoader(data(), 48), callbacks=[es])) == 0
    assert EarlyStopper(3).early_stopping.patience == 3


def test_checkpointer_alone_writes_and_resumes(tmp_path, capsys):
    model, opt, loss_fn, loader = setup()
    h = run_fit(model, opt, loss_fn, loader, 2, callbacks=[Checkpointer(tmp_path)])
    assert os.path.exists(tmp_path / CHECKPOINT_NAME)
    model2, opt2, _, _ = setup()
    rec = Recorder()
    h2 = run_fit(model2, opt2, loss_fn, loader, 3, callbacks=[Checkpointer(tmp_path, verbose=True), rec])
    assert h2.epoch == [1, 2, 3] and h2.train_loss[:2] == h.train_loss
    assert rec.calls[0] == ("fit_start", 2, 2)
    assert "fit: resuming from" in capsys.readouterr().err


def test_gradient_auditor_alone_records_audits():
    model, opt, loss_fn, loader = setup()
    h = run_fit(model, opt, loss_fn, loader, 2, callbacks=[GradientAuditor(2)])
    assert [a["step"] for a in h.audits] == [2, 4, 6] and all(a["ok"] for a in h.audits)


def test_divergence_guard_alone_stops_or_warns_from_fits_caller():
    model, opt, loss_fn, loader = setup(lr=1e30)
    with pytest.raises(DivergenceError) as e:
        run_fit(model, opt, loss_fn, loader, 3, callbacks=[DivergenceGuard()])
    assert e.value.history is not None and len(e.value.history) == e.value.epoch - 1
    model, opt, loss_fn, loader = setup(lr=1e30)
    h = run_fit(model, opt, loss_fn, loader, 2)                 # no guard: nothing checks
    assert len(h) == 2 and not math.isfinite(h.train_loss[-1])
    model, opt, loss_fn, loader = setup(lr=1e30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(model, opt, loss_fn, loader, 2, progress=False, on_nan="continue")
    mine = [w for w in caught if "training diverged" in str(w.message)]
    assert len(mine) == 1 and mine[0].filename == __file__      # attributed to fit's caller, as before
    with pytest.raises(ValueError, match="on_nan must be"):
        DivergenceGuard("ignore")


def test_progress_alone_plain_lines_and_summary(capsys):
    model, opt, loss_fn, loader = setup()
    run_fit(model, opt, loss_fn, loader, 1, callbacks=[Progress(log_every=1, tqdm=lambda: None)])
    out = capsys.readouterr()
    assert [line.split("  ")[0] for line in out.err.splitlines()] == ["epoch 1/1 [1/3]", "epoch 1/1 [2/3]",
                                                                      "epoch 1/1 [3/3]"]
    assert out.out.startswith("epoch   1/1  loss ")


def test_on_epoch_end_alone():
    model, opt, loss_fn, loader = setup()
    seen = []
    run_fit(model, opt, loss_fn, loader, 2, callbacks=[OnEpochEnd(lambda e, r: seen.append((e, r["epoch"])))])
    assert seen == [(1, 1), (2, 2)]


def test_run_holds_the_run():
    model, opt, loss_fn, loader = setup()
    run = Run(model, opt, loss_fn, {"train_loader": loader}, 3, None)
    assert run.main and run.train_loader is loader and not run.stop_training and len(run.history) == 0
