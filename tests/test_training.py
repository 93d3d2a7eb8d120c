"""Training utilities (nn.training) and the main training job (xpgrad.train, xpgrad.torch_train).

Everything runs on tiny synthetic data through DataLoader; the main job reads a small IDX data set written by the
test into a temporary directory. No network, no wall-clock assertions.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

import autograd as ag
import nn
from nn.data import DataLoader, TensorDataset, write_idx
from nn.training import (Choice, EarlyStopping, History, LogUniform, OPTIMIZERS, cross_validate, evaluate, fit,
                         make_optimizer, plot_history, random_search)


def blobs(n=240, d=6, k=3, seed=0, spread=0.4):
    """``k`` well separated Gaussian clusters: float32 (n, d), int64 labels."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)) * 3
    y = rng.integers(0, k, n)
    x = centers[y] + spread * rng.standard_normal((n, d))
    return x.astype(np.float32), y.astype(np.int64)


def mlp(d=6, hidden=16, k=3, dropout=0.0):
    layers = [nn.Linear(d, hidden), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(hidden, k))


def weights(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


# --- fit ---------------------------------------------------------------------------------------------------
def test_fit_reduces_loss_and_fills_history():
    x, y = blobs()
    ds = TensorDataset(x, y)
    ag.manual_seed(0)
    model = mlp()
    opt = nn.optim.Adam(model.parameters(), lr=1e-2)
    sched = nn.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    h = fit(model, opt, nn.CrossEntropyLoss(), DataLoader(ds, 32, shuffle=True, seed=0), 5,
            val_loader=DataLoader(ds, 64), test_loader=DataLoader(ds, 100), scheduler=sched, progress=False)
    assert isinstance(h, History) and len(h) == 5
    assert h.epoch == [1, 2, 3, 4, 5]
    for name in History.METRICS:
        assert len(h[name]) == 5, name
    assert h.train_loss[-1] < 0.5 * h.train_loss[0]
    assert h.val_loss[-1] < h.val_loss[0]
    assert h.val_acc[-1] >= 0.95 and h.test_acc[-1] >= 0.95
    assert all(0.0 <= a <= 1.0 for a in h.train_acc)
    assert h.lr == pytest.approx([1e-2, 1e-2, 5e-3, 5e-3, 2.5e-3])
    assert all(t > 0 for t in h.time) and all(s > 0 for s in h.samples_per_s)
    assert all(tt <= t for tt, t in zip(h.train_time, h.time))
    assert h.best_epoch is None and not h.stopped_early
    d = h.to_dict()
    json.dumps(d)
    assert History.from_dict(d) == h


def test_fit_steps_reduce_lr_on_plateau_on_the_validation_loss():
    """fit hands ReduceLROnPlateau the epoch's validation loss (the training loss without a val_loader)."""
    x, y = blobs(n=64)
    ds = TensorDataset(x, y)
    for val in (DataLoader(ds, 64), None):
        ag.manual_seed(0)
        model = mlp()
        opt = nn.optim.SGD(model.parameters(), lr=1e-4)     # far from halving the loss per epoch: a plateau
        sched = nn.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.5)
        seen = []
        step = sched.step
        sched.step = lambda metric: (seen.append(metric), step(metric))[1]
        h = fit(model, opt, nn.CrossEntropyLoss(), DataLoader(ds, 16), 3, val_loader=val, scheduler=sched,
                progress=False)
        assert seen == pytest.approx(h.val_loss if val is not None else h.train_loss)
        assert h.lr == pytest.approx([1e-4, 1e-4, 5e-5])    # the lr an epoch trained with; cut after epoch 2


def test_fit_without_val_leaves_metrics_none_and_model_in_train_mode():
    x, y = blobs(n=64)
    ag.manual_seed(0)
    model = mlp()
    h = fit(model, nn.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(), DataLoader(TensorDataset(x, y), 16),
            2, progress=False)
    assert h.val_loss == [None, None] and h.val_acc == [None, None] and h.test_acc == [None, None]
    assert model.training


def test_fit_regression_has_no_accuracy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]])).astype(np.float32)
    ag.manual_seed(0)
    model = nn.Linear(3, 1)
    h = fit(model, nn.optim.SGD(model.parameters(), lr=0.1), nn.MSELoss(), DataLoader(TensorDataset(x, y), 16), 5,
            val_loader=DataLoader(TensorDataset(x, y), 64), progress=False)
    assert h.train_acc == [None] * 5 and h.val_acc == [None] * 5
    assert h.val_loss[-1] < 0.1 * h.val_loss[0]


def test_fit_casts_float64_inputs_to_the_model_dtype():
    x, y = blobs(n=64)
    ag.manual_seed(0)
    model = mlp()
    h = fit(model, nn.optim.Adam(model.parameters()), nn.CrossEntropyLoss(),
            DataLoader(TensorDataset(x.astype(np.float64), y), 16), 1, progress=False)
    assert math.isfinite(h.train_loss[0])
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_progress_bar_and_plain_fallback(monkeypatch, capsys):
    x, y = blobs(n=64)
    ag.manual_seed(0)
    model = mlp()
    opt = nn.optim.Adam(model.parameters())
    loader = DataLoader(TensorDataset(x, y), 16)
    monkeypatch.setattr("nn.training.loop._tqdm", lambda: None)      # as if tqdm were not installed
    fit(model, opt, nn.CrossEntropyLoss(), loader, 1, progress=True, log_every=2)
    out = capsys.readouterr()
    assert "epoch 1/1 [2/4]" in out.err and "samples/s" in out.err
    assert "epoch   1/1" in out.out                                 # the summary line (verbose follows progress)
    monkeypatch.undo()
    fit(model, opt, nn.CrossEntropyLoss(), loader, 1, progress=False)
    out = capsys.readouterr()
    assert out.err == "" and out.out == ""
    pytest.importorskip("tqdm")
    fit(model, opt, nn.CrossEntropyLoss(), loader, 1, progress=True, verbose=False)
    out = capsys.readouterr()
    assert "epoch 1/1" in out.err and out.out == ""


def test_fit_rejects_bad_arguments():
    x, y = blobs(n=32)
    model = mlp()
    opt = nn.optim.Adam(model.parameters())
    loader = DataLoader(TensorDataset(x, y), 16)
    with pytest.raises(ValueError, match="val_loader"):
        fit(model, opt, nn.CrossEntropyLoss(), loader, 1, early_stopping=2, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, opt, nn.CrossEntropyLoss(), loader, -1, progress=False)
    with pytest.raises(TypeError, match="pairs"):
        fit(model, opt, nn.CrossEntropyLoss(), DataLoader(x, 16), 1, progress=False)
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(0)
    with pytest.raises(ValueError, match="monitor"):
        EarlyStopping(2, monitor="train_loss")


# --- early stopping -------------------------------------------------------------------------------------------
def test_early_stopping_stops_and_restores_best_weights():
    x, y = blobs(n=120)
    rng = np.random.default_rng(1)
    y_val = (y + 1 + rng.integers(0, 2, len(y))) % 3                # validation labels that training gets wrong
    ag.manual_seed(0)
    model = mlp()
    opt = nn.optim.Adam(model.parameters(), lr=1e-2)
    seen = {}
    stopper = EarlyStopping(patience=2, monitor="val_loss")
    h = fit(model, opt, nn.CrossEntropyLoss(), DataLoader(TensorDataset(x, y), 16, shuffle=True, seed=0), 20,
            val_loader=DataLoader(TensorDataset(x, y_val), 64), early_stopping=stopper, progress=False,
            on_epoch_end=lambda epoch, rec: seen.__setitem__(epoch, weights(model)))
    assert h.stopped_early and stopper.stopped
    assert len(h) < 20
    best = int(np.argmin(h.val_loss)) + 1
    assert h.best_epoch == best == stopper.best_epoch
    assert len(h) == best + 2                                        # patience 2 after the best epoch
    final = weights(model)
    for k, v in seen[best].items():
        np.testing.assert_array_equal(final[k], v)
    assert not all(np.array_equal(final[k], seen[len(h)][k]) for k in final)


def test_early_stopping_on_accuracy_with_int_patience():
    x, y = blobs(n=120)
    ag.manual_seed(0)
    model = mlp()
    h = fit(model, nn.optim.Adam(model.parameters(), lr=1e-2), nn.CrossEntropyLoss(),
            DataLoader(TensorDataset(x, y), 16), 30, val_loader=DataLoader(TensorDataset(x, y), 64),
            early_stopping=EarlyStopping(patience=3, monitor="val_acc", min_delta=0.5), progress=False)
    # no epoch can beat the first by 0.5 accuracy: stops after 1 + 3 epochs, first epoch's weights restored
    assert len(h) == 4 and h.best_epoch == 1 and h.stopped_early


# --- checkpoints -----------------------------------------------------------------------------------------------
class Interrupt(Exception):
    pass


def _resume_setup(init_seed):
    x, y = blobs(n=96)
    ag.manual_seed(init_seed)
    model = mlp(dropout=0.2)                                         # dropout draws from the CPU generator
    opt = nn.optim.Adam(model.parameters(), lr=5e-3)
    sched = nn.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7)
    train = DataLoader(TensorDataset(x, y), 16, shuffle=True, seed=0)
    val = DataLoader(TensorDataset(x, y), 32)
    return model, opt, sched, train, val


def test_checkpoint_resume_matches_uninterrupted_run(tmp_path):
    model, opt, sched, train, val = _resume_setup(0)
    ref = fit(model, opt, nn.CrossEntropyLoss(), train, 4, val_loader=val, scheduler=sched,
              early_stopping=EarlyStopping(patience=10), checkpoint_dir=tmp_path / "a", progress=False)
    ref_w = weights(model)

    def stop_after_2(epoch, rec):
        if epoch == 2:
            raise Interrupt
    model, opt, sched, train, val = _resume_setup(0)
    with pytest.raises(Interrupt):
        fit(model, opt, nn.CrossEntropyLoss(), train, 4, val_loader=val, scheduler=sched,
            early_stopping=EarlyStopping(patience=10), checkpoint_dir=tmp_path / "b", progress=False,
            on_epoch_end=stop_after_2)
    assert (tmp_path / "b" / "checkpoint.npz").exists()
    # a new process: other initial weights, fresh optimizer, schedule and loader, the global generator moved on
    model, opt, sched, train, val = _resume_setup(123)
    ag.manual_seed(99)
    epochs_run = []
    h = fit(model, opt, nn.CrossEntropyLoss(), train, 4, val_loader=val, scheduler=sched,
            early_stopping=EarlyStopping(patience=10), checkpoint_dir=tmp_path / "b", progress=False,
            on_epoch_end=lambda e, r: epochs_run.append(e))
    assert epochs_run == [3, 4]
    strip = {k: v for k, v in ref.to_dict().items() if k not in ("time", "train_time", "samples_per_s")}
    assert {k: v for k, v in h.to_dict().items() if k in strip} == strip
    for k, v in weights(model).items():
        np.testing.assert_array_equal(v, ref_w[k])
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-3 * 0.7 ** 4)
    # resuming a finished run trains nothing and returns the saved history
    model, opt, sched, train, val = _resume_setup(5)
    h2 = fit(model, opt, nn.CrossEntropyLoss(), train, 4, val_loader=val, scheduler=sched,
             early_stopping=EarlyStopping(patience=10), checkpoint_dir=tmp_path / "b", progress=False,
             on_epoch_end=lambda e, r: pytest.fail("nothing should be trained"))
    assert h2.train_loss == h.train_loss
    for k, v in weights(model).items():
        np.testing.assert_array_equal(v, ref_w[k])


def test_resume_false_starts_afresh(tmp_path):
    model, opt, sched, train, val = _resume_setup(0)
    fit(model, opt, nn.CrossEntropyLoss(), train, 2, checkpoint_dir=tmp_path, progress=False)
    model, opt, sched, train, val = _resume_setup(0)
    h = fit(model, opt, nn.CrossEntropyLoss(), train, 2, checkpoint_dir=tmp_path, resume=False, progress=False)
    assert h.epoch == [1, 2]
    ckpt = nn.load(tmp_path / "checkpoint.npz")
    assert ckpt["epoch"] == 2 and ckpt["history"]["epoch"] == [1, 2]
    assert set(ckpt) >= {"model", "optimizer", "epoch", "history"}


def _state_snapshot(model, opt, sched):
    """Everything a failed resume must leave alone, as plain comparable values."""
    osd = opt.state_dict()
    state = {k: {n: (v.numpy().copy() if isinstance(v, ag.Tensor) else v) for n, v in st.items()}
             for k, st in osd["state"].items()}
    return weights(model), state, json.dumps(osd["param_groups"], sort_keys=True, default=str), \
        json.dumps(sched.state_dict(), sort_keys=True, default=str)


def _same_snapshot(a, b):
    wa, sa, ga, ca = a
    wb, sb, gb, cb = b
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].keys() == sb[k].keys()
        assert all(np.array_equal(sa[k][n], sb[k][n]) for n in sa[k])
    assert ga == gb and ca == cb


def _drop(key):
    def f(c):
        del c[key]
    return f


def _set(path, value):
    def f(c):
        d = c
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value(d[path[-1]]) if callable(value) else value
    return f


_BAD_RESUMES = {
    "no optimizer": (_drop("optimizer"), r"no 'optimizer' entry"),
    "no model": (_drop("model"), r"no 'model' entry"),
    "no epoch": (_drop("epoch"), r"no 'epoch' entry"),
    "optimizer state of a wrong shape": (_set(["optimizer", "state", 0, "exp_avg"], lambda t: ag.zeros(3, 3)),
                                         r"'optimizer' does not fit Adam.*exp_avg.*shape \(3, 3\)"),
    "optimizer of another kind": (_set(["optimizer", "state", 0], lambda st: {"momentum_buffer": st["exp_avg"]}),
                                  r"'optimizer' does not fit Adam.*lacks"),
    "optimizer without groups": (_set(["optimizer"], {"state": {}}), r"'optimizer' is not an optimizer state_dict"),
    "weight of a wrong shape": (_set(["model", "0.weight"], lambda t: ag.zeros(4, 6)),
                                r"'model\.0\.weight' has shape \(4, 6\), the model's \(16, 6\)"),
    "weight of integers": (_set(["model", "3.bias"], lambda t: np.zeros(3, np.int64)),
                           r"'model\.3\.bias' has dtype int64"),
    "missing weight": (lambda c: c["model"].pop("3.bias"), r"'model' lacks \['3\.bias'\]"),
    "scheduler of another kind": (_set(["scheduler"], {"T_max": 3, "last_epoch": 1}),
                                  r"'scheduler' does not match StepLR"),
    "scheduler with a bad value": (_set(["scheduler", "last_epoch"], "one"), r"'scheduler\.last_epoch' is 'one'"),
    "early stopping without wait": (lambda c: c["early_stopping"].pop("wait"), r"'early_stopping' lacks 'wait'"),
    "negative epoch": (_set(["epoch"], -1), r"'epoch' is -1"),
    "history of another length": (_set(["history", "train_loss"], lambda v: v + [0.5]), r"'history' has 1 epoch"),
    "bad generator state": (_set(["rng", "cpu"], {"bit_generator": "nonsense"}), r"'rng\.cpu' is not a valid"),
}


@pytest.mark.parametrize("case", sorted(_BAD_RESUMES))
def test_bad_checkpoint_is_refused_before_anything_is_loaded(tmp_path, case):
    mutate, match = _BAD_RESUMES[case]
    model, opt, sched, train, val = _resume_setup(0)
    fit(model, opt, nn.CrossEntropyLoss(), train, 1, val_loader=val, scheduler=sched,
        early_stopping=EarlyStopping(patience=3), checkpoint_dir=tmp_path, progress=False)
    path = tmp_path / "checkpoint.npz"
    ckpt = nn.load(path)
    mutate(ckpt)
    nn.save(ckpt, path)
    before_file = path.read_bytes()
    model, opt, sched, train, val = _resume_setup(7)
    fit(model, opt, nn.CrossEntropyLoss(), train, 1, progress=False)    # an optimizer with state of its own
    es = EarlyStopping(patience=3)
    before = _state_snapshot(model, opt, sched)
    with pytest.raises(nn.serialization.CheckpointError, match=match) as info:
        fit(model, opt, nn.CrossEntropyLoss(), train, 3, val_loader=val, scheduler=sched, early_stopping=es,
            checkpoint_dir=tmp_path, progress=False, on_epoch_end=lambda e, r: pytest.fail("trained"))
    assert "checkpoint.npz" in str(info.value) and "nothing was loaded" in str(info.value)
    _same_snapshot(before, _state_snapshot(model, opt, sched))
    assert es.best is None and es.wait == 0
    assert path.read_bytes() == before_file


def test_checkpoint_of_another_model_names_every_mismatch(tmp_path):
    model, opt, sched, train, val = _resume_setup(0)
    fit(model, opt, nn.CrossEntropyLoss(), train, 1, checkpoint_dir=tmp_path, progress=False)
    other = mlp(hidden=8, dropout=0.2)
    other_opt = nn.optim.Adam(other.parameters(), lr=5e-3)
    w = weights(other)
    with pytest.raises(nn.serialization.CheckpointError) as info:
        fit(other, other_opt, nn.CrossEntropyLoss(), train, 2, checkpoint_dir=tmp_path, progress=False)
    msg = str(info.value)
    for k in ("0.weight", "0.bias", "3.weight"):
        assert f"'model.{k}' has shape" in msg
    assert "'optimizer' does not fit Adam" in msg
    assert all(np.array_equal(v, w[k]) for k, v in weights(other).items())
    assert other_opt.state == {}


def test_resume_rolls_back_when_loading_fails_after_the_checks(tmp_path, monkeypatch):
    model, opt, sched, train, val = _resume_setup(0)
    fit(model, opt, nn.CrossEntropyLoss(), train, 1, scheduler=sched, checkpoint_dir=tmp_path, progress=False)
    model, opt, sched, train, val = _resume_setup(3)
    before = _state_snapshot(model, opt, sched)

    def broken(*a, **k):
        raise MemoryError("out of memory while copying")

    monkeypatch.setattr(model, "load_state_dict", broken)
    with pytest.raises(MemoryError):
        fit(model, opt, nn.CrossEntropyLoss(), train, 2, scheduler=sched, checkpoint_dir=tmp_path, progress=False)
    _same_snapshot(before, _state_snapshot(model, opt, sched))


# --- evaluate --------------------------------------------------------------------------------------------------
def test_evaluate_hand_made_case():
    model = nn.Linear(2, 2, bias=False)
    model.load_state_dict({"weight": np.eye(2, dtype=np.float32)})
    x = np.array([[1, 0], [0, 1], [1, 0], [0, 1], [2, 0]], np.float32)
    y = np.array([0, 1, 1, 1, 1])
    model.train()
    loss, acc = evaluate(model, DataLoader(TensorDataset(x, y), 2), nn.CrossEntropyLoss())   # batches 2, 2, 1
    assert acc == pytest.approx(3 / 5)
    logits = x.astype(np.float64)
    ce = np.log(np.exp(logits).sum(1)) - logits[np.arange(5), y]
    assert loss == pytest.approx(ce.mean(), rel=1e-6)
    assert model.training                                              # mode restored
    assert all(p.grad is None for p in model.parameters())            # nothing recorded
    assert evaluate(model, DataLoader(TensorDataset(x, y), 5)) == (None, pytest.approx(0.6))
    loss_sum, _ = evaluate(model, DataLoader(TensorDataset(x, y), 2), nn.CrossEntropyLoss(reduction="sum"))
    assert loss_sum == pytest.approx(ce.mean(), rel=1e-6)


def test_evaluate_binary_accuracy_with_logits():
    model = nn.Linear(1, 1, bias=False)
    model.load_state_dict({"weight": np.ones((1, 1), np.float32)})
    x = np.array([[-2.0], [-1.0], [1.0], [3.0]], np.float32)
    y = np.array([[0.0], [1.0], [1.0], [1.0]], np.float32)
    _, acc = evaluate(model, DataLoader(TensorDataset(x, y), 4), nn.BCEWithLogitsLoss())
    assert acc == pytest.approx(0.75)


# --- plots -----------------------------------------------------------------------------------------------------
def _history():
    h = History()
    for e in range(1, 4):
        h.append({"epoch": e, "train_loss": 1.0 / e, "train_acc": 0.5 + 0.1 * e, "val_loss": 1.1 / e,
                  "val_acc": 0.5 + 0.09 * e, "test_acc": 0.5 + 0.08 * e, "lr": 1e-3, "time": 1.0})
    return h


def test_plot_history_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = plot_history(_history(), tmp_path / "sub" / "curves.png", title="test")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(path) > 1000
    plot_history(_history().to_dict(), tmp_path / "dict.png")          # a saved dict works too
    assert (tmp_path / "dict.png").exists()


def test_plot_history_without_matplotlib_is_a_clear_error(monkeypatch, tmp_path):
    import sys
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot_history(_history(), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_history_append_rejects_unknown_metric():
    with pytest.raises(KeyError, match="accuracy"):
        History().append({"epoch": 1, "accuracy": 0.5})
    with pytest.raises(KeyError):
        History()["nope"]


# --- optimizers by name ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_make_optimizer_every_name_trains(name):
    x, y = blobs(n=64)
    ag.manual_seed(0)
    model = mlp()
    opt = make_optimizer(name, model.parameters(), weight_decay=1e-4)
    assert opt.param_groups[0]["lr"] == OPTIMIZERS[name][2]
    h = fit(model, opt, nn.CrossEntropyLoss(), DataLoader(TensorDataset(x, y), 16, shuffle=True, seed=0), 3,
            progress=False)
    assert h.train_loss[-1] < h.train_loss[0]
    if name == "nesterov":
        assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9


def test_make_optimizer_unknown_name():
    with pytest.raises(ValueError, match="adam"):
        make_optimizer("lbfgs", mlp().parameters())


# --- hyper-parameter search and cross-validation --------------------------------------------------------------
def _builder(config):
    return mlp(hidden=config["hidden"])


def test_random_search_returns_best_trial_and_is_reproducible():
    x, y = blobs(n=160, spread=1.5)
    ds = TensorDataset(x, y)
    space = {"lr": LogUniform(1e-4, 3e-2), "weight_decay": LogUniform(1e-6, 1e-3), "hidden": Choice([4, 16, 32])}
    res = random_search(_builder, ds, space=space, n_trials=4, epochs=2, batch_size=32, seed=3)
    assert len(res.trials) == 4
    accs = [t["val_acc"] for t in res.trials]
    assert res.best_score == max(accs) and res.best_index == accs.index(max(accs))
    assert res.best_config == res.trials[res.best_index]["config"]
    for t in res.trials:
        c = t["config"]
        assert 1e-4 <= c["lr"] <= 3e-2 and 1e-6 <= c["weight_decay"] <= 1e-3 and c["hidden"] in (4, 16, 32)
    assert len({t["config"]["lr"] for t in res.trials}) == 4
    again = random_search(_builder, ds, space=space, n_trials=4, epochs=2, batch_size=32, seed=3)
    assert again.trials == res.trials
    other = random_search(_builder, ds, space=space, n_trials=4, epochs=2, batch_size=32, seed=4)
    assert other.trials != res.trials
    assert "<- best" in str(res)
    by_loss = random_search(_builder, ds, space=space, n_trials=4, epochs=2, batch_size=32, seed=3, metric="val_loss")
    assert by_loss.best_score == min(t["val_loss"] for t in by_loss.trials)


def test_random_search_with_explicit_validation_set_and_default_space():
    x, y = blobs(n=96)
    xv, yv = blobs(n=48, seed=0)
    res = random_search(_builder, TensorDataset(x, y), val_dataset=TensorDataset(xv, yv), n_trials=2, epochs=1,
                        seed=0)
    assert set(res.best_config) == {"lr", "weight_decay", "hidden"}


def test_cross_validate_returns_k_scores():
    x, y = blobs(n=90)
    ds = TensorDataset(x, y)
    cv = cross_validate(lambda: mlp(), ds, k=3, config={"lr": 1e-2}, epochs=2, batch_size=16, seed=0)
    assert len(cv.scores) == 3 and len(cv.losses) == 3
    assert all(0.0 <= s <= 1.0 for s in cv.scores)
    assert cv.mean == pytest.approx(np.mean(cv.scores)) and cv.std == pytest.approx(np.std(cv.scores))
    assert cv.mean > 0.9
    again = cross_validate(lambda: mlp(), ds, k=3, config={"lr": 1e-2}, epochs=2, batch_size=16, seed=0)
    assert again.scores == cv.scores
    assert "3-fold" in str(cv)


# --- the main job --------------------------------------------------------------------------------------------
def write_tiny_dataset(root, n_train=300, n_test=100, name="fashion-mnist"):
    """Fake Fashion-MNIST IDX files: class c has a bright square at a class-specific place (learnable)."""
    rng = np.random.default_rng(0)
    folder = root / name
    folder.mkdir(parents=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            r, col = 2 + (c // 5) * 12, 2 + (c % 5) * 5
            images[i, r:r + 8, col:col + 4] = 250
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("idx"))


@pytest.mark.parametrize("model", ["mlp", "cnn", "rnn"])
def test_main_job_end_to_end(model, tiny_root, tmp_path, capsys):
    pytest.importorskip("nn.models")
    from xpgrad import train
    out = tmp_path / "run"
    metrics = train.main(["--model", model, "--limit", "256", "--epochs", "1", "--data-root", str(tiny_root),
                          "--out", str(out), "--no-download", "--progress", "off"])
    printed = capsys.readouterr().out
    assert "final test accuracy" in printed and "samples/s" in printed
    assert (out / "metrics.json").exists() and (out / "checkpoint.npz").exists() and (out / "model.npz").exists()
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["model"] == model and saved["n_train"] == 256 and saved["n_test"] == 100
    assert saved["history"]["epoch"] == [1] and 0.0 <= saved["final_test_acc"] <= 1.0
    assert saved["final_test_acc"] == metrics["final_test_acc"]
    if model == "mlp":
        assert saved["final_test_acc"] > 0.3                              # the squares are easy to find
    try:
        import matplotlib  # noqa: F401
        assert (out / "curves.png").exists()
    except ImportError:
        pass
    ckpt = nn.load(out / "model.npz")
    fresh = train.build_model(model)
    fresh.load_state_dict(ckpt["model"])


def test_main_job_resume_and_validation_split(tiny_root, tmp_path, capsys):
    pytest.importorskip("nn.models")
    from xpgrad import train
    out = tmp_path / "run"
    common = ["--model", "mlp", "--limit", "200", "--data-root", str(tiny_root), "--out", str(out), "--no-download",
              "--progress", "off", "--val-fraction", "0.25", "--optimizer", "nesterov", "--schedule", "cosine"]
    train.main(common + ["--epochs", "1"])
    m = train.main(common + ["--epochs", "2", "--resume"])
    assert m["history"]["epoch"] == [1, 2] and m["n_train"] == 150
    assert m["history"]["val_acc"][0] is not None
    assert m["lr"] == OPTIMIZERS["nesterov"][2]
    with pytest.raises(SystemExit):
        train.main(common[:-4] + ["--patience", "2", "--val-fraction", "0"])


def test_main_job_missing_data_is_a_clear_error(tmp_path):
    from xpgrad import train
    from nn.data import DatasetNotFoundError
    with pytest.raises(DatasetNotFoundError, match="dataset-fashion-mnist|XPGRAD_DATA"):
        train.load_arrays("mnist", "train", root=tmp_path, download=False)


def test_load_arrays_scales_to_symmetric_range(tiny_root):
    from xpgrad import train
    x, y = train.load_arrays("fashion-mnist", "test", root=tiny_root, limit=10, download=False)
    assert x.dtype == np.float32 and x.shape == (10, 28, 28) and y.dtype == np.int64
    raw = nn.data.datasets.load("fashion-mnist", "test", root=tiny_root, download=False).images[:10]
    np.testing.assert_allclose(x, raw / 255 * 2 - 1, atol=1e-6)
    assert train.layout("mlp", x).shape == (10, 784) and train.layout("cnn", x).shape == (10, 1, 28, 28)
    assert train.layout("gru", x).shape == (10, 28, 28)
    big = train.resize(224)(train.layout("cnn", x))
    assert big.shape == (10, 1, 224, 224)
    np.testing.assert_array_equal(big[:, :, ::8, ::8], train.layout("cnn", x))


def test_torch_twin_matches_xpgrad_run(tiny_root, tmp_path, capsys):
    """Same data, batch order and initial weights: PyTorch's first-epoch loss equals xpgrad's."""
    pytest.importorskip("torch")
    pytest.importorskip("nn.models")
    from xpgrad import torch_train, train
    args = ["--model", "mlp", "--limit", "128", "--epochs", "2", "--batch-size", "32", "--data-root",
            str(tiny_root), "--no-download"]
    tm = torch_train.main(args + ["--out", str(tmp_path / "t")])
    xm = train.main(args + ["--out", str(tmp_path / "x"), "--progress", "off"])
    assert (tmp_path / "t" / "torch_metrics.json").exists()
    for a, b in zip(tm["history"], xm["history"]["train_loss"]):
        assert a["train_loss"] == pytest.approx(b, rel=1e-4)
    assert tm["final_test_acc"] == pytest.approx(xm["final_test_acc"], abs=0.011)


# --- per-step curves and gradient audits in fit -----------------------------------------------------------------
def test_one_epoch_run_records_per_step_losses_and_plots_a_curve(tmp_path, monkeypatch):
    x, y = blobs(n=96)
    ag.manual_seed(0)
    model = mlp()
    h = fit(model, nn.optim.Adam(model.parameters(), lr=1e-2), nn.CrossEntropyLoss(),
            DataLoader(TensorDataset(x, y), 16, shuffle=True, seed=0), 1, progress=False)
    assert len(h.step_loss) == 6 and h.step_epoch == pytest.approx([i / 6 for i in range(1, 7)])
    assert np.mean(h.step_loss) == pytest.approx(h.train_loss[0], rel=1e-5)     # equal batches: same mean
    from nn.training import _smooth
    assert _smooth([1.0, 3.0, 5.0, 7.0], points=2) == [1.0, 2.0, 4.0, 6.0]
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes
    lines = []
    real_plot = Axes.plot
    monkeypatch.setattr(Axes, "plot", lambda self, *a, **k: lines.append((len(a[0]), k.get("label"))) or
                        real_plot(self, *a, **k))
    plot_history(h, tmp_path / "c.png")
    assert (6, "train (per step, smoothed)") in lines


def test_fit_audits_the_gradient_every_n_steps():
    x, y = blobs(n=64)
    ag.manual_seed(0)
    model = mlp(dropout=0.2)
    h = fit(model, nn.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(),
            DataLoader(TensorDataset(x, y), 16, shuffle=True, seed=0), 2, progress=False, audit_every=3)
    assert [a["step"] for a in h.audits] == [3, 6] and all(a["ok"] for a in h.audits)
    assert len(h.step_loss) == 8


# --- fit composed of callbacks (issue 24, part 5): the same results as the monolithic loop -------------------------
def _seeded_blobs48():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 6)) * 3
    y = rng.integers(0, 3, 48)
    x = (centers[y] + 1.5 * rng.standard_normal((48, 6))).astype(np.float32)
    return TensorDataset(x, y.astype(np.int64))


def _plain_loop(ds, epochs: int):
    """What fit does, written out as the textbook loop: per epoch (the sampler told the epoch) zero_grad,
    forward, loss, backward and step on every batch, then the validation loss, then ReduceLROnPlateau on it."""
    ag.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = nn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = nn.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.3)
    loader, loss_fn = DataLoader(ds, 16, shuffle=True, seed=1), nn.CrossEntropyLoss()
    out = {"train_loss": [], "train_acc": [], "val_loss": [], "val_acc": [], "lr": [], "step_loss": []}
    for epoch in range(1, epochs + 1):
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        out["lr"].append(opt.param_groups[0]["lr"])
        total = correct = n = 0
        model.train()
        for x, y in loader:
            opt.zero_grad()
            scores = model(x)
            loss = loss_fn(scores, y)
            loss.backward()
            opt.step()
            out["step_loss"].append(loss.item())
            total += loss.item() * len(y)
            correct += int((scores.argmax(1) == y).sum().item())
            n += len(y)
        out["train_loss"].append(total / n)
        out["train_acc"].append(correct / n)
        val_loss, val_acc = evaluate(model, DataLoader(ds, 32), loss_fn)
        out["val_loss"].append(val_loss)
        out["val_acc"].append(val_acc)
        sched.step(val_loss)
    return model, out


def test_fit_with_its_default_callbacks_is_the_plain_training_loop(tmp_path):
    """fit with every callback on (scheduler, early stopping, checkpoints, audits, divergence checks) trains
    exactly as the loop written out by hand; the callbacks only observe (audits use a float64 copy)."""
    ds = _seeded_blobs48()
    ref_model, ref = _plain_loop(ds, 8)
    ag.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = nn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = nn.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0, threshold=0.3)
    h = fit(model, opt, nn.CrossEntropyLoss(), DataLoader(ds, 16, shuffle=True, seed=1), 8,
            val_loader=DataLoader(ds, 32), test_loader=DataLoader(ds, 48), scheduler=sched,
            early_stopping=EarlyStopping(patience=2), checkpoint_dir=tmp_path, audit_every=4, progress=False)
    assert h.epoch == list(range(1, 9)) and (h.best_epoch, h.stopped_early) == (8, False)
    assert h.step_loss == ref["step_loss"] and h.lr == ref["lr"]
    for name in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert getattr(h, name) == pytest.approx(ref[name], rel=1e-12), name
    assert h.test_loss == pytest.approx(h.val_loss, rel=1e-6) and h.test_acc == h.val_acc   # the same samples
    assert len(set(h.lr)) > 1                                                             # the plateau was hit
    assert h.step_epoch == [e + (i + 1) / 3 for e in range(8) for i in range(3)]
    assert [(a["step"], a["ok"]) for a in h.audits] == [(4 * i, True) for i in range(1, 7)]
    for (k, a), b in zip(model.state_dict().items(), ref_model.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    assert History.from_dict(nn.load(str(tmp_path / "checkpoint.npz"))["history"]) == h


def test_fit_early_stopping_messages_and_callbacks_in_order(capsys):
    """The summary lines, then the early-stopping message, the on_epoch_end calls in order, and the weights of
    the best epoch restored."""
    import re
    ds = _seeded_blobs48()
    ag.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = nn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    seen, weights = [], {}

    def on_epoch_end(epoch, rec):
        seen.append((epoch, rec["val_acc"]))
        weights[epoch] = {k: v.numpy().copy() for k, v in model.state_dict().items()}

    h = fit(model, opt, nn.CrossEntropyLoss(), DataLoader(ds, 16, shuffle=True, seed=1), 8,
            val_loader=DataLoader(ds, 32), early_stopping=EarlyStopping(patience=1, monitor="val_acc"),
            progress=False, verbose=True, on_epoch_end=on_epoch_end)
    out = capsys.readouterr()
    n = len(h)
    assert h.stopped_early and n < 8 and h.val_acc[n - 1] <= h.val_acc[h.best_epoch - 1]
    lines = [f"epoch {e:>3}/8  loss {h.train_loss[e - 1]:.4f}  acc {h.train_acc[e - 1]:.4f}  val_loss "
             f"{h.val_loss[e - 1]:.4f}  val_acc {h.val_acc[e - 1]:.4f}  test_acc -  T\n" for e in range(1, n + 1)]
    stop = f"early stopping after epoch {n}: best val_acc {h.val_acc[h.best_epoch - 1]:.4f} at epoch {h.best_epoch}\n"
    assert re.sub(r"\S+s  \S+ samples/s", "T", out.out) == "".join(lines) + stop
    assert out.err == ""
    assert seen == [(e, h.val_acc[e - 1]) for e in range(1, n + 1)]
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), weights[h.best_epoch][k], err_msg=k)