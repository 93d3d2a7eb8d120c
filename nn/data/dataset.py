"""Datasets, subsets, random splits and K-fold cross-validation indices (host side)."""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Iterator, Sequence

import numpy as np

import backends
from autograd import Tensor

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split", "k_fold", "as_generator"]


def as_generator(seed=None):
    """A NumPy ``Generator`` from ``seed``.

    ``None`` gives xpgrad's CPU generator (the one ``autograd.manual_seed`` seeds), an int a fresh
    ``numpy.random.default_rng(seed)``, and a ``Generator`` is returned as it is.
    """
    if seed is None:
        return backends.cpu.rng
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    raise TypeError(f"seed must be None, an int or a numpy.random.Generator, got {type(seed).__name__}")


class Dataset:
    """A map-style dataset: ``dataset[i]`` is sample ``i`` and ``len(dataset)`` the number of samples.

    Subclasses implement ``__getitem__`` and ``__len__``. They may also implement
    ``get_batch(indices)`` returning the already collated batch for an int64 index array: the
    :class:`~nn.data.DataLoader` then uses it instead of ``__getitem__`` per sample.
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")


def _raw(a):
    """The raw array of a Tensor (kept on its device, not copied), or a NumPy array of anything else."""
    if isinstance(a, Tensor):
        return a.array
    if backends.is_array(a):
        return a
    return np.asarray(a)


def _take(a, indices):
    """``a[indices]`` as a new array (indices is a host int64 array or a slice)."""
    if isinstance(indices, slice):
        return a[indices].copy()
    if not isinstance(a, np.ndarray):
        indices = backends.backend_of(a).xp.asarray(indices)
    return a[indices]


class TensorDataset(Dataset):
    """Samples are rows of equally long arrays: ``dataset[i] == (a[i], b[i], ...)``.

    Args:
        *arrays: NumPy arrays, array-likes or autograd Tensors (a Tensor's array is used as it is, so a
            dataset of CUDA tensors yields CUDA batches); all with the same first dimension.
        transform: optional callable applied to batches of the first array (e.g. images).
        target_transform: optional callable applied to batches of the second array (e.g. labels).

    Transforms always see a batch (leading axis = samples), also for ``dataset[i]``, which applies them
    to ``a[i:i+1]``; see :mod:`nn.data.transforms`.
    """

    def __init__(self, *arrays, transform: Callable | None = None, target_transform: Callable | None = None):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        arrays = tuple(_raw(a) for a in arrays)
        for i, a in enumerate(arrays):
            if a.ndim == 0:
                raise ValueError(f"TensorDataset: array {i} is 0-d; every array needs a first (sample) dimension")
        n = arrays[0].shape[0]
        if any(a.shape[0] != n for a in arrays):
            raise ValueError("TensorDataset: arrays must have the same length (first dimension), got shapes "
                             + ", ".join(str(tuple(a.shape)) for a in arrays))
        self.arrays = arrays
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        return int(self.arrays[0].shape[0])

    def _apply(self, batch: list) -> tuple:
        if self.transform is not None:
            batch[0] = self.transform(batch[0])
        if self.target_transform is not None and len(batch) > 1:
            batch[1] = self.target_transform(batch[1])
        return tuple(batch)

    def __getitem__(self, index):
        n = len(self)
        if not isinstance(index, numbers.Integral):
            raise TypeError(f"TensorDataset indices must be integers, got {type(index).__name__}; "
                            "use get_batch(indices) or a DataLoader for batches")
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"index {index} is out of range for a dataset of {n} samples")
        if i < 0:
            i += n
        if self.transform is None and self.target_transform is None:
            return tuple(a[i] for a in self.arrays)
        batch = self._apply([a[i:i + 1] for a in self.arrays])
        return tuple(b[0] for b in batch)

    def get_batch(self, indices) -> tuple:
        """The batch ``(a[indices], b[indices], ...)`` with the transforms applied (new arrays)."""
        return self._apply([_take(a, indices) for a in self.arrays])

    def __repr__(self) -> str:
        shapes = ", ".join(f"{tuple(a.shape)} {a.dtype}" for a in self.arrays)
        return f"{type(self).__name__}({len(self)} samples: {shapes})"


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices`` (in that order)."""

    def __init__(self, dataset, indices: Sequence[int]):
        idx = np.asarray(indices)
        if idx.size == 0:
            idx = idx.astype(np.int64)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise TypeError(f"Subset indices must be a 1-D sequence of integers, got shape {idx.shape} {idx.dtype}")
        n = len(dataset)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"Subset indices out of range for a dataset of {n} samples")
        self.dataset = dataset
        self.indices = np.where(idx < 0, idx + n, idx).astype(np.int64)

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    @property
    def get_batch(self):
        """Present when the parent dataset batches itself; maps the indices and delegates."""
        parent = batch_fn(self.dataset)
        if parent is None:
            raise AttributeError("get_batch")
        return lambda indices: parent(self.indices[indices])

    def __repr__(self) -> str:
        return f"Subset({len(self)} of {self.dataset!r})"


def batch_fn(dataset) -> Callable | None:
    """The dataset's fast batch function ``f(int64 indices) -> batch``, or None when it has none."""
    if backends.is_array(dataset):
        return lambda indices: _take(dataset, indices)
    try:
        return getattr(dataset, "get_batch", None)
    except AttributeError:
        return None


def _lengths(n: int, lengths: Sequence) -> list[int]:
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: lengths must not be empty")
    if any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in lengths):
        raise TypeError(f"random_split: lengths must be ints or fractions, got {lengths!r}")
    if any(v < 0 for v in lengths):
        raise ValueError(f"random_split: lengths must be non-negative, got {lengths!r}")
    if all(isinstance(v, numbers.Integral) for v in lengths):
        if sum(lengths) != n:
            raise ValueError(f"random_split: lengths {lengths} sum to {sum(lengths)}, but the dataset has {n} samples")
        return [int(v) for v in lengths]
    if not math.isclose(sum(lengths), 1.0, abs_tol=1e-6) or any(v > 1 for v in lengths):
        raise ValueError(f"random_split: fractions must sum to 1, got {lengths!r} (sum {sum(lengths)})")
    # floor each share, then hand out the remainder one by one (PyTorch's rule)
    sizes = [int(math.floor(n * f)) for f in lengths]
    for i in range(n - sum(sizes)):
        sizes[i % len(sizes)] += 1
    return sizes


def random_split(dataset, lengths: Sequence, seed=None) -> list[Subset]:
    """Split ``dataset`` at random into non-overlapping :class:`Subset` objects.

    Args:
        dataset: any dataset with ``len``.
        lengths: sample counts summing to ``len(dataset)``, or fractions summing to 1 (each share is
            floored and the remaining samples go one each to the first parts).
        seed: None (xpgrad's CPU generator), an int, or a ``numpy.random.Generator``.

    Example: ``train, val = random_split(ds, [0.9, 0.1], seed=0)``.
    """
    n = len(dataset)
    sizes = _lengths(n, lengths)
    perm = as_generator(seed).permutation(n)
    out, start = [], 0
    for size in sizes:
        out.append(Subset(dataset, perm[start:start + size]))
        start += size
    return out


def k_fold(n_or_dataset: Any, k: int, shuffle: bool = True, seed=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """K-fold cross-validation: yields ``k`` pairs ``(train_indices, val_indices)`` (sorted int64 arrays).

    The validation folds are disjoint, differ in size by at most one and together cover every sample
    exactly once; each fold's training indices are all the other samples.

    Args:
        n_or_dataset: the number of samples, or a dataset (its ``len`` is used).
        k: number of folds, ``2 <= k <= n``.
        shuffle: assign samples to folds at random (otherwise fold i is a contiguous block).
        seed: None (xpgrad's CPU generator), an int, or a ``numpy.random.Generator``.

    Example::

        for train_idx, val_idx in k_fold(ds, 5, seed=0):
            train_loader = DataLoader(Subset(ds, train_idx), 64, shuffle=True)
    """
    n = n_or_dataset if isinstance(n_or_dataset, numbers.Integral) else len(n_or_dataset)
    n = int(n)
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k_fold: k must be an int, got {k!r}")
    if not 2 <= k <= n:
        raise ValueError(f"k_fold: need 2 <= k <= number of samples, got k={k} for {n} samples")
    order = as_generator(seed).permutation(n) if shuffle else np.arange(n)
    sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
    start = 0
    for size in sizes:
        val = np.sort(order[start:start + size]).astype(np.int64)
        train = np.sort(np.concatenate([order[:start], order[start + size:]])).astype(np.int64)
        start += size
        yield train, val
