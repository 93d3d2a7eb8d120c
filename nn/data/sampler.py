"""``DistributedSampler``: each rank's share of a dataset's indices, the same shuffle on every rank.

Every epoch one permutation of ``range(len(dataset))`` is drawn from ``(seed, epoch)`` (identical on every
rank, no communication); rank ``r`` of ``R`` takes positions ``r, r + R, r + 2R, ...`` of it. So step ``k``
of per-rank batch ``b`` covers, over all ranks together, positions ``k*b*R .. (k+1)*b*R - 1``: exactly the
batch a single process with batch ``b*R`` takes from the same permutation.

Equal lengths (the rule): by default (``pad=True``) the permutation is **padded** with its own first indices
up to a multiple of ``R``, so every rank has ``ceil(N / R)`` indices and every sample is seen at least once
per epoch (at most ``R - 1`` are seen twice). ``drop_last=True`` **drops** the last ``N % R`` positions
instead (every sample at most once). ``pad=False`` keeps the shards unequal (``N // R`` or one more), every
sample exactly once: for evaluation, where the ranks run no collective per batch.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["DistributedSampler"]


class DistributedSampler:
    """Indices of this rank's shard of ``dataset`` (anything with ``len``), reshuffled per epoch.

    Args:
        dataset: the dataset (only its length is used).
        num_replicas: the world size (default: :func:`nn.parallel.world_size`).
        rank: this rank (default: :func:`nn.parallel.rank`).
        shuffle: a new permutation every epoch (call :meth:`set_epoch`; ``fit`` does), else index order.
        seed: the permutation's seed, the same on every rank.
        drop_last: drop the tail so the shards are equal (instead of padding).
        pad: pad the shards to equal length (ignored with ``drop_last``); False: unequal, each sample once.
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False, pad: bool = True):
        if num_replicas is None or rank is None:
            from .. import parallel
            num_replicas = parallel.world_size() if num_replicas is None else num_replicas
            rank = parallel.rank() if rank is None else rank
        for name, v in (("num_replicas", num_replicas), ("rank", rank), ("seed", seed)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise TypeError(f"DistributedSampler: {name} must be an int, got {v!r}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: need 0 <= rank < num_replicas, got rank {rank} of {num_replicas}")
        self.dataset = dataset
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.shuffle, self.seed = bool(shuffle), int(seed)
        self.drop_last, self.pad = bool(drop_last), bool(pad)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch's permutation (the same call on every rank gives the same permutation)."""
        self.epoch = int(epoch)

    def _total(self, n: int) -> int:
        r = self.num_replicas
        if self.drop_last:
            return n - n % r
        return -(-n // r) * r if self.pad else n

    def __len__(self) -> int:
        n, r = len(self.dataset), self.num_replicas
        total = self._total(n)
        if self.drop_last or self.pad:
            return total // r
        return n // r + (1 if self.rank < n % r else 0)

    def indices(self) -> np.ndarray:
        """This rank's indices for the current epoch (int64)."""
        n = len(self.dataset)
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle
                 else np.arange(n, dtype=np.int64))
        total = self._total(n)
        if total > n:
            order = np.concatenate([order, np.resize(order, total - n)]) if n else order
        else:
            order = order[:total]
        return order[self.rank::self.num_replicas].astype(np.int64)

    def __iter__(self):
        return iter(self.indices().tolist())

    def __repr__(self) -> str:
        return (f"DistributedSampler({len(self.dataset)} samples, rank {self.rank} of {self.num_replicas}, "
                f"shuffle={self.shuffle}, seed={self.seed}, epoch={self.epoch}, "
                f"{'drop_last' if self.drop_last else 'pad' if self.pad else 'uneven'})")
