"""NCCL through CuPy (``cupy.cuda.nccl``): the device side of :class:`nn.parallel.NCCLCommunicator`.

Kept in backends/ because it is the only place that imports CuPy. Collectives are queued on the current CUDA
stream of the communicator's device, in place on the arrays' device memory (no host copy); later work on that
stream sees their results, so nothing waits on the host.
"""
from __future__ import annotations

__all__ = ["unique_id", "Communicator"]

_TYPES = {"float16": "NCCL_FLOAT16", "float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64", "int32": "NCCL_INT32",
          "int64": "NCCL_INT64", "uint8": "NCCL_UINT8", "int8": "NCCL_INT8"}


def _nccl():
    from cupy.cuda import nccl
    return nccl


def unique_id():
    """A new NCCL unique id (a tuple of ints: small and picklable, for rank 0 to broadcast)."""
    return _nccl().get_unique_id()


class Communicator:
    """One rank's NCCL communicator on GPU ``device_index``."""

    def __init__(self, size: int, uid, rank: int, device_index: int):
        import cupy
        self.cupy, self.nccl, self.device_index = cupy, _nccl(), int(device_index)
        with cupy.cuda.Device(self.device_index):
            self.comm = self.nccl.NcclCommunicator(int(size), uid, int(rank))

    def _dtype(self, array):
        name = _TYPES.get(array.dtype.name)
        if name is None:
            raise TypeError(f"NCCL: no reduction for dtype {array.dtype}")
        return getattr(self.nccl, name)

    def allreduce_(self, array):
        """Sum ``array`` over the ranks in place (queued on the current stream)."""
        stream = self.cupy.cuda.get_current_stream().ptr
        self.comm.allReduce(array.data.ptr, array.data.ptr, array.size, self._dtype(array), self.nccl.NCCL_SUM,
                            stream)
        return array

    def broadcast_(self, array, root: int = 0):
        stream = self.cupy.cuda.get_current_stream().ptr
        self.comm.bcast(array.data.ptr, array.size, self._dtype(array), int(root), stream)
        return array

    def abort(self) -> None:
        self.comm.abort()
