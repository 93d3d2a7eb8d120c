"""Data parallel (nn.parallel, DistributedSampler, xpgrad train --distributed).

In-process tests run with world size 1 (or a faked world size for the sampler); the 2-rank tests start
``mpiexec -n 2`` from the interpreter's bin/ (the ``mpi`` extra's MPICH) on tests/parallel_worker.py, one
thread per rank, each with a hard timeout, and skip with a reason when mpi4py or mpiexec is missing.
"""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import autograd as ag
import backends
import nn
from nn import parallel
from nn.data import DataLoader, DistributedSampler, TensorDataset

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORKER = ROOT / "tests" / "parallel_worker.py"
MPIEXEC = pathlib.Path(sys.executable).parent / "mpiexec"
TIMEOUT = 90


# --- DistributedSampler (world size faked) ---------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, 1, 7, 10, 33])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_sampler_covers_every_sample_once_per_epoch(n, world):
    data = np.arange(n)
    for epoch in (0, 1):
        # uneven (evaluation): exactly once
        shards = [DistributedSampler(data, world, r, seed=5, pad=False) for r in range(world)]
        for s in shards:
            s.set_epoch(epoch)
        got = np.concatenate([s.indices() for s in shards])
        assert sorted(got.tolist()) == list(range(n))
        assert [len(s) for s in shards] == [len(s.indices()) for s in shards]
        # padded (training default): equal lengths, every sample at least once, at most world - 1 repeats
        padded = [DistributedSampler(data, world, r, seed=5) for r in range(world)]
        for s in padded:
            s.set_epoch(epoch)
        idx = [s.indices() for s in padded]
        assert len({len(i) for i in idx}) == 1 and all(len(i) == len(s) for i, s in zip(idx, padded))
        flat = np.concatenate(idx)
        assert set(flat.tolist()) == set(range(n)) and len(flat) - n < world
        # drop_last: equal lengths, every sample at most once, fewer than world dropped
        dropped = np.concatenate([DistributedSampler(data, world, r, seed=5, drop_last=True).indices()
                                  for r in range(world)])
        assert len(set(dropped.tolist())) == len(dropped) and n - len(dropped) < world


def test_sampler_same_shuffle_everywhere_new_one_per_epoch():
    data = np.arange(40)
    a, b = DistributedSampler(data, 2, 0, seed=3), DistributedSampler(data, 2, 1, seed=3)
    one = DistributedSampler(data, 1, 0, seed=3)
    # the ranks' step-k batches of b samples together are the single process's step-k batch of 2b samples
    for epoch in (0, 1):
        for s in (a, b, one):
            s.set_epoch(epoch)
        ia, ib, io = a.indices(), b.indices(), one.indices()
        for k in range(0, 20, 4):
            assert sorted(np.concatenate([ia[k:k + 4], ib[k:k + 4]]).tolist()) == sorted(io[2 * k:2 * k + 8].tolist())
    e0 = DistributedSampler(data, 2, 0, seed=3).indices()
    assert not np.array_equal(e0, a.indices())                 # epoch 1 differs from epoch 0
    assert np.array_equal(DistributedSampler(data, 2, 0, shuffle=False).indices(), np.arange(0, 40, 2))


def test_sampler_and_loader_argument_errors():
    with pytest.raises(ValueError, match="rank"):
        DistributedSampler(range(4), 2, 2)
    with pytest.raises(TypeError):
        DistributedSampler(range(4), 2, 0.5)
    with pytest.raises(ValueError, match="sampler"):
        DataLoader(np.arange(4), 2, shuffle=True, sampler=DistributedSampler(range(4), 1, 0))
    loader = DataLoader(np.arange(10), 3, sampler=DistributedSampler(range(10), 2, 1, shuffle=False))
    assert len(loader) == 2 and [b.tolist() for b in loader] == [[1, 3, 5], [7, 9]]


# --- world size 1, in process -----------------------------------------------------------------------------------
def test_init_without_a_launcher_is_one_process(monkeypatch):
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE", "PMIX_RANK"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(parallel, "_world", None)
    comm = parallel.init()
    assert isinstance(comm, parallel.SingleProcess) and parallel.is_initialized()
    assert (parallel.rank(), parallel.world_size(), parallel.local_rank()) == (0, 1, 0)
    assert parallel.is_main_process() and parallel.local_device("cpu") == "cpu"
    assert parallel.reduce_mean([0.5, None, 2.0], weight=10) == [0.5, None, 2.0]
    a = np.arange(3.0)
    assert comm.allreduce_(a) is a and a.tolist() == [0.0, 1.0, 2.0]
    parallel.barrier()


def _pair(seed=0, build=lambda: nn.models.textbook_rnn("gru")):
    ag.manual_seed(seed)
    plain = build().double()
    ag.manual_seed(seed)
    wrapped = parallel.DistributedDataParallel(build().double(), parallel.SingleProcess(), bucket_cap_mb=0.01)
    return plain, wrapped


def _grads(model):
    return [None if p.grad is None else p.grad.numpy() for p in model.parameters()]


def test_ddp_gradients_equal_plain_ones_with_shared_weights_and_accumulation():
    plain, ddp = _pair()          # a GRU: each weight gets 28 contributions per backward, one per time step
    x = ag.tensor(np.random.default_rng(0).standard_normal((3, 28, 28)))
    y = ag.tensor(np.array([0, 4, 9]))
    for _ in range(2):            # no zero_grad: the second backward accumulates
        nn.CrossEntropyLoss()(plain(x), y).backward()
        nn.CrossEntropyLoss()(ddp(x), y).backward()
        assert not ddp._armed     # the hooks completed the reduction inside backward
    for a, b in zip(_grads(plain), _grads(ddp)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
    assert len(ddp.bucket_sizes) > 1 and ddp.steps_synced == 2
    assert list(ddp.state_dict()) == list(plain.state_dict())       # no "module." prefix


def test_ddp_flushes_when_the_loss_skips_an_output_and_keeps_unused_grads_none():
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.unused = nn.Linear(4, 2), nn.Linear(4, 2), nn.Linear(2, 2)

        def forward(self, x):
            return self.a(x), self.b(x)

    plain, ddp = _pair(build=TwoHeads)
    x = ag.tensor(np.ones((2, 4)))
    plain(x)[0].sum().backward()
    ddp(x)[0].sum().backward()
    assert ddp._armed                                  # head b's contributions never came: the hooks cannot know
    ddp.finish_gradient_sync()
    assert not ddp._armed
    for a, b in zip(_grads(plain), _grads(ddp)):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(b, a)
    assert ddp.module.b.weight.grad is None and ddp.module.unused.weight.grad is None


def test_ddp_no_sync_and_eval_record_nothing():
    plain, ddp = _pair(build=lambda: nn.models.textbook_mlp(6, 5, 3))
    x, y = ag.tensor(np.ones((2, 6))), ag.tensor(np.array([0, 2]))
    with ddp.no_sync():
        nn.CrossEntropyLoss()(ddp(x), y).backward()
    assert not ddp._armed and ddp.steps_synced == 0
    nn.CrossEntropyLoss()(ddp(x), y).backward()      # averages the local accumulation along with its own
    for _ in range(2):
        nn.CrossEntropyLoss()(plain(x), y).backward()
    for a, b in zip(_grads(plain), _grads(ddp)):
        np.testing.assert_allclose(b, a, rtol=1e-12)
    ddp.eval()
    with ag.no_grad():
        ddp(x)
    assert not ddp._armed


def test_fit_accepts_a_wrapped_model_in_one_process(tmp_path):
    ag.manual_seed(0)
    model = parallel.DistributedDataParallel(nn.models.textbook_mlp(6, 8, 2), parallel.SingleProcess())
    rng = np.random.default_rng(0)
    ds = TensorDataset(rng.standard_normal((32, 6)).astype(np.float32), rng.integers(0, 2, 32))
    loader = DataLoader(ds, 8, sampler=DistributedSampler(ds, 1, 0))
    hist = nn.training.fit(model, nn.optim.Adam(model.parameters()), nn.CrossEntropyLoss(), loader, 2,
                           test_loader=DataLoader(ds, 16), checkpoint_dir=tmp_path, progress=False)
    assert len(hist) == 2 and model.steps_synced == 8 and loader.sampler.epoch == 1
    assert set(nn.load(tmp_path / "checkpoint.npz")["model"]) == set(model.module.state_dict())


@pytest.mark.skipif(not backends.cuda_available(), reason="NCCL needs CuPy and a CUDA GPU")
def test_nccl_initialises_and_allreduces_on_one_gpu():
    import cupy
    comm = parallel.NCCLCommunicator(device_index=0, mpi=False)
    a = cupy.arange(1000, dtype=cupy.float32)
    comm.allreduce_(a)
    comm.broadcast_(a)
    cupy.cuda.get_current_stream().synchronize()
    assert comm.size == 1 and float(a.sum()) == float(np.arange(1000).sum())


# --- two ranks under mpiexec ---------------------------------------------------------------------------------------
def _mpi_ready() -> str | None:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install '.[mpi]')"
    if not MPIEXEC.exists():
        return f"no mpiexec next to the interpreter ({MPIEXEC}); the mpi extra's mpich wheel brings one"
    return None


needs_mpi = pytest.mark.skipif(_mpi_ready() is not None, reason=str(_mpi_ready()))


def _mpirun(args: list[str], n: int = 2, timeout: int = TIMEOUT, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "OMPI_", "MPI_LOCAL"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", XPGRAD_DIST_TIMEOUT="60",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p]))
    return subprocess.run([str(MPIEXEC), "-n", str(n), sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd or ROOT)


def _result(proc) -> dict:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@needs_mpi
def test_two_ranks_equal_one_process_with_twice_the_batch():
    r = _result(_mpirun([str(WORKER), "equivalence"]))
    assert r["world_size"] == 2 and r["steps"] == 12 and r["buckets"] > 1
    assert max(r["max_diff_per_step"]) < 1e-6, r["max_diff_per_step"]       # float64, step by step
    assert r["checksums_equal"] and r["unused_grad_none"] and r["hooks_finished"] == 12


@needs_mpi
def test_replicas_stay_identical_over_many_steps():
    r = _result(_mpirun([str(WORKER), "agreement"]))
    assert r["steps"] == 40 and len(r["checksums"]) == 2 and r["checksums"][0] == r["checksums"][1]


@needs_mpi
def test_a_failing_rank_ends_the_job_with_its_error():
    proc = _mpirun([str(WORKER), "failure"], timeout=60)     # a hang would raise TimeoutExpired here
    assert proc.returncode != 0
    assert "rank one exploded on purpose" in proc.stderr and "aborting the job" in proc.stderr


@needs_mpi
def test_train_command_distributed(tmp_path):
    sys.path.insert(0, str(ROOT / "tests"))
    from test_training import write_tiny_dataset
    root = write_tiny_dataset(tmp_path / "idx")
    out = tmp_path / "run"
    proc = _mpirun(["-m", "xpgrad", "train", "--distributed", "--model", "mlp", "--limit", "256", "--epochs", "2",
                    "--batch-size", "16", "--data-root", str(root), "--no-download", "--progress", "off",
                    "--out", str(out)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("final test accuracy") == 1 and proc.stdout.count("train loss") == 1   # rank 0 only
    m = json.loads((out / "metrics.json").read_text())
    assert m["world_size"] == 2 and m["global_batch_size"] == 32 and m["n_train"] == 256
    assert len(m["history"]["step_loss"]) == 2 * 8                # 256 / 32 steps per epoch, losses averaged
    assert m["final_test_acc"] > 0.3
    resumed = _mpirun(["-m", "xpgrad", "train", "--distributed", "--model", "mlp", "--limit", "256", "--epochs",
                       "3", "--batch-size", "16", "--data-root", str(root), "--no-download", "--progress", "off",
                       "--out", str(out), "--resume"])
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads((out / "metrics.json").read_text())["history"]["epoch"] == [1, 2, 3]


@needs_mpi
def test_bench_parallel_runs_one_and_two_ranks(tmp_path):
    from xpgrad.bench import parallel as bench
    r = bench.main(["--steps", "2", "--warmup", "1", "--batch-size", "8", "--out", str(tmp_path)])
    assert [run["ranks"] for run in r["runs"]] == [1, 2] and r["runs"][1]["allreduce_s"]
    assert (tmp_path / "parallel.json").exists()
