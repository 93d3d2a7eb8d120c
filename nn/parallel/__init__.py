"""Data-parallel training over MPI (host arrays) or NCCL (CuPy arrays): one process per rank, one model replica
per process, gradients averaged after every backward.

    import nn
    from nn import parallel as dist
    comm = dist.init()                                   # from the MPI launcher's environment; size 1 without it
    device = dist.local_device("cpu")                    # "cuda" -> cuda:<local rank>
    model = dist.DistributedDataParallel(nn.models.textbook_cnn().to(device))
    sampler = nn.data.DistributedSampler(train_set, shuffle=True, seed=0)
    loader = nn.data.DataLoader(train_set, 64, sampler=sampler)   # 64 samples per rank and step
    nn.training.fit(model, opt, loss_fn, loader, epochs)  # metrics reduced, rank 0 prints and checkpoints

Run it with ``mpiexec -n 2 python script.py`` (``pip install 'xpgrad[mpi]'`` brings mpi4py and MPICH's
``mpiexec``). A process started without a launcher is world size 1 and needs no MPI at all.

Helpers: :func:`rank`, :func:`world_size`, :func:`local_rank`, :func:`is_main_process`, :func:`print0`,
:func:`barrier`, :func:`reduce_mean` (a sample-weighted mean of metrics over the ranks), :func:`save0`
(rank 0 writes, the others wait), :func:`local_device`. :func:`init` also installs an abort hook: an uncaught
exception on any rank prints its traceback and ends the whole job (``MPI_Abort``) instead of leaving the other
ranks waiting in a collective; collectives themselves time out (``$XPGRAD_DIST_TIMEOUT``, default 300 s).
"""
from __future__ import annotations

import os
import sys
import time
import traceback

import backends

from .comm import (Communicator, DistributedTimeoutError, MPICommunicator, NCCLCommunicator,  # noqa: F401
                   SingleProcess, default_timeout)
from .ddp import DistributedDataParallel  # noqa: F401

__all__ = ["init", "world", "is_initialized", "rank", "world_size", "local_rank", "is_main_process", "print0",
           "barrier", "reduce_mean", "save0", "local_device", "launched_size", "DistributedDataParallel",
           "Communicator", "SingleProcess", "MPICommunicator", "NCCLCommunicator", "DistributedTimeoutError",
           "install_abort_hook"]

_world: Communicator | None = None

# world size as MPI launchers announce it: MPICH/Intel MPI (hydra), Open MPI, MVAPICH, PMIx (srun --mpi=pmix)
_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")


def launched_size() -> int | None:
    """The world size an MPI launcher set in the environment, or None when this process was not launched by one."""
    for var in _SIZE_VARS:
        v = os.environ.get(var)
        if v and v.isdigit():
            return int(v)
    if os.environ.get("PMIX_RANK") is not None:
        return 0                       # launched, size unknown until MPI starts
    return None


def init(backend: str = "auto", device=None, timeout: float | None = None, abort_on_error: bool = True) -> Communicator:
    """Start (once) and return this process's communicator.

    Args:
        backend: ``"mpi"`` (host arrays), ``"nccl"`` (CuPy arrays; MPI carries the set-up), ``"single"``, or
            ``"auto"``: ``"nccl"`` when ``device`` is a CUDA device, else ``"mpi"`` when an MPI launcher started
            this process, else ``"single"``.
        device: the device the model lives on (only used to choose the backend, and NCCL's GPU).
        timeout: seconds any collective may wait (default ``$XPGRAD_DIST_TIMEOUT`` or 300).
        abort_on_error: with more than one rank, install :func:`install_abort_hook`.

    Without a launcher the world is one process and mpi4py is not imported (nor MPI started). A launcher
    that says there are several ranks while mpi4py is missing is an error, not a silent single-process run.
    """
    global _world
    if _world is not None:
        return _world
    launched = launched_size()
    kind = backend
    if kind == "auto":
        cuda = device is not None and backends.parse_device(device)[0] == "cuda"
        kind = "nccl" if cuda and launched is not None else "mpi" if launched is not None else "single"
    if kind == "single":
        _world = SingleProcess()
        return _world
    try:
        import mpi4py  # noqa: F401
    except ImportError as e:
        raise RuntimeError(f"nn.parallel.init: this process was launched as one of {launched} MPI ranks but mpi4py "
                           "is not installed: pip install 'xpgrad[mpi]'") from e
    if kind == "mpi":
        comm = MPICommunicator(timeout=timeout)
    elif kind == "nccl":
        index = None if device is None else backends.parse_device(device)[1] if ":" in str(device) else None
        comm = NCCLCommunicator(device_index=index, timeout=timeout)
    else:
        raise ValueError(f"nn.parallel.init: unknown backend {backend!r}; expected auto, mpi, nccl or single")
    _world = comm
    if abort_on_error and comm.size > 1:
        install_abort_hook(comm)
    return comm


def install_abort_hook(comm: Communicator) -> None:
    """On an uncaught exception in this rank: print it (marked with the rank), then abort every rank.

    The error line and traceback go out in one write on the raw stderr descriptor, then the hook waits a moment
    so the launcher forwards them before ``MPI_Abort`` tears the job down."""
    def hook(kind, value, tb):
        try:
            sys.stdout.flush()
            text = "".join(traceback.format_exception(kind, value, tb))
            head = f"[rank {comm.rank} of {comm.size}] {kind.__name__}: {value} -- aborting the job\n"
            os.write(2, (head + text).encode("utf-8", "replace"))
            time.sleep(0.5)
        finally:
            comm.abort(1)

    sys.excepthook = hook


def is_initialized() -> bool:
    return _world is not None


def world() -> Communicator:
    """The communicator of :func:`init`, or a single-process one when init was not called."""
    return _world if _world is not None else SingleProcess()


def rank() -> int:
    return world().rank


def world_size() -> int:
    return world().size


def local_rank() -> int:
    """This process's index among the ranks on its node (the GPU it should use)."""
    return world().local_rank


def is_main_process() -> bool:
    return world().rank == 0


def local_device(kind: str = "cpu") -> str:
    """``"cpu"``, or ``"cuda:<local rank>"`` for ``kind`` ``"cuda"`` (one GPU per rank on a node)."""
    k, idx = backends.parse_device(kind)
    if k == "cpu":
        return "cpu"
    return f"cuda:{local_rank() if ':' not in kind else idx}"


def print0(*args, **kwargs) -> None:
    """``print`` on rank 0 only (flushed)."""
    if is_main_process():
        kwargs.setdefault("flush", True)
        print(*args, **kwargs)


def barrier() -> None:
    world().barrier()


def reduce_mean(values, weight: float = 1.0) -> list:
    """The weighted means over the ranks of a few metrics: ``sum_r w_r v_r / sum_r w_r`` for each value
    (``weight``: this rank's sample count, so a loss or accuracy becomes the mean over all samples). None stays
    None (it must be None on every rank)."""
    vals = list(values)
    present = [v for v in vals if v is not None]
    sums = world().allreduce_floats([float(v) * weight for v in present] + [float(weight)])
    total = sums[-1]
    it = iter(sums[:-1])
    return [None if v is None else (next(it) / total if total else 0.0) for v in vals]


def save0(obj, path) -> None:
    """``nn.save(obj, path)`` on rank 0, then a barrier (every rank may read the file afterwards)."""
    from ..serialization import save
    if is_main_process():
        save(obj, path)
    barrier()


def _reset_for_tests() -> None:
    global _world
    _world = None
