"""Transforms for images and batches, as ``torchvision.transforms`` (``import nn.data.transforms as transforms``).

Two kinds share this module:

* **Per-sample image transforms**, torchvision's (the datasets :class:`~nn.data.datasets.MNIST` and
  :class:`~nn.data.datasets.FashionMNIST` apply them to each sample)::

      transform = transforms.Compose([transforms.RandomCrop(28, padding=2), transforms.ToTensor(),
                                      transforms.Normalize((0.1307,), (0.3081,))])

  :class:`ToTensor` turns an image array (uint8 ``(H, W)`` or ``(H, W, C)``, what those datasets give where
  torchvision gives a PIL image) into a float ``(C, H, W)`` Tensor in [0, 1]; :class:`Normalize`,
  :class:`RandomCrop` and :class:`RandomHorizontalFlip` work on such Tensors (``(..., C, H, W)``, so also on
  batches) and, before ``ToTensor``, on image arrays (``(H, W)`` or ``(H, W, C)``).

* **Batch-wise array transforms** (the first axis is the batch), for ``TensorDataset(..., transform=)`` and
  the ``datasets.mnist()`` / ``fashion_mnist()`` functions, which apply them to whole batches at once::

      tf = Compose([ToFloat(), Normalize(0.1307, 0.3081), Flatten()])
      x = tf(images_uint8)            # (N, 28, 28) uint8 -> (N, 784) float32

Every transform takes NumPy or CuPy arrays and Tensors and gives back the same kind (``ToTensor`` always a
Tensor); none modifies its input (except ``Normalize(inplace=True)``) or records an autograd graph. The random
ones draw from xpgrad's CPU generator, so ``autograd.manual_seed`` makes them reproducible.
"""
from __future__ import annotations

import numbers
from typing import Callable, Sequence

import numpy as np

import autograd as ag
import backends
from autograd import Tensor

__all__ = ["Compose", "ToTensor", "Normalize", "Lambda", "RandomCrop", "RandomHorizontalFlip",
           "ToFloat", "NormalizeTo", "normalize_to", "Flatten"]


# --- helpers ---------------------------------------------------------------------------------------------
def _unwrap(x):
    """``(raw array, was_tensor)``: a Tensor's array (not copied), or ``x`` as an array."""
    if isinstance(x, Tensor):
        return x.array, True
    if backends.is_array(x):
        return x, False
    return np.asarray(x), False


def _wrap(a, was_tensor: bool):
    return ag.as_tensor(a) if was_tensor else a


def _rng():
    """xpgrad's CPU generator (the one ``autograd.manual_seed`` seeds), looked up at every draw."""
    return backends.cpu.rng


def _name(x) -> str:
    return "Tensor" if isinstance(x, Tensor) else f"{type(x).__module__}.{type(x).__name__}"


# --- composition -----------------------------------------------------------------------------------------
class Compose:
    """Apply ``transforms`` in order."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"


class Lambda:
    """Wrap any function as a transform (``Lambda(lambda x: x * 2)``)."""

    def __init__(self, lambd: Callable):
        if not callable(lambd):
            raise TypeError(f"Lambda: the argument must be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    @property
    def fn(self) -> Callable:
        return self.lambd

    def __call__(self, x):
        return self.lambd(x)

    def __repr__(self) -> str:
        return f"Lambda({getattr(self.lambd, '__name__', self.lambd)!r})"


# --- torchvision's per-sample transforms -----------------------------------------------------------------
class ToTensor:
    """An image array -> a float Tensor ``(C, H, W)``, as ``torchvision.transforms.ToTensor``.

    ``(H, W)`` images get one channel, ``(H, W, C)`` images are transposed to ``(C, H, W)``. uint8 images are
    scaled to [0, 1] (divided by 255) in the default float dtype (float32); images of any other dtype keep
    their dtype and values (only the layout changes; an ``(H, W)`` image is then shared, not copied). The
    image is a NumPy (or CuPy) array, as :class:`~nn.data.datasets.MNIST` gives; a Tensor is refused (it is
    already converted).
    """

    def __call__(self, pic):
        if isinstance(pic, Tensor):
            raise TypeError("ToTensor: the image is already a Tensor; ToTensor takes an image array (H, W) or "
                            "(H, W, C), as datasets.MNIST gives")
        if not backends.is_array(pic):
            raise TypeError(f"ToTensor: expected an image array (H, W) or (H, W, C), got {_name(pic)}")
        if pic.ndim not in (2, 3):
            raise ValueError(f"ToTensor: an image is (H, W) or (H, W, C), got {pic.ndim} dimensions "
                             f"(shape {tuple(pic.shape)})")
        xp = backends.backend_of(pic).xp
        chw = (pic[None] if pic.ndim == 2 else pic.transpose(2, 0, 1))
        if pic.dtype == np.uint8:
            dt = np.dtype(ag.get_default_dtype())
            img = chw.astype(dt, order="C")
            img /= dt.type(255)
            return ag.as_tensor(img)
        return ag.as_tensor(xp.ascontiguousarray(chw))

    def __repr__(self) -> str:
        return "ToTensor()"


def _stat(v, name: str) -> np.ndarray:
    if isinstance(v, Tensor):
        v = v.numpy()
    a = np.asarray(v, dtype=np.float64)
    if a.ndim > 1:
        raise ValueError(f"Normalize: {name} must be a number or a sequence of per-channel numbers, "
                         f"got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"Normalize: {name} is empty")
    return a


def _per_channel(v: np.ndarray, ndim: int, dtype):
    """A scalar stays a scalar; C values line up with the channel axis: -3 of ``(..., C, H, W)`` (3+ dims), or
    axis 1 of an ``(N, C)`` batch (2 dims)."""
    if v.size == 1:
        return dtype.type(v.reshape(()))
    if ndim >= 3:
        return v.astype(dtype).reshape(v.size, 1, 1)
    if ndim == 2:
        return v.astype(dtype).reshape(1, v.size)
    raise ValueError(f"Normalize: per-channel statistics need an image (..., C, H, W) or a batch (N, C), "
                     f"got {ndim}-d input")


class Normalize:
    """``(x - mean) / std`` per channel, as ``torchvision.transforms.Normalize``.

    Args:
        mean, std: numbers, or one value per channel (``(0.1307,)``, ``[0.485, 0.456, 0.406]``); channels are
            axis -3 of a ``(..., C, H, W)`` image or batch, and axis 1 of an ``(N, C)`` batch of vectors.
        inplace: overwrite the (floating) input instead of returning a new tensor.

    Floating input keeps its dtype (the statistics are converted to it first, as torchvision does). Integer
    input is converted with :class:`ToFloat` first (to [0, 1]), where torchvision raises.
    """

    def __init__(self, mean, std, inplace: bool = False):
        m, s = _stat(mean, "mean"), _stat(std, "std")
        if np.any(s == 0):
            raise ValueError(f"Normalize: std must be non-zero, got {std!r}")
        if m.size != 1 and s.size != 1 and m.size != s.size:
            raise ValueError(f"Normalize: mean and std have {m.size} and {s.size} channels")
        self.mean, self.std, self.inplace = mean, std, bool(inplace)
        self._m, self._s = m, s

    def __call__(self, x):
        a, was_tensor = _unwrap(x)
        xp = backends.backend_of(a).xp
        converted = a.dtype.kind != "f"
        if converted:
            a = ToFloat()(a)
        mean = _per_channel(self._m, a.ndim, a.dtype)
        std = _per_channel(self._s, a.ndim, a.dtype)
        if np.any(np.asarray(std) == 0):
            raise ValueError(f"Normalize: std {self.std!r} is zero in {a.dtype} (division by zero)")
        if isinstance(mean, np.ndarray) and xp is not np:
            mean = xp.asarray(mean)
        if isinstance(std, np.ndarray) and xp is not np:
            std = xp.asarray(std)
        if self.inplace and not converted:
            xp.subtract(a, mean, out=a)
            xp.divide(a, std, out=a)
            if was_tensor:
                x.mark_modified()
            return x
        return _wrap((a - mean) / std, was_tensor)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std}{', inplace=True' if self.inplace else ''})"


def _pair(size, what: str) -> tuple[int, int]:
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (int(size), int(size))
    elif isinstance(size, Sequence) and len(size) == 1:
        size = (size[0], size[0])
    if (not isinstance(size, Sequence) or len(size) != 2
            or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in size)):
        raise ValueError(f"{what}: size must be a positive int or a (height, width) pair, got {size!r}")
    return int(size[0]), int(size[1])


def _padding(padding) -> tuple[int, int, int, int]:
    """torchvision's padding forms -> (left, top, right, bottom)."""
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        p = [int(padding)] * 4
    elif isinstance(padding, Sequence) and len(padding) in (1, 2, 4) and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in padding):
        p = {1: lambda q: [q[0]] * 4, 2: lambda q: [q[0], q[1], q[0], q[1]], 4: list}[len(padding)](
            [int(v) for v in padding])
    else:
        raise ValueError(f"RandomCrop: padding must be an int or a sequence of 1, 2 or 4 ints, got {padding!r}")
    if any(v < 0 for v in p):
        raise ValueError(f"RandomCrop: padding must be non-negative, got {padding!r}")
    return tuple(p)


_PAD_MODES = ("constant", "edge", "reflect", "symmetric")


def _image_axes(x, a) -> tuple[int, int]:
    """The (height, width) axes: (-2, -1) of a Tensor (..., H, W); (0, 1) of an image array (H, W[, C])."""
    if isinstance(x, Tensor):
        if a.ndim < 2:
            raise ValueError(f"expected a Tensor image (..., H, W), got shape {tuple(a.shape)}")
        return a.ndim - 2, a.ndim - 1
    if a.ndim not in (2, 3):
        raise ValueError(f"expected an image array (H, W) or (H, W, C), got shape {tuple(a.shape)}")
    return 0, 1


def _pad(a, axes: tuple[int, int], pads: tuple[int, int, int, int], fill, mode: str):
    """``a`` padded by (left, top, right, bottom) along the (height, width) ``axes``."""
    left, top, right, bottom = pads
    if not any(pads):
        return a
    xp = backends.backend_of(a).xp
    hax, wax = axes
    widths = [(0, 0)] * a.ndim
    widths[hax], widths[wax] = (top, bottom), (left, right)
    if mode != "constant":
        return xp.pad(a, widths, mode=mode)
    shape = list(a.shape)
    shape[hax] += top + bottom
    shape[wax] += left + right
    out = xp.empty(shape, dtype=a.dtype)
    if isinstance(fill, Sequence) and not isinstance(fill, str):
        cax = (2 if a.ndim == 3 else None) if hax == 0 else (hax - 1 if a.ndim >= 3 else None)
        if cax is None or len(fill) not in (1, a.shape[cax]):
            raise ValueError(f"RandomCrop: fill {fill!r} does not match the image's channels (shape {tuple(a.shape)})")
        vals = np.asarray(fill, dtype=np.float64).astype(a.dtype)
        bshape = [1] * a.ndim
        bshape[cax] = vals.size
        out[...] = xp.asarray(vals.reshape(bshape))
    else:
        out[...] = fill
    inner = [slice(None)] * a.ndim
    inner[hax] = slice(top, top + a.shape[hax])
    inner[wax] = slice(left, left + a.shape[wax])
    out[tuple(inner)] = a
    return out


class RandomCrop:
    """A crop of ``size`` at a random place, as ``torchvision.transforms.RandomCrop``.

    Args:
        size: ``(height, width)`` of the crop, or an int for a square one.
        padding: pad the image first: an int (all sides), ``(left/right, top/bottom)`` or
            ``(left, top, right, bottom)``.
        pad_if_needed: pad an image smaller than ``size`` (on both sides, by the shortfall) instead of raising.
        fill: the padding value for ``padding_mode="constant"``: a number, or one per channel.
        padding_mode: ``"constant"``, ``"edge"``, ``"reflect"`` or ``"symmetric"``.

    Works on Tensors ``(..., H, W)`` (every leading index gets the same crop) and image arrays ``(H, W)`` or
    ``(H, W, C)``. The offsets are two draws from xpgrad's CPU generator (none when the crop is the whole
    image); the crop is a view of the (padded) image.
    """

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill=0, padding_mode: str = "constant"):
        self.size = _pair(size, "RandomCrop")
        self.padding = None if padding is None else _padding(padding)
        if padding_mode not in _PAD_MODES:
            raise ValueError(f"RandomCrop: padding_mode must be one of {_PAD_MODES}, got {padding_mode!r}")
        self.pad_if_needed, self.fill, self.padding_mode = bool(pad_if_needed), fill, padding_mode

    def __call__(self, img):
        a, was_tensor = _unwrap(img)
        hax, wax = _image_axes(img, a)
        if self.padding is not None:
            a = _pad(a, (hax, wax), self.padding, self.fill, self.padding_mode)
        th, tw = self.size
        if self.pad_if_needed:
            dw, dh = max(0, tw - a.shape[wax]), max(0, th - a.shape[hax])
            a = _pad(a, (hax, wax), (dw, dh, dw, dh), self.fill, self.padding_mode)
        h, w = a.shape[hax], a.shape[wax]
        if h < th or w < tw:
            raise ValueError(f"RandomCrop: crop size {(th, tw)} is larger than the (padded) image {(h, w)}")
        if (h, w) == (th, tw):
            i = j = 0
        else:
            rng = _rng()
            i = int(rng.integers(0, h - th + 1))
            j = int(rng.integers(0, w - tw + 1))
        sl = [slice(None)] * a.ndim
        sl[hax], sl[wax] = slice(i, i + th), slice(j, j + tw)
        return _wrap(a[tuple(sl)], was_tensor)

    def __repr__(self) -> str:
        return (f"RandomCrop(size={self.size}, padding={self.padding}, pad_if_needed={self.pad_if_needed}, "
                f"fill={self.fill}, padding_mode={self.padding_mode!r})")


class RandomHorizontalFlip:
    """Mirror left-right with probability ``p``, as ``torchvision.transforms.RandomHorizontalFlip``.

    One draw from xpgrad's CPU generator per call; the flip is a new array (Tensors ``(..., H, W)``: the last
    axis; image arrays ``(H, W[, C])``: axis 1). Not flipped, the input is returned as it is.
    """

    def __init__(self, p: float = 0.5):
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)

    def __call__(self, img):
        a, was_tensor = _unwrap(img)
        _, wax = _image_axes(img, a)
        if not _rng().random() < self.p:
            return img
        xp = backends.backend_of(a).xp
        return _wrap(xp.ascontiguousarray(xp.flip(a, axis=wax)), was_tensor)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


# --- batch-wise array transforms -------------------------------------------------------------------------
class ToFloat:
    """Integer images -> float in [0, 1] (divided by the dtype's maximum, 255 for uint8); floats are cast.

    Batch-wise: no axis is moved (use :class:`ToTensor` for a single image to ``(C, H, W)``).

    Args:
        dtype: output dtype (float32 by default).
    """

    def __init__(self, dtype="float32"):
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"ToFloat: dtype must be floating, got {self.dtype}")

    def __call__(self, x):
        a, was_tensor = _unwrap(x)
        if a.dtype.kind in "iu":
            scale = self.dtype.type(1.0 / np.iinfo(a.dtype).max)
            out = a.astype(self.dtype) * scale
        else:
            out = a.astype(self.dtype, copy=True)
        return _wrap(out, was_tensor)

    def __repr__(self) -> str:
        return f"ToFloat({self.dtype.name})"


class NormalizeTo:
    """Map pixel values linearly onto ``[low, high]``: uint8 (or other integer) input from its full range,
    floating input from [0, 1]. ``NormalizeTo(-1, 1)`` turns uint8 images into floats in [-1, 1]."""

    def __init__(self, low: float = 0.0, high: float = 1.0, dtype="float32"):
        if not high > low:
            raise ValueError(f"NormalizeTo: need low < high, got {low}, {high}")
        self.low, self.high = float(low), float(high)
        self._to_float = ToFloat(dtype)

    def __call__(self, x):
        a, was_tensor = _unwrap(x)
        a = self._to_float(a)
        t = a.dtype.type
        return _wrap(a * t(self.high - self.low) + t(self.low), was_tensor)

    def __repr__(self) -> str:
        return f"NormalizeTo({self.low}, {self.high})"


def normalize_to(low: float, high: float, dtype="float32") -> NormalizeTo:
    """Shorthand for :class:`NormalizeTo`: ``normalize_to(-1, 1)``."""
    return NormalizeTo(low, high, dtype)


class Flatten:
    """(N, d1, d2, ...) -> (N, d1*d2*...) (the batch axis is kept)."""

    def __call__(self, x):
        a, was_tensor = _unwrap(x)
        if a.ndim < 1:
            raise ValueError("Flatten: input needs a batch axis")
        return _wrap(a.reshape(a.shape[0], -1), was_tensor)

    def __repr__(self) -> str:
        return "Flatten()"
