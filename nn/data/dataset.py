"""Datasets, subsets, random splits and K-fold cross-validation indices (host side)."""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Iterator, Sequence

import numpy as np

import autograd as ag
import backends
from autograd import Tensor

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split", "k_fold", "as_generator", "as_tensors"]


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
    ``get_batch(indices)`` returning the batch that collating the samples would give (Tensors), for an int64
    index array or a slice: the :class:`~nn.data.DataLoader` then uses it instead of ``__getitem__`` per
    sample. ``get_batch`` may be a property that raises AttributeError when the dataset cannot batch itself
    (e.g. a transform that must run per sample); the loader looks at every pass.
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")


def _take(a, indices):
    """``a[indices]`` as a new array (indices is a host int64 array or a slice)."""
    if isinstance(indices, slice):
        return a[indices].copy()
    if not isinstance(a, np.ndarray):
        indices = backends.backend_of(a).xp.asarray(indices)
    return a[indices]


def as_tensors(batch):
    """``batch`` with every NumPy/CuPy array (in nested tuples, lists and dicts) wrapped as a Tensor on its
    device, sharing memory; Tensors and other leaves are kept."""
    if isinstance(batch, Tensor):
        return batch
    if type(batch) is list:                       # the usual batch: [inputs, targets]
        return [as_tensors(v) for v in batch]
    if backends.is_array(batch):
        return ag.as_tensor(batch)
    if isinstance(batch, (str, bytes, numbers.Number)) or batch is None:
        return batch
    if isinstance(batch, dict):
        return type(batch)((k, as_tensors(v)) for k, v in batch.items())
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(as_tensors(v) for v in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(as_tensors(v) for v in batch)
    return batch


def _data_tensor(a, i: int) -> Tensor:
    """A dataset's column as a Tensor: Tensors as they are, arrays shared (``as_tensor``), lists converted."""
    if isinstance(a, Tensor):
        return a
    try:
        return ag.as_tensor(a)
    except TypeError as e:
        raise TypeError(f"TensorDataset: tensor {i}: {e}") from None


def _is_index(index) -> bool:
    return isinstance(index, numbers.Integral) and not isinstance(index, (bool, np.bool_))


class TensorDataset(Dataset):
    """Samples are rows of equally long tensors: ``dataset[i] == (a[i], b[i], ...)``, as PyTorch's.

    Args:
        *tensors: autograd Tensors (kept as they are: a dataset of CUDA tensors yields CUDA batches), or
            NumPy/CuPy arrays (wrapped with ``autograd.as_tensor``, sharing memory) or lists (converted);
            all with the same first dimension. ``.tensors`` holds them, ``.arrays`` their raw arrays.
        transform: optional callable applied to batches of the first tensor's raw array (e.g. images).
        target_transform: optional callable applied to batches of the second tensor's raw array (e.g. labels).

    ``dataset[i]`` is a tuple of Tensors that are views of row ``i`` (they share memory with the dataset, as
    PyTorch's); ``dataset[slice or int sequence]`` gives the rows at once (a slice as views). With transforms,
    which always see a batch of raw arrays (leading axis = samples; see :mod:`nn.data.transforms`),
    ``dataset[i]`` applies them to ``a[i:i+1]``. :meth:`get_batch` is the DataLoader's fast path.
    """

    def __init__(self, *tensors, transform: Callable | None = None, target_transform: Callable | None = None):
        if not tensors:
            raise ValueError("TensorDataset needs at least one array")
        tensors = tuple(_data_tensor(a, i) for i, a in enumerate(tensors))
        for i, t in enumerate(tensors):
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: array {i} is 0-d; every array needs a first (sample) dimension")
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ValueError("TensorDataset: arrays must have the same length (first dimension), got shapes "
                             + ", ".join(str(tuple(t.shape)) for t in tensors))
        self.tensors = tensors
        self.transform = transform
        self.target_transform = target_transform

    @property
    def arrays(self) -> tuple:
        """The raw NumPy/CuPy arrays of :attr:`tensors` (not copied)."""
        return tuple(t.array for t in self.tensors)

    def __len__(self) -> int:
        return int(self.tensors[0].shape[0])

    def _apply(self, batch: list) -> list:
        if self.transform is not None:
            batch[0] = self.transform(batch[0])
        if self.target_transform is not None and len(batch) > 1:
            batch[1] = self.target_transform(batch[1])
        return batch

    def __getitem__(self, index):
        n = len(self)
        if not _is_index(index):
            if isinstance(index, (slice, Sequence, np.ndarray, Tensor)) and not isinstance(index, (str, bytes)):
                return tuple(self._rows(index))
            raise TypeError(f"TensorDataset indices must be integers, slices or sequences of integers, got "
                            f"{type(index).__name__}")
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"index {index} is out of range for a dataset of {n} samples")
        if i < 0:
            i += n
        if self.transform is None and self.target_transform is None:
            return tuple(ag.as_tensor(a[i, ...]) for a in self.arrays)          # views, as PyTorch's t[i]
        batch = self._apply([a[i:i + 1] for a in self.arrays])
        return tuple(as_tensors(b[0]) for b in batch)

    def _rows(self, index) -> list:
        if isinstance(index, slice):
            batch = [a[index] for a in self.arrays]
        else:
            idx = np.asarray(index.numpy() if isinstance(index, Tensor) else index)
            if idx.dtype == np.bool_ or (idx.size and idx.dtype.kind not in "iu"):
                raise TypeError(f"TensorDataset indices must be integers, got an array of {idx.dtype}")
            n = len(self)
            if idx.size and (idx.min() < -n or idx.max() >= n):
                raise IndexError(f"indices out of range for a dataset of {n} samples")
            batch = [_take(a, idx.astype(np.int64)) for a in self.arrays]
        return [as_tensors(b) for b in self._apply(batch)]

    def get_batch(self, indices) -> list:
        """The batch ``[a[indices], b[indices], ...]`` with the transforms applied, as Tensors on the data's
        device: new arrays, gathered once (``indices``: an int64 array or a slice)."""
        return [as_tensors(b) for b in self._apply([_take(a, indices) for a in self.arrays])]

    def __repr__(self) -> str:
        shapes = ", ".join(f"{tuple(t.shape)} {t.dtype}" for t in self.tensors)
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
    """The dataset's fast batch function ``f(int64 indices or slice) -> batch``, or None when it has none.

    Arrays and Tensors used as datasets are gathered at once (a Tensor batch); datasets give their
    ``get_batch`` (absent, or raising AttributeError, when they cannot batch themselves now)."""
    if backends.is_array(dataset):
        return lambda indices: ag.as_tensor(_take(dataset, indices))
    if isinstance(dataset, Tensor):
        return lambda indices: ag.as_tensor(_take(dataset.array, indices))
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
