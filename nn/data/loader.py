"""``DataLoader``: mini-batches of Tensors from a dataset, optionally shuffled and moved to a device."""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any, Callable, Iterator

import numpy as np

import autograd as ag
import backends
from autograd import Tensor

from .dataset import as_generator, as_tensors, batch_fn

__all__ = ["DataLoader", "default_collate", "to_device"]


def _numbers(items, dtype=None) -> Tensor:
    try:
        return ag.tensor(items, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise TypeError(f"default_collate: cannot batch the numbers {items[:4]!r}...: {e}") from None


def default_collate(items: list) -> Any:
    """Stack a list of samples into a batch of Tensors, as ``torch.utils.data.default_collate``.

    Tensors and NumPy/CuPy arrays are stacked along a new first axis into a Tensor on their device (the one
    copy; no graph is recorded); NumPy scalars keep their dtype; Python ints become int64, floats float64 and
    bools bool Tensors; strings and bytes are returned as they are (the list or column of them). Dicts
    (their type kept when it can be built from a dict) and namedtuples are collated field by field; tuples
    and lists become a list of collated fields (PyTorch's rule: ``[images, labels]``).
    """
    if not items:
        raise ValueError("default_collate: empty batch")
    first = items[0]
    if isinstance(first, Tensor):
        return ag.as_tensor(first.xp.stack([t.array for t in items]), device=first.device)   # fresh: no copy
    if backends.is_array(first):
        if first.dtype.kind in "OSUV":
            raise TypeError(f"default_collate: cannot batch arrays of dtype {first.dtype}; pass collate_fn= "
                            "to the DataLoader")
        return ag.as_tensor(backends.backend_of(first).xp.stack(items))
    if isinstance(first, (str, bytes)):
        return items                                    # as PyTorch: the column itself (a tuple inside tuples)
    if isinstance(first, np.generic) and first.dtype.kind in "biufc":
        return ag.as_tensor(np.array(items, dtype=first.dtype))
    if isinstance(first, bool):
        return _numbers(items, "bool")
    if isinstance(first, numbers.Integral):
        return _numbers(items)                          # int64, as torch.tensor (floats among them: float)
    if isinstance(first, numbers.Real):
        return _numbers(items, "float64")
    if isinstance(first, Mapping):
        out = {key: default_collate([it[key] for it in items]) for key in first}
        try:
            return type(first)(out)
        except TypeError:
            return out
    if isinstance(first, (tuple, list)):
        if any(len(it) != len(first) for it in items):
            raise ValueError("default_collate: samples in a batch have different numbers of fields")
        fields = [default_collate(col) for col in zip(*items)]
        if isinstance(first, tuple) and hasattr(first, "_fields"):   # namedtuple
            return type(first)(*fields)
        return fields
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
    can be converted on the device). Tensors are moved with the same rules, and returned as they are when
    nothing changes; other leaves are kept. ``device=None``: where each already is.
    """
    return _move(batch, None if device is None else backends.get_backend(device), float_dtype)


def _move(batch: Any, be, float_dtype) -> Any:
    if isinstance(batch, Tensor):
        dt = _target_dtype(batch.dtype, batch.ndim, float_dtype)
        if (dt is None or dt == batch.dtype) and (be is None or be is batch.device):
            return batch
        return ag.as_tensor(batch, dtype=dt, device=be)
    if type(batch) is list:
        return [_move(v, be, float_dtype) for v in batch]
    if backends.is_array(batch):
        return ag.as_tensor(batch, dtype=_target_dtype(batch.dtype, batch.ndim, float_dtype), device=be)
    if isinstance(batch, dict):
        return type(batch)((k, _move(v, be, float_dtype)) for k, v in batch.items())
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(_move(v, be, float_dtype) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(_move(v, be, float_dtype) for v in batch)
    return batch


class DataLoader:
    """Iterate over a dataset in mini-batches of Tensors, as ``torch.utils.data.DataLoader``.

    Args:
        dataset: a map-style dataset (``__getitem__``/``__len__``), or an array or Tensor (its rows are samples).
        batch_size: samples per batch (>= 1).
        shuffle: visit samples in a new random order on every pass.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        collate_fn: turns a list of samples into a batch (default: :func:`default_collate`: Tensors).
        seed: shuffling randomness: None (xpgrad's CPU generator, seeded by ``autograd.manual_seed``),
            an int (a private generator created here, so two loaders with the same seed give the same
            sequence of epochs), or a ``numpy.random.Generator``.
        device: move every batch to this device (see :func:`to_device`: float32 stays float32, 1-D integer
            labels become int64). Without it batches stay where the data is (CPU for NumPy data, the GPU
            for a dataset of CUDA tensors), in the data's dtypes.
        float_dtype: cast floating tensors of a batch to this dtype (e.g. ``"float32"``).
        sampler: an iterable of sample indices with ``len`` (e.g. :class:`DistributedSampler`) that replaces
            ``shuffle``: batches are its indices in its order, ``batch_size`` at a time.
        num_workers, pin_memory: accepted for PyTorch programs; batches are always made in the calling
            process (the fast path below is a single gather).

    Batches are what :func:`default_collate` makes of the samples: ``for images, labels in loader`` gets
    Tensors (a list ``[images, labels]`` for datasets of pairs, as in PyTorch). Datasets with a
    ``get_batch(indices)`` method (:class:`TensorDataset`, :class:`Subset` of one, the MNIST datasets with
    vectorizable transforms, plain arrays) are batched by indexing their arrays with the whole index array at
    once (one gather, no further copy), instead of one ``__getitem__`` per sample; a custom ``collate_fn``
    always gets the list of samples, and its batches are passed on as they are (moved when ``device`` is
    given).
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, *, drop_last: bool = False,
                 collate_fn: Callable | None = None, seed=None, device=None, float_dtype=None, sampler=None,
                 num_workers: int = 0, pin_memory: bool = False):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative int, got {num_workers!r}")
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
        self._target = None if device is None else backends.get_backend(device)   # a bad device fails here

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
        custom = self.collate_fn is not None
        collate = self.collate_fn or default_collate
        fast = None if custom else batch_fn(self.dataset)        # looked up per pass: transforms may change
        move = self._target is not None or self.float_dtype is not None
        for idx in self._batches():
            if fast is not None:
                batch = fast(idx)
            else:
                rng = range(idx.start, idx.stop) if isinstance(idx, slice) else idx.tolist()
                batch = collate([self.dataset[i] for i in rng])
            if move:
                batch = to_device(batch, self._target, self.float_dtype)
            elif not custom:
                batch = as_tensors(batch)                 # a custom get_batch's arrays: Tensors, shared
            yield batch

    def __repr__(self) -> str:
        return (f"DataLoader({len(self.dataset)} samples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}{'' if self.device is None else f', device={self.device!r}'})")
