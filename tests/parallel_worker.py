"""One rank of a data-parallel test, started by tests/test_parallel.py under ``mpiexec -n 2``.

    python tests/parallel_worker.py equivalence|agreement|failure

Rank 0 prints one line ``RESULT <json>`` that the test reads; any failure here ends the job non-zero.
"""
from __future__ import annotations

import hashlib
import json
import sys

import numpy as np

import autograd as ag
import nn
from nn import parallel
from nn.data import DataLoader, DistributedSampler, TensorDataset


class WithUnused(nn.Module):
    """The textbook CNN plus a layer no rank ever uses (its gradient must stay None)."""

    def __init__(self):
        super().__init__()
        self.net = nn.models.textbook_cnn()
        self.unused = nn.Linear(3, 3)

    def forward(self, x):
        return self.net(x)


def params_of(model) -> list:
    return [p.numpy() for p in model.parameters()]


def checksum(model) -> str:
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(t.numpy()).tobytes())
    return h.hexdigest()


def equivalence(comm) -> dict:
    """R ranks with per-rank batch b against one process with batch R*b on the same samples (float64, Adam)."""
    b, n, epochs = 4, 48, 2
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, 1, 28, 28))
    y = rng.integers(0, 10, n)
    ds = TensorDataset(x, y)
    ag.manual_seed(100 + comm.rank)                # different initial weights: the wrap must broadcast rank 0's
    model = parallel.DistributedDataParallel(WithUnused().double(), comm, bucket_cap_mb=0.1)
    opt = nn.optim.Adam(model.parameters(), lr=1e-3)
    sampler = DistributedSampler(ds, shuffle=True, seed=7)
    loader = DataLoader(ds, b, sampler=sampler, device="cpu")
    ref = opt_ref = ref_loader = None
    if comm.rank == 0:
        ag.manual_seed(100)
        ref = WithUnused().double()
        opt_ref = nn.optim.Adam(ref.parameters(), lr=1e-3)
        ref_sampler = DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=7)
        ref_loader = DataLoader(ds, b * comm.size, sampler=ref_sampler, device="cpu")
    loss_fn = nn.CrossEntropyLoss()
    diffs, hooked = [], 0
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        if ref is not None:
            ref_loader.sampler.set_epoch(epoch)
        ref_batches = iter(ref_loader) if ref is not None else None
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            hooked += not model._armed           # the hooks finished the reduction inside backward
            model.finish_gradient_sync()
            opt.step()
            if ref is not None:
                xr, yr = next(ref_batches)
                opt_ref.zero_grad()
                loss_fn(ref(xr), yr).backward()
                opt_ref.step()
                diffs.append(max(float(np.abs(a - c).max()) for a, c in zip(params_of(model), params_of(ref))))
    unused_none = model.module.unused.weight.grad is None
    sums = comm.comm.allgather(checksum(model))
    return {"steps": len(diffs), "max_diff_per_step": diffs, "unused_grad_none": unused_none,
            "checksums_equal": len(set(sums)) == 1, "hooks_finished": hooked, "buckets": len(model.bucket_sizes)}


class Partial(nn.Module):
    """An MLP with BatchNorm, and a branch only rank 1 uses, on every other step."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(20, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 5))
        self.extra = nn.Linear(20, 5)
        self.use_extra = False

    def forward(self, x):
        out = self.body(x)
        return out + self.extra(x) if self.use_extra else out


def agreement(comm) -> dict:
    """Many float32 steps with per-rank data, BatchNorm and a parameter used on one rank only: replicas stay equal."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((640, 20)).astype(np.float32)
    y = rng.integers(0, 5, 640)
    ds = TensorDataset(x, y)
    ag.manual_seed(comm.rank)
    net = Partial()
    model = parallel.DistributedDataParallel(net, comm, bucket_cap_mb=0.001)
    opt = nn.optim.Adam(model.parameters(), lr=1e-2)
    sampler = DistributedSampler(ds, seed=0)
    loss_fn = nn.CrossEntropyLoss()
    steps = 0
    for epoch in range(2):
        sampler.set_epoch(epoch)
        for xb, yb in DataLoader(ds, 16, sampler=sampler, device="cpu"):
            net.use_extra = comm.rank == 1 and steps % 2 == 0
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            model.finish_gradient_sync()
            opt.step()
            steps += 1
    sums = comm.comm.allgather(checksum(model))
    return {"steps": steps, "checksums": sums, "extra_grad_set": net.extra.weight.grad is not None}


def failure(comm) -> dict:
    """Rank 1 raises in the middle of training while rank 0 waits in the gradient allreduce."""
    ag.manual_seed(0)
    model = parallel.DistributedDataParallel(nn.models.textbook_mlp(20, 8, 3), comm)
    x = ag.tensor(np.ones((4, 20), np.float32))
    y = ag.tensor(np.zeros(4, np.int64))
    for step in range(5):
        if comm.rank == 1 and step == 2:
            raise RuntimeError("rank one exploded on purpose")
        nn.CrossEntropyLoss()(model(x), y).backward()
        model.finish_gradient_sync()
    return {"steps": 5}


if __name__ == "__main__":
    world = parallel.init()
    result = {"equivalence": equivalence, "agreement": agreement, "failure": failure}[sys.argv[1]](world)
    result["world_size"] = world.size
    if world.rank == 0:
        print("RESULT " + json.dumps(result), flush=True)
