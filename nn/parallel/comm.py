"""Communicators: how ranks talk. One process alone, MPI on host arrays, NCCL on CuPy arrays.

Every communicator has the same small interface (``rank``, ``size``, ``local_rank``; in-place ``allreduce_``,
``iallreduce_`` returning a handle with ``wait()``, ``broadcast_``, ``barrier``, ``bcast_object``, ``abort``).

- :class:`SingleProcess`: world size 1, every collective is a no-op; needs nothing installed.
- :class:`MPICommunicator`: mpi4py on NumPy arrays through the buffer interface (``Iallreduce`` with
  ``MPI.IN_PLACE``, ``Ibcast``), never pickled. CuPy arrays handed to it are staged through host copies (the
  mpich wheel is not CUDA-aware); on GPUs use NCCL.
- :class:`NCCLCommunicator`: ``cupy.cuda.nccl`` on device arrays, no host copy; its unique id travels from
  rank 0 over MPI. NCCL calls are queued on the current CUDA stream, so what follows on that stream sees the
  result and ``wait()`` has nothing to do on the host.

No collective waits forever: a host wait polls ``Test()`` against a deadline (``timeout`` seconds, default
``$XPGRAD_DIST_TIMEOUT`` or 300) and raises :class:`DistributedTimeoutError`; with the abort hook that
:func:`nn.parallel.init` installs, that (like any uncaught exception) ends the whole job.
"""
from __future__ import annotations

import os
import time

import backends

__all__ = ["Communicator", "SingleProcess", "MPICommunicator", "NCCLCommunicator", "DistributedTimeoutError",
           "default_timeout"]


class DistributedTimeoutError(RuntimeError):
    """A collective did not complete in time: another rank died, hung, or skipped it."""


def default_timeout() -> float:
    return float(os.environ.get("XPGRAD_DIST_TIMEOUT", "300"))


class _Done:
    """The handle of a collective that is already complete."""

    def wait(self) -> None:
        return None

    def test(self) -> bool:
        return True


class Communicator:
    """What a data-parallel run needs from its transport (the single-process defaults)."""
    name = "single"
    rank = 0
    size = 1
    local_rank = 0
    local_size = 1

    def allreduce_(self, array):
        """Sum ``array`` over the ranks, in place; returns it."""
        self.iallreduce_(array).wait()
        return array

    def iallreduce_(self, array):
        """Start summing ``array`` over the ranks in place; the returned handle's ``wait()`` completes it."""
        return _Done()

    def broadcast_(self, array, root: int = 0):
        """Overwrite ``array`` with rank ``root``'s, in place; returns it."""
        return array

    def barrier(self) -> None:
        return None

    def bcast_object(self, obj, root: int = 0):
        """A small Python object from rank ``root`` (pickled: for ids and flags, never for tensors)."""
        return obj

    def allreduce_floats(self, values) -> list[float]:
        """Sums over the ranks of a few Python numbers (metrics); one collective for all of them."""
        return [float(v) for v in values]

    def abort(self, code: int = 1) -> None:
        os._exit(code)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size}, local_rank={self.local_rank})"


class SingleProcess(Communicator):
    """World size 1: no MPI needed, every collective returns at once."""


class _MPIRequest:
    """A pending mpi4py request, waited for against a deadline; ``after`` runs once it is complete."""

    def __init__(self, req, what: str, timeout: float, rank: int, after=None):
        self.req, self.what, self.timeout, self.rank, self.after = req, what, timeout, rank, after
        self.done = False

    def test(self) -> bool:
        if not self.done and self.req.Test():
            self._finish()
        return self.done

    def _finish(self):
        self.done = True
        if self.after is not None:
            self.after()

    def wait(self) -> None:
        if self.done:
            return
        if not self.req.Test():
            deadline = time.monotonic() + self.timeout
            pause = 2e-6
            while not self.req.Test():
                if time.monotonic() > deadline:
                    raise DistributedTimeoutError(
                        f"rank {self.rank}: {self.what} did not complete within {self.timeout:g} s (another rank "
                        "failed, hung or skipped this collective); set XPGRAD_DIST_TIMEOUT to wait longer")
                time.sleep(pause)
                pause = min(2 * pause, 2e-4)
        self._finish()


def _is_host(array) -> bool:
    return backends.backend_of(array).kind == "cpu"


class MPICommunicator(Communicator):
    """mpi4py collectives on host (NumPy) buffers, in place and without pickling."""
    name = "mpi"

    def __init__(self, comm=None, timeout: float | None = None):
        from mpi4py import MPI
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
        local.Free()
        self.timeout = default_timeout() if timeout is None else float(timeout)

    def _request(self, req, what, after=None) -> _MPIRequest:
        return _MPIRequest(req, what, self.timeout, self.rank, after)

    def iallreduce_(self, array):
        if self.size == 1:
            return _Done()
        if _is_host(array):
            return self._request(self.comm.Iallreduce(self.MPI.IN_PLACE, array, op=self.MPI.SUM),
                                 f"allreduce of {array.size} {array.dtype} values")
        # a device array without NCCL: through an explicit host copy (the mpich wheel is not CUDA-aware)
        be = backends.backend_of(array)
        staged = be.to_host(array)

        def back():
            array[...] = be.asarray(staged)
        return self._request(self.comm.Iallreduce(self.MPI.IN_PLACE, staged, op=self.MPI.SUM),
                             f"allreduce of {array.size} {array.dtype} values (host-staged)", after=back)

    def broadcast_(self, array, root: int = 0):
        if self.size == 1:
            return array
        be = backends.backend_of(array)
        staged = array if _is_host(array) else be.to_host(array)
        self._request(self.comm.Ibcast(staged, root=root), f"broadcast of {array.size} {array.dtype} values").wait()
        if staged is not array:
            array[...] = be.asarray(staged)
        return array

    def barrier(self) -> None:
        if self.size > 1:
            self._request(self.comm.Ibarrier(), "barrier").wait()

    def bcast_object(self, obj, root: int = 0):
        return obj if self.size == 1 else self.comm.bcast(obj, root=root)

    def allreduce_floats(self, values) -> list[float]:
        buf = backends.host.asarray([float(v) for v in values], dtype="float64")   # metrics: host numbers
        self.allreduce_(buf)
        return buf.tolist()

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)


class NCCLCommunicator(MPICommunicator):
    """NCCL (:mod:`backends.nccl`) for CuPy arrays, with MPI (when there is more than one rank) for setting up
    and for host arrays. The unique id is made on rank 0 and broadcast over MPI."""
    name = "nccl"

    def __init__(self, device_index: int | None = None, comm=None, timeout: float | None = None, mpi: bool = True):
        from backends import nccl
        if mpi:
            super().__init__(comm, timeout)
        else:                                    # one process, no MPI: the single-GPU check
            self.comm = None
            self.rank = self.local_rank = 0
            self.size = self.local_size = 1
            self.timeout = default_timeout() if timeout is None else float(timeout)
        self.device_index = self.local_rank if device_index is None else int(device_index)
        uid = nccl.unique_id() if self.rank == 0 else None
        if self.size > 1:
            uid = self.comm.bcast(uid, root=0)
        self.nccl = nccl.Communicator(self.size, uid, self.rank, self.device_index)

    def iallreduce_(self, array):
        if _is_host(array):
            return super().iallreduce_(array)
        self.nccl.allreduce_(array)
        return _Done()          # stream-ordered: later work on this stream sees the sum

    def broadcast_(self, array, root: int = 0):
        if _is_host(array):
            return super().broadcast_(array, root)
        return self.nccl.broadcast_(array, root)

    def abort(self, code: int = 1) -> None:
        try:
            self.nccl.abort()
        finally:
            if self.comm is not None:
                self.comm.Abort(code)
            os._exit(code)
