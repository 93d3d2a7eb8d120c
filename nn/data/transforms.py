"""Batch-wise transforms on host (NumPy) or CuPy arrays.

Every transform takes an array whose first axis is the batch and never modifies its input, so the
same transform serves ``dataset[i]`` (a batch of one) and a DataLoader's batches::

    tf = Compose([ToFloat(), Normalize(0.1307, 0.3081), Flatten()])
    x = tf(images_uint8)            # (N, 28, 28) uint8 -> (N, 784) float32
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

import backends

__all__ = ["Compose", "ToFloat", "Normalize", "NormalizeTo", "normalize_to", "Flatten", "Lambda"]


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"


class ToFloat:
    """Integer images -> float in [0, 1] (divided by the dtype's maximum, 255 for uint8); floats are cast.

    Args:
        dtype: output dtype (float32 by default).
    """

    def __init__(self, dtype="float32"):
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"ToFloat: dtype must be floating, got {self.dtype}")

    def __call__(self, x):
        xp = backends.backend_of(x).xp
        x = xp.asarray(x)
        if x.dtype.kind in "iu":
            scale = self.dtype.type(1.0 / np.iinfo(x.dtype).max)
            return x.astype(self.dtype) * scale
        if x.dtype.kind == "b":
            return x.astype(self.dtype)
        return x.astype(self.dtype, copy=True)

    def __repr__(self) -> str:
        return f"ToFloat({self.dtype.name})"


def _per_channel(v, ndim: int, dtype):
    """Scalar stays scalar; a vector of C values lines up with axis 1 of an (N, C, ...) batch."""
    v = np.asarray(v, dtype=dtype)
    if v.ndim == 0 or v.size == 1:
        return dtype.type(v.reshape(()))
    if v.ndim != 1:
        raise ValueError(f"Normalize: mean/std must be scalars or 1-D per-channel vectors, got shape {v.shape}")
    if ndim < 2:
        raise ValueError(f"Normalize: per-channel statistics need a batch (N, C, ...), got {ndim}-d input")
    return v.reshape((1, v.size) + (1,) * (ndim - 2))


class Normalize:
    """``(x - mean) / std``; scalars, or per-channel vectors for (N, C, H, W) batches.

    Integer input is converted with :class:`ToFloat` first (so statistics refer to the [0, 1] scale, as
    in torchvision); floating input keeps its dtype.
    """

    def __init__(self, mean, std):
        std_arr = np.asarray(std, dtype=np.float64)
        if np.any(std_arr == 0):
            raise ValueError("Normalize: std must be non-zero")
        self.mean, self.std = mean, std

    def __call__(self, x):
        xp = backends.backend_of(x).xp
        x = xp.asarray(x)
        if x.dtype.kind != "f":
            x = ToFloat()(x)
        mean = _per_channel(self.mean, x.ndim, x.dtype)
        std = _per_channel(self.std, x.ndim, x.dtype)
        if isinstance(mean, np.ndarray):
            mean, std = xp.asarray(mean), xp.asarray(std)
        return (x - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class NormalizeTo:
    """Map pixel values linearly onto ``[low, high]``: uint8 (or other integer) input from its full range,
    floating input from [0, 1]. ``NormalizeTo(-1, 1)`` turns uint8 images into floats in [-1, 1]."""

    def __init__(self, low: float = 0.0, high: float = 1.0, dtype="float32"):
        if not high > low:
            raise ValueError(f"NormalizeTo: need low < high, got {low}, {high}")
        self.low, self.high = float(low), float(high)
        self._to_float = ToFloat(dtype)

    def __call__(self, x):
        x = self._to_float(x)
        t = x.dtype.type
        return x * t(self.high - self.low) + t(self.low)

    def __repr__(self) -> str:
        return f"NormalizeTo({self.low}, {self.high})"


def normalize_to(low: float, high: float, dtype="float32") -> NormalizeTo:
    """Shorthand for :class:`NormalizeTo`: ``normalize_to(-1, 1)``."""
    return NormalizeTo(low, high, dtype)


class Flatten:
    """(N, d1, d2, ...) -> (N, d1*d2*...) (the batch axis is kept)."""

    def __call__(self, x):
        if x.ndim < 1:
            raise ValueError("Flatten: input needs a batch axis")
        return x.reshape(x.shape[0], -1)

    def __repr__(self) -> str:
        return "Flatten()"


class Lambda:
    """Wrap any function of a batch as a transform."""

    def __init__(self, fn: Callable):
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)

    def __repr__(self) -> str:
        return f"Lambda({getattr(self.fn, '__name__', self.fn)!r})"
