"""``DistributedDataParallel``: one model replica per rank, gradients averaged over the ranks in buckets.

Why the ranks stay identical: at wrap time every parameter and buffer is overwritten with rank 0's; after each
backward every gradient is replaced by its average over the ranks (the same numbers on every rank); so the same
optimizer step keeps the replicas equal. With a mean loss over equal per-rank batches of b samples, the average
of the ranks' gradients is the gradient of the mean loss over the ranks' b * world_size samples together.

How the reduction overlaps backward: parameters are grouped into buckets (about ``bucket_cap_mb`` each, in the
reverse of registration order, the order backward tends to reach them). ``forward`` counts how many gradient
contributions each parameter will receive (its uses in the recorded graph); a gradient hook adds each
contribution into the bucket's flat buffer, and when every parameter of a bucket is complete the bucket's
non-blocking allreduce starts while backward goes on. Buckets are started strictly in index order, so every
rank issues the same collectives in the same order whatever order its backward runs in. The hook of the last
contribution waits for all buckets, divides by the world size and makes each ``.grad`` a view of its bucket.

Parameters without a gradient this step: a parameter this rank did not use counts as a zero gradient in the
average; one that no rank used keeps ``.grad`` unchanged (None after ``zero_grad``), as in a single process, so
an optimizer skips it. Each bucket carries one "used" flag per parameter, summed with the gradients.

Gradients that were already in ``.grad`` before a backward (accumulation without ``zero_grad``, or steps run
under :meth:`no_sync`) are added into the bucket too, so they are averaged along with the new ones.

BatchNorm running statistics (the rule): floating-point buffers are **averaged over the ranks after every
backward** (with the gradients' collectives), so every rank evaluates and checkpoints the same statistics; at
wrap time they are rank 0's. Batch statistics inside a training forward stay per rank (this is not
SyncBatchNorm): a model with BatchNorm in training mode is not step-for-step equal to one process with the
whole batch; models without batch-dependent layers are (tests/test_parallel.py checks it to 1e-6).

If the loss does not reach every output of ``forward`` (so some counted contributions never come), the
hooks cannot know backward has ended: call :meth:`finish_gradient_sync` before ``optimizer.step()``
(:func:`nn.training.fit` always does; it returns at once when the hooks already finished).
"""
from __future__ import annotations

import contextlib

import autograd as ag
from autograd import Tensor

from ..module import Module
from .comm import Communicator

__all__ = ["DistributedDataParallel"]


def _tensors_in(obj, out: list) -> list:
    if isinstance(obj, Tensor):
        out.append(obj)
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            _tensors_in(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _tensors_in(o, out)
    return out


class _Bucket:
    """Parameters of one device and dtype whose gradients are reduced together in one flat buffer."""

    def __init__(self, index: int, params: list):
        self.index = index
        self.params = params
        self.offsets, n = [], 0
        for p in params:
            self.offsets.append(n)
            n += p.numel()
        self.numel = n
        self.xp = params[0].xp
        self.dtype = params[0].dtype
        self.flat = None        # (numel + one flag per parameter,), fresh every step: grads of the last step view it
        self.remaining = 0
        self.handle = None

    def slot(self, i: int):
        return self.flat[self.offsets[i]:self.offsets[i] + self.params[i].numel()]

    def nbytes(self) -> int:
        return (self.numel + len(self.params)) * self.dtype.itemsize


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training: see the module docstring for what it guarantees.

    Args:
        module: the model (already on this rank's device).
        comm: a communicator (default: :func:`nn.parallel.init`'s).
        bucket_cap_mb: the size at which a gradient bucket is closed (MiB).
        sync_buffers: average floating-point buffers (BatchNorm running statistics) over the ranks after every
            backward; False leaves them per rank.

    ``state_dict``/``load_state_dict`` are the wrapped module's (no ``module.`` prefix), so checkpoints of a
    distributed run and of a single process are interchangeable.
    """

    def __init__(self, module: Module, comm: Communicator | None = None, bucket_cap_mb: float = 25.0,
                 sync_buffers: bool = True) -> None:
        super().__init__()
        if comm is None:
            from . import init
            comm = init()
        self.module = module
        self.comm = comm
        self.sync_buffers = bool(sync_buffers)
        self._params = [p for p in module.parameters() if p.requires_grad]
        self._check_same_model()
        self._broadcast_state()
        self._buckets = self._make_buckets(bucket_cap_mb)
        self._where = {}                    # id(param) -> (bucket, index in bucket)
        for b in self._buckets:
            for i, p in enumerate(b.params):
                self._where[id(p)] = (b, i)
        self._expected: dict[int, int] = {}
        self._seen: dict[int, int] = {}
        self._armed = False
        self._next = 0                      # the next bucket to start (in index order)
        self._sync_enabled = True
        self.steps_synced = 0
        self._handles = [p.register_hook(self._make_hook(p)) for p in self._params]

    # --- set-up ----------------------------------------------------------------------------------------------
    def _check_same_model(self) -> None:
        mine = [(name, tuple(t.shape), str(t.dtype)) for name, t in self.module.state_dict().items()]
        theirs = self.comm.bcast_object(mine, root=0)
        if theirs != mine:
            diff = next((f"{a} vs rank 0's {b}" for a, b in zip(mine, theirs) if a != b),
                        f"{len(mine)} entries vs rank 0's {len(theirs)}")
            raise ValueError(f"DistributedDataParallel: rank {self.comm.rank} has another model than rank 0: {diff}")

    def _broadcast_state(self) -> None:
        """Rank 0's parameters and buffers on every rank (in place, in registration order)."""
        if self.comm.size == 1:
            return
        for t in list(self.module.parameters()) + [b for b in self.module.buffers() if b is not None]:
            self.comm.broadcast_(t.array, root=0)
            t.mark_modified()

    def _make_buckets(self, cap_mb: float) -> list[_Bucket]:
        cap = max(1, int(cap_mb * 2 ** 20))
        buckets, current, size, key = [], [], 0, None
        for p in reversed(self._params):
            k = (p.device.name, str(p.dtype))
            if current and (k != key or size + p.numel() * p.dtype.itemsize > cap):
                buckets.append(_Bucket(len(buckets), current))
                current, size = [], 0
            current.append(p)
            size += p.numel() * p.dtype.itemsize
            key = k
        if current:
            buckets.append(_Bucket(len(buckets), current))
        return buckets

    @property
    def bucket_sizes(self) -> list[int]:
        """Bytes per bucket (gradients and flags), in the order they are reduced."""
        return [b.nbytes() for b in self._buckets]

    # --- forward: count the contributions backward will bring ------------------------------------------------
    def forward(self, *args, **kwargs):
        out = self.module(*args, **kwargs)
        if self._sync_enabled and self.training and ag.is_grad_enabled() and self._params:
            self._arm(_tensors_in(out, []))
        return out

    def _arm(self, outputs: list) -> None:
        counts = {id(p): 0 for p in self._params}
        seen_nodes, stack = set(), [t.creator for t in outputs if t.creator is not None]
        for t in outputs:
            if t.creator is None and id(t) in counts:
                counts[id(t)] += 1          # a parameter returned as it is
        while stack:
            fn = stack.pop()
            if id(fn) in seen_nodes or fn.inputs is None:
                continue
            seen_nodes.add(id(fn))
            for t in fn.inputs:
                if t.creator is not None:
                    stack.append(t.creator)
                elif id(t) in counts and t.requires_grad:
                    counts[id(t)] += 1
        self._expected = counts
        self._seen = dict.fromkeys(counts, 0)
        for b in self._buckets:
            b.flat = b.xp.empty(b.numel + len(b.params), dtype=b.dtype)
            b.flat[b.numel:] = 0
            b.handle = None
            b.remaining = sum(1 for p in b.params if counts[id(p)] > 0)
        self._next = 0
        self._armed = True

    # --- backward: hooks fill buckets and start their reduction ----------------------------------------------
    def _make_hook(self, p):
        key = id(p)

        def hook(g: Tensor):
            if not self._armed or self._expected.get(key, 0) == 0:
                return None                 # a backward that this wrapper's forward did not record: local grad
            b, i = self._where[key]
            seen = self._seen[key]
            slot = b.slot(i)
            if seen == 0:
                if p.grad is not None:      # earlier gradients (accumulation, no_sync): averaged with this one
                    slot[...] = p.grad.array.reshape(-1)
                    slot += g.array.reshape(-1)
                else:
                    slot[...] = g.array.reshape(-1)
                b.flat[b.numel + i] = 1
            else:
                slot += g.array.reshape(-1)
            self._seen[key] = seen + 1
            if seen + 1 == self._expected[key]:
                b.remaining -= 1
                if b.remaining == 0:
                    self._start_ready()
                    if self._next == len(self._buckets):
                        return self._finish(current=p)
            self._progress()
            return None

        return hook

    def _prepare(self, b: _Bucket) -> None:
        """Fill the slots of parameters that got no (or not every) contribution: their earlier grad, or zeros."""
        for i, p in enumerate(b.params):
            if self._seen[id(p)] == 0:
                if p.grad is not None:
                    b.slot(i)[...] = p.grad.array.reshape(-1)
                    b.flat[b.numel + i] = 1
                else:
                    b.slot(i)[...] = 0

    def _start_ready(self) -> None:
        while self._next < len(self._buckets) and self._buckets[self._next].remaining <= 0:
            b = self._buckets[self._next]
            self._prepare(b)
            b.handle = self.comm.iallreduce_(b.flat)
            self._next += 1

    def _progress(self) -> None:
        """Let MPI move started reductions along (it progresses only inside MPI calls)."""
        for b in self._buckets[:self._next]:
            test = getattr(b.handle, "test", None)
            if test is not None:
                test()

    def finish_gradient_sync(self) -> None:
        """Complete this step's reductions if the hooks have not (call before ``optimizer.step()``; free when
        they have). Parameters whose counted contributions did not all arrive are reduced with what came."""
        if self._armed:
            for b in self._buckets[self._next:]:
                b.remaining = 0
            self._start_ready()
            self._finish(current=None)

    def _finish(self, current) -> Tensor | None:
        self._armed = False
        inv = 1.0 / self.comm.size
        buffers = self._start_buffer_sync()
        result = None
        for b in self._buckets:
            b.handle.wait()
            b.flat *= inv
            flags = None
            if any(self._seen[id(p)] == 0 for p in b.params):       # unused here: was it used anywhere?
                flags = b.flat[b.numel:].tolist()
            for i, p in enumerate(b.params):
                if flags is not None and flags[i] == 0:
                    continue                                         # no rank had a gradient: keep .grad
                g = ag.as_tensor(b.slot(i).reshape(p.shape))
                if p is current:
                    p.grad = None                                    # the engine stores the returned gradient
                    result = g
                else:
                    p.grad = g
        if buffers is not None:
            self._finish_buffer_sync(*buffers)
        self.steps_synced += 1
        return result

    def _float_buffers(self) -> list[Tensor]:
        return [t for t in self.module.buffers() if t is not None and t.dtype.kind == "f"]

    def _start_buffer_sync(self):
        if not self.sync_buffers or self.comm.size == 1:
            return None
        bufs = self._float_buffers()
        if not bufs:
            return None
        groups: dict = {}
        for t in bufs:
            groups.setdefault((t.device.name, str(t.dtype)), []).append(t)
        pending = []
        for ts in groups.values():
            xp = ts[0].xp
            flat = xp.concatenate([t.array.reshape(-1) for t in ts])
            pending.append((ts, flat, self.comm.iallreduce_(flat)))
        return (pending,)

    def _finish_buffer_sync(self, pending) -> None:
        inv = 1.0 / self.comm.size
        for ts, flat, handle in pending:
            handle.wait()
            flat *= inv
            at = 0
            for t in ts:
                t.array[...] = flat[at:at + t.numel()].reshape(t.shape)
                t.mark_modified()
                at += t.numel()

    # --- the rest ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def no_sync(self):
        """Forwards inside the block record no reduction: gradients accumulate locally in ``.grad`` and are
        averaged (with the next synced step's) by the first backward after it."""
        prev, self._sync_enabled = self._sync_enabled, False
        try:
            yield
        finally:
            self._sync_enabled = prev

    def state_dict(self, *args, **kwargs):
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True):
        return self.module.load_state_dict(state_dict, strict)

    def extra_repr(self) -> str:
        return f"world_size={self.comm.size}, buckets={len(self._buckets)}"
