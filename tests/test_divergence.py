"""Divergence handling (issue 22): a NaN/inf training loss or weight stops fit with DivergenceError, the last
good checkpoint stays, ``on_nan="continue"`` trains on, and ``xpgrad train`` exits 1 leaving --out intact."""
from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

import autograd as ag
import nn
from nn.data import DataLoader, TensorDataset, write_idx
from nn.training import CHECKPOINT_NAME, DivergenceError, fit, train_epoch
from nn.training import loop as training_loop

N, BATCH = 64, 8                      # 8 steps per epoch
pytestmark = pytest.mark.filterwarnings("ignore:(overflow|invalid value) encountered:RuntimeWarning")  # NumPy's


def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    return x, y


def loader():
    x, y = data()
    return DataLoader(TensorDataset(x, y), BATCH)


def model():
    ag.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))


class InfLossAt:
    """Cross-entropy whose loss is multiplied by inf at one (epoch, step), 1-based."""

    def __init__(self, epoch: int, step: int):
        self.at, self.calls, self.inner = (epoch - 1) * (N // BATCH) + step, 0, nn.CrossEntropyLoss()
        self.reduction = "mean"

    def __call__(self, out, y):
        self.calls += 1
        loss = self.inner(out, y)
        return loss * math.inf if self.calls == self.at else loss


class InfWeightAfter(nn.optim.SGD):
    """SGD that writes inf into the first weight after its ``k``-th step (the losses up to there stay finite)."""

    def __init__(self, params, k: int, **kw):
        super().__init__(params, **kw)
        self.k, self.calls = k, 0

    def step(self):
        super().step()
        self.calls += 1
        if self.calls == self.k:
            self.param_groups[0]["params"][0].array[0, 0] = np.inf


@pytest.fixture(params=["each step", "at sync points"])
def check_mode(request, monkeypatch):
    """Run a test with the CPU's per-step check, and with the GPU's checks at the progress refreshes and at the
    end of the epoch (forced on the CPU)."""
    if request.param == "at sync points":
        monkeypatch.setattr(training_loop, "_host_scalar_loss", lambda device: False)
    return request.param


def test_huge_learning_rate_stops_at_the_first_nonfinite_step(check_mode):
    m = model()
    with pytest.raises(DivergenceError) as err:
        fit(m, nn.optim.SGD(m.parameters(), lr=1e6), nn.CrossEntropyLoss(), loader(), 3, progress=False)
    e = err.value
    # the same run trained on: its first non-finite step loss is the one reported
    m = model()
    with pytest.warns(RuntimeWarning, match="training diverged"):
        h = fit(m, nn.optim.SGD(m.parameters(), lr=1e6), nn.CrossEntropyLoss(), loader(), 3, progress=False,
                on_nan="continue")
    first = next(i for i, v in enumerate(h.step_loss) if not math.isfinite(v))
    assert (e.epoch - 1) * 8 + e.step == first + 1
    assert isinstance(e, ArithmeticError) and e.where == "loss" and not math.isfinite(e.value)
    msg = str(e)
    assert f"training diverged at epoch {e.epoch}, step {e.step} of 8: the training loss is {e.value!r}" in msg
    assert "detect_anomaly()" in msg and "on_nan='continue'" in msg
    assert len(e.history) == e.epoch - 1


@pytest.mark.parametrize("log_every", [None, 3])
def test_injected_inf_names_epoch_and_step_and_keeps_the_last_good_checkpoint(tmp_path, check_mode, log_every):
    m = model()
    ckpt = tmp_path / CHECKPOINT_NAME
    saved = {}
    loss_fn = InfLossAt(epoch=2, step=5)
    with pytest.raises(DivergenceError, match=r"at epoch 2, step 5 of 8: the training loss is inf") as err:
        fit(m, nn.optim.SGD(m.parameters(), lr=0.1), loss_fn, loader(), 3, progress=log_every is not None,
            log_every=log_every, checkpoint_dir=tmp_path,
            on_epoch_end=lambda epoch, rec: saved.update({epoch: ckpt.read_bytes()}))
    assert (err.value.epoch, err.value.step, err.value.value) == (2, 5, math.inf)
    # where it stopped: at once on the CPU; else at the next progress refresh (step 6), or the epoch's end
    assert loss_fn.calls == 8 + (5 if check_mode == "each step" else 6 if log_every else 8)
    assert list(saved) == [1] and ckpt.read_bytes() == saved[1]            # epoch 1's checkpoint, untouched
    assert len(err.value.history) == 1


def test_nonfinite_weights_after_the_last_step_are_never_checkpointed(tmp_path, check_mode):
    """Finite losses all along, but the update of epoch 2's last step makes a weight inf: caught at the end of the
    epoch, before the checkpoint is written."""
    m = model()
    ckpt = tmp_path / CHECKPOINT_NAME
    saved = {}
    with pytest.raises(DivergenceError) as err:
        fit(m, InfWeightAfter(m.parameters(), k=16, lr=0.1), nn.CrossEntropyLoss(), loader(), 3, progress=False,
            checkpoint_dir=tmp_path, on_epoch_end=lambda epoch, rec: saved.update({epoch: ckpt.read_bytes()}))
    e = err.value
    assert (e.epoch, e.step, e.where, e.value) == (2, 8, "0.weight", math.inf)
    assert "epoch 2, step 8 of 8: after the update of that step the weight '0.weight' holds inf" in str(e)
    assert list(saved) == [1] and ckpt.read_bytes() == saved[1]
    state = nn.load(ckpt)
    assert state["epoch"] == 1
    assert all(np.isfinite(np.asarray(v.array if hasattr(v, "data") else v)).all() for v in state["model"].values())
    # resuming from the kept checkpoint works and trains the remaining epochs
    m = model()
    h = fit(m, nn.optim.SGD(m.parameters(), lr=0.1), nn.CrossEntropyLoss(), loader(), 3, progress=False,
            checkpoint_dir=tmp_path)
    assert h.epoch == [1, 2, 3] and all(math.isfinite(v) for v in h.train_loss)


def test_on_nan_continue_trains_on_warns_once_and_writes_no_bad_checkpoint(tmp_path):
    m = model()
    ckpt = tmp_path / CHECKPOINT_NAME
    saved = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = fit(m, nn.optim.SGD(m.parameters(), lr=0.1), InfLossAt(epoch=2, step=5), loader(), 4, progress=False,
                checkpoint_dir=tmp_path, on_nan="continue",
                on_epoch_end=lambda epoch, rec: saved.update({epoch: ckpt.read_bytes()}))
    ours = [w for w in caught if "training diverged" in str(w.message)]
    assert len(ours) == 1 and issubclass(ours[0].category, RuntimeWarning)
    assert "epoch 2, step 5 of 8" in str(ours[0].message) and "on_nan='continue'" in str(ours[0].message)
    assert h.epoch == [1, 2, 3, 4]                                   # all epochs trained
    assert math.isfinite(h.train_loss[0]) and not math.isfinite(h.train_loss[1])
    assert not math.isfinite(h.step_loss[8 + 4])
    assert ckpt.read_bytes() == saved[1]                             # epochs 2-4 (NaN weights) not written
    assert nn.load(ckpt)["epoch"] == 1


def test_on_nan_is_checked():
    m = model()
    with pytest.raises(ValueError, match="on_nan must be 'stop' or 'continue'"):
        fit(m, nn.optim.SGD(m.parameters(), lr=0.1), nn.CrossEntropyLoss(), loader(), 1, on_nan="ignore")


def test_train_epoch_raises_with_the_step_and_continue_does_not_check():
    m = model()
    with pytest.raises(DivergenceError, match=r"^training diverged at step 3 of 8: the training loss is inf"):
        train_epoch(m, nn.optim.SGD(m.parameters(), lr=0.1), InfLossAt(epoch=1, step=3), loader())
    m = model()
    tr = train_epoch(m, nn.optim.SGD(m.parameters(), lr=0.1), InfLossAt(epoch=1, step=3), loader(), on_nan="continue")
    assert not math.isfinite(tr["loss"]) and not math.isfinite(tr["step_loss"][2])


def test_with_several_ranks_a_nonfinite_weight_elsewhere_stops_every_rank():
    """The weight check is summed over the ranks, so every rank raises (or goes on) together."""
    class Comm:
        def __init__(self, others_bad):
            self.others_bad = others_bad

        def allreduce_floats(self, values):
            return [v + self.others_bad for v in values]

    tr = {"loss": 1.0, "step_loss": [1.0] * 8}
    m = model()
    assert training_loop._divergence(m, tr, 3, 8, Comm(0.0)) is None
    e = training_loop._divergence(m, tr, 3, 8, Comm(1.0))
    assert (e.epoch, e.step) == (3, 8) and "a weight on another rank holds nan" in str(e)
    e = training_loop._divergence(m, dict(tr, loss=math.nan, step_loss=[1.0, math.nan] + [1.0] * 6), 3, 8, Comm(0.0))
    assert (e.step, e.where) == (2, "loss")


# --- xpgrad train ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def idx_root(tmp_path_factory):
    """A tiny fake Fashion-MNIST (IDX files) for the command."""
    root = tmp_path_factory.mktemp("idx")
    folder = root / "fashion-mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 64), ("t10k", 32)):
        write_idx(folder / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        write_idx(folder / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8))
    return root


def _train_args(root, out, *extra):
    return ["train", "--model", "mlp", "--limit", "64", "--epochs", "2", "--batch-size", "16", "--data-root",
            str(root), "--out", str(out), "--no-download", "--progress", "off", *extra]


@pytest.mark.parametrize("entry", ["xpgrad", "xpgrad.train.main"])
@pytest.mark.parametrize("lr", ["1e6", "inf"])
def test_xpgrad_train_diverging_exits_1_and_leaves_the_earlier_run_intact(idx_root, tmp_path, capsys, lr, entry):
    pytest.importorskip("nn.models")
    from xpgrad import cli, train
    out = tmp_path / "run"
    assert cli.main(_train_args(idx_root, out, "--epochs", "1")) == 0          # an earlier, good run
    before = {name: (out / name).read_bytes() for name in ("model.npz", "metrics.json")}
    capsys.readouterr()
    argv = _train_args(idx_root, out, "--optimizer", "sgd", "--lr", lr)
    try:
        status = cli.main(argv) if entry == "xpgrad" else train.main(argv[1:])   # the module itself returns 1
    except SystemExit as e:                          # train.main: argparse's usage error
        status = e.code
    err = capsys.readouterr().err
    if lr == "inf" and status == 2:                  # the options are validated first: a usage error
        assert entry != "xpgrad" or "--lr" in err
    else:
        assert status == 1
        lines = [line for line in err.splitlines() if line.startswith("xpgrad train: error:")]
        assert len(lines) == 1 and re.search(r"training diverged at epoch [12], step \d of 4: ", lines[0]), err
        assert "detect_anomaly" in lines[0]
    for name, data_ in before.items():
        assert (out / name).read_bytes() == data_, name


def test_xpgrad_train_on_nan_continue_trains_on(idx_root, tmp_path, capsys):
    pytest.importorskip("nn.models")
    from xpgrad.cli import main
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert main(_train_args(idx_root, out, "--optimizer", "sgd", "--lr", "1e6", "--on-nan", "continue")) == 0
    assert (out / "model.npz").exists()
    assert main(_train_args(idx_root, out, "--on-nan", "maybe")) == 2
