"""``DataLoader``: mini-batches from a dataset, optionally shuffled and moved to a device as Tensors."""
from __future__ import annotations

import numbers
from typing import Any, Callable, Iterator

import numpy as np

import autograd as ag
import backends

from .dataset import as_generator, batch_fn

__all__ = ["DataLoader", "default_collate", "to_device"]


def default_collate(items: list) -> Any:
    """Stack a list of samples into a batch.

    Arrays are stacked along a new first axis (on their own device); Python ints become an int64 array,
    Python floats a float32 array, bools a bool array, NumPy scalars keep their dtype; Tensors are
    stacked into a Tensor (no graph is recorded); tuples, lists and dicts are collated field by field;
    strings are returned as a list.
    """
    if not items:
        raise ValueError("default_collate: empty batch")
    first = items[0]
    if isinstance(first, ag.Tensor):
        return ag.as_tensor(first.xp.stack([t.array for t in items]), device=first.device)   # fresh: no copy
    if backends.is_array(first):
        return backends.backend_of(first).xp.stack(items)
    if isinstance(first, (bool, np.bool_)):
        return np.array(items, dtype=np.bool_)
    if isinstance(first, np.generic):
        return np.array(items, dtype=first.dtype)
    if isinstance(first, numbers.Integral):
        return np.array(items, dtype=np.int64)
    if isinstance(first, numbers.Real):
        return np.array(items, dtype=ag.get_default_dtype())
    if isinstance(first, (str, bytes)):
        return list(items)
    if isinstance(first, dict):
        return {key: default_collate([it[key] for it in items]) for key in first}
    if isinstance(first, (tuple, list)):
        if any(len(it) != len(first) for it in items):
            raise ValueError("default_collate: samples in a batch have different numbers of fields")
        fields = [default_collate(list(col)) for col in zip(*items)]
        if isinstance(first, tuple) and hasattr(first, "_fields"):   # namedtuple
            return type(first)(*fields)
        return tuple(fields) if isinstance(first, tuple) else fields
    raise TypeError(f"default_collate: cannot batch samples of type {type(first).__name__}; "
                    "pass collate_fn= to the DataLoader")


def _target_dtype(dtype, ndim: int, float_dtype):
    if dtype.kind == "f":
        return float_dtype if float_dtype is not None else None
    if dtype.kind in "iu" and ndim == 1:
        return np.dtype(np.int64)   # class labels: what cross-entropy and indexing want
    return None


def to_device(batch: Any, device, float_dtype=None) -> Any:
    """Turn every array in ``batch`` (nested tuples/lists/dicts) into a Tensor on ``device``.

    Floating arrays keep their dtype (float32 stays float32) unless ``float_dtype`` is given; 1-D integer
    arrays (labels) become int64; other arrays keep their dtype (e.g. uint8 images travel compactly and
    can be converted on the device). Tensors are moved with the same rules; other leaves are kept.
    """
    if isinstance(batch, ag.Tensor):
        dt = _target_dtype(batch.dtype, batch.ndim, float_dtype)
        if dt is None and backends.get_backend(device) is batch.device:
            return batch
        return ag.as_tensor(batch, dtype=dt, device=device)
    if backends.is_array(batch):
        return ag.as_tensor(batch, dtype=_target_dtype(batch.dtype, batch.ndim, float_dtype), device=device)
    if isinstance(batch, dict):
        return {k: to_device(v, device, float_dtype) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(to_device(v, device, float_dtype) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device, float_dtype) for v in batch)
    return batch


class DataLoader:
    """Iterate over a dataset in mini-batches.

    Args:
        dataset: a map-style dataset (``__getitem__``/``__len__``), or an array (its rows are samples).
        batch_size: samples per batch (>= 1).
        shuffle: visit samples in a new random order on every pass.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        collate_fn: turns a list of samples into a batch (default: :func:`default_collate`).
        seed: shuffling randomness: None (xpgrad's CPU generator, seeded by ``autograd.manual_seed``),
            an int (a private generator created here, so two loaders with the same seed give the same
            sequence of epochs), or a ``numpy.random.Generator``.
        device: when given, every array of a batch is returned as an autograd Tensor on this device
            (see :func:`to_device`: float32 stays float32, 1-D integer labels become int64); otherwise
            batches are arrays.
        float_dtype: with ``device``, cast floating arrays to this dtype (e.g. ``"float32"``).
        sampler: an iterable of sample indices with ``len`` (e.g. :class:`DistributedSampler`) that replaces
            ``shuffle``: batches are its indices in its order, ``batch_size`` at a time.

    Datasets with a ``get_batch(indices)`` method (:class:`TensorDataset`, :class:`Subset` of one,
    plain arrays) are batched by indexing their arrays with the whole index array at once, instead of
    one ``__getitem__`` per sample; a custom ``collate_fn`` always gets the list of samples.
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, *, drop_last: bool = False,
                 collate_fn: Callable | None = None, seed=None, device=None, float_dtype=None, sampler=None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: give either shuffle=True or a sampler (it does its own shuffling)")
        self.dataset = dataset
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.device = device
        self.float_dtype = None if float_dtype is None else np.dtype(float_dtype)
        self._rng = None if seed is None else as_generator(seed)
        self._fast = batch_fn(dataset) if collate_fn is None else None
        if device is not None:
            backends.get_backend(device)   # a bad device string fails here, not at the first batch

    def __len__(self) -> int:
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _batches(self) -> Iterator:
        if self.sampler is not None:
            order = np.fromiter(iter(self.sampler), dtype=np.int64)
            n = len(order)
        else:
            n = len(self.dataset)
        stop = n - n % self.batch_size if self.drop_last else n
        if self.sampler is not None:
            for start in range(0, stop, self.batch_size):
                yield order[start:start + self.batch_size]
        elif self.shuffle:
            order = (self._rng if self._rng is not None else as_generator(None)).permutation(n)
            for start in range(0, stop, self.batch_size):
                yield order[start:start + self.batch_size]
        else:
            for start in range(0, stop, self.batch_size):
                yield slice(start, min(start + self.batch_size, n))

    def __iter__(self) -> Iterator:
        collate = self.collate_fn or default_collate
        for idx in self._batches():
            if self._fast is not None:
                batch = self._fast(idx)
            else:
                rng = range(idx.start, idx.stop) if isinstance(idx, slice) else idx.tolist()
                batch = collate([self.dataset[i] for i in rng])
            if self.device is not None:
                batch = to_device(batch, self.device, self.float_dtype)
            yield batch

    def __repr__(self) -> str:
        return (f"DataLoader({len(self.dataset)} samples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}{'' if self.device is None else f', device={self.device!r}'})")
