"""MNIST and Fashion-MNIST from their IDX files, as torchvision's datasets and as whole arrays.

torchvision's classes (``nn.data.datasets`` stands for ``torchvision.datasets``)::

    from nn.data import DataLoader, datasets, transforms
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = datasets.MNIST("./data", train=True, transform=tf, download=True)
    image, target = train[0]                         # float32 Tensor (1, 28, 28), int
    for images, labels in DataLoader(train, batch_size=64, shuffle=True): ...   # (64, 1, 28, 28), (64,) int64

:class:`MNIST` and :class:`FashionMNIST` give each sample as torchvision does, except that the image is a uint8
``(28, 28)`` NumPy array where torchvision gives a PIL image (xpgrad needs no PIL; ``transforms.ToTensor()``
takes the array).
Their transforms run per sample; ``ToTensor`` followed by ``Normalize`` (or no transform) is recognised and
run on whole batches instead, with the same values, so a DataLoader over them is as fast as over arrays.

The whole-array functions (batch-wise transforms, see :mod:`nn.data.transforms`)::

    from nn.data import transforms as T
    train = datasets.mnist("train")                  # ImageDataset: .images uint8 (60000, 28, 28), .labels int64
    x, y = train.float_arrays(flatten=True)          # float32 (60000, 784) in [0, 1], int64 (60000,)
    train = datasets.fashion_mnist("train", transform=T.Compose([T.ToFloat(), T.Flatten()]))
    for xb, yb in DataLoader(train, 64, shuffle=True, device="cuda"): ...

Where the files are looked for, in order (the first directory holding both files of the split wins):

1. ``root=`` (the directory itself, then ``root/<name>/``, then torchvision's ``root/<Name>/raw/``);
2. ``$XPGRAD_DATA/<name>/`` (and ``$XPGRAD_DATA/<Name>/raw/``);
3. the user cache ``$XDG_CACHE_HOME/xpgrad/<name>/`` (default ``~/.cache/xpgrad/<name>/``);
4. ``/usr/share/datasets/<name>/`` (Debian's ``dataset-fashion-mnist`` package installs Fashion-MNIST there);
5. with ``download=True``: a download from the canonical mirrors into the user cache, each file checked
   against its published MD5 and moved into place atomically (a failed or mismatched download leaves
   no file behind; partial files of a killed download are removed by the next download of that file).

``<name>`` is ``mnist`` or ``fashion-mnist``. File names are the canonical ones
(``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``), uncompressed or with ``.gz`` (the ``.idx3-ubyte`` spelling of the
unzipped originals is accepted too). When nothing is found, one :class:`DatasetNotFoundError` lists
every place tried and every way to provide the data. A corrupt, truncated or inconsistent file raises
:class:`~nn.data.idx.IDXFormatError` naming the file.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

import autograd as ag
import backends
from autograd import Tensor

from ..serialization import create_temp
from . import transforms as T
from .dataset import Dataset, TensorDataset, _is_index, _take
from .idx import IDXFormatError, read_idx_images, read_idx_labels
from .loader import default_collate

__all__ = ["MNIST", "FashionMNIST", "ImageDataset", "DatasetNotFoundError", "ChecksumError", "mnist",
           "fashion_mnist", "load", "cache_dir", "download", "find", "SPECS"]

SYSTEM_DIRS: tuple[str, ...] = ("/usr/share/datasets",)   # searched as <dir>/<name>/
DOWNLOAD_TIMEOUT = 30.0                                   # seconds per network read


class DatasetNotFoundError(FileNotFoundError):
    """No copy of a dataset was found anywhere and none could be downloaded."""


class ChecksumError(OSError):
    """A downloaded file does not have its published checksum."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str                      # directory name under the search roots
    title: str
    torch_dir: str                 # torchvision's layout: <root>/<torch_dir>/raw/
    mirrors: tuple[str, ...]
    md5: dict                      # canonical .gz file name -> MD5 of the published file
    classes: tuple[str, ...]
    mean: float                    # training-set pixel mean and std on the [0, 1] scale
    std: float
    image_shape: tuple[int, int] = (28, 28)
    apt_package: str | None = None


# MD5 sums of the published .gz files, as listed by torchvision's MNIST/FashionMNIST `resources`
# (and by the Fashion-MNIST README). Debian's dataset-fashion-mnist recompresses the files, so its .gz
# files have other MD5s: local copies are validated by structure (magic, dims, sizes), not by checksum.
SPECS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist", title="MNIST", torch_dir="MNIST",
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        md5={"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
             "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
             "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
             "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
        classes=tuple(str(i) for i in range(10)), mean=0.1307, std=0.3081),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist", title="Fashion-MNIST", torch_dir="FashionMNIST",
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        md5={"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
             "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
             "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
             "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"),
        mean=0.2860, std=0.3530, apt_package="dataset-fashion-mnist"),
}
_ALIASES = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "fashionmnist": "fashion-mnist"}
_PREFIX = {"train": "train", "test": "t10k"}


class ImageDataset(TensorDataset):
    """A labelled image dataset: ``.images`` (N, H, W) uint8 and ``.labels`` (N,) int64.

    ``dataset[i]`` is ``(image, label)`` as Tensors (a :class:`TensorDataset`), transformed when
    ``transform``/``target_transform`` are set (they are applied batch-wise, also by the DataLoader's fast
    path; for torchvision's per-sample transforms use :class:`MNIST` / :class:`FashionMNIST`). ``.path`` is
    the directory the files were read from, ``.classes`` the class names, ``.mean``/``.std`` the training-set
    pixel statistics on the [0, 1] scale.
    """

    def __init__(self, images, labels, *, name: str, split: str, classes=(), path=None, mean=None, std=None,
                 transform: Callable | None = None, target_transform: Callable | None = None):
        super().__init__(images, labels, transform=transform, target_transform=target_transform)
        self.name, self.split, self.classes = name, split, tuple(classes)
        self.path = None if path is None else Path(path)
        self.mean, self.std = mean, std

    @property
    def images(self) -> np.ndarray:
        """The images as a raw uint8 array (N, H, W) (not copied)."""
        return self.tensors[0].array

    @property
    def labels(self) -> np.ndarray:
        """The labels as a raw int64 array (N,) (not copied)."""
        return self.tensors[1].array

    def float_arrays(self, flatten: bool = False, normalize: str | None = "unit") -> tuple[np.ndarray, np.ndarray]:
        """``(images, labels)`` as float32 and int64 arrays, for whole-array training loops.

        Args:
            flatten: images as (N, H*W) instead of (N, H, W).
            normalize: ``"unit"`` -> [0, 1]; ``"symmetric"`` -> [-1, 1]; ``"standard"`` -> ``(x - mean) / std``
                with the training-set statistics (``.mean``/``.std``); None -> raw 0..255 values as floats.
        """
        if normalize == "unit":
            scale, shift = 1 / 255, 0.0
        elif normalize == "symmetric":
            scale, shift = 1 / 127.5, -1.0
        elif normalize == "standard":
            if self.mean is None or self.std is None:
                raise ValueError(f"{self.name}: no mean/std known for normalize='standard'")
            scale, shift = 1 / (255 * self.std), -self.mean / self.std
        elif normalize is None:
            scale, shift = 1.0, 0.0
        else:
            raise ValueError(f"normalize must be 'unit', 'symmetric', 'standard' or None, got {normalize!r}")
        if self.images.dtype == np.uint8:     # one table look-up per pixel
            x = (np.arange(256) * scale + shift).astype(np.float32)[self.images]
        else:
            x = (self.images.astype(np.float64) * scale + shift).astype(np.float32)
        if flatten:
            x = x.reshape(len(x), -1)
        return x, self.labels.copy()

    def __repr__(self) -> str:
        where = f", from {self.path}" if self.path is not None else ""
        return f"ImageDataset({self.name!r}, split={self.split!r}, {len(self)} images {self.images.shape[1:]}{where})"


# --- where to look ---------------------------------------------------------------------------------------
def cache_dir(name: str | None = None) -> Path:
    """The user cache: ``$XDG_CACHE_HOME/xpgrad`` (default ``~/.cache/xpgrad``), or its ``<name>`` subfolder."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    root = root / "xpgrad"
    return root / _spec(name).name if name is not None else root


def _spec(name: str) -> DatasetSpec:
    key = _ALIASES.get(str(name).lower().replace("_", "-"))
    if key is None:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(SPECS)}")
    return SPECS[key]


def _split_prefix(split: str) -> str:
    if split not in _PREFIX:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return _PREFIX[split]


def _file_names(prefix: str, kind: str) -> list[str]:
    """Accepted names of one file, preferred first: uncompressed (faster to read), then .gz."""
    idx = "idx3" if kind == "images" else "idx1"
    bases = [f"{prefix}-{kind}-{idx}-ubyte", f"{prefix}-{kind}.{idx}-ubyte"]
    return [b + ext for ext in ("", ".gz") for b in bases]


def _locations(spec: DatasetSpec, root) -> list[tuple[str, list[Path]]]:
    """(label, directories) for each search step before downloading, in order."""
    subdirs = list(dict.fromkeys([spec.name, spec.name.replace("-", "_"), spec.torch_dir, f"{spec.torch_dir}/raw"]))
    steps = []
    if root is not None:
        r = Path(os.path.expanduser(os.fspath(root)))
        steps.append(("root= argument", [r] + [r / s for s in subdirs]))
    else:
        steps.append(("root= argument", []))
    env = os.environ.get("XPGRAD_DATA", "")
    if env:
        e = Path(os.path.expanduser(env))
        steps.append(("$XPGRAD_DATA", [e / s for s in subdirs]))
    else:
        steps.append(("$XPGRAD_DATA", []))
    steps.append(("user cache", [cache_dir(spec.name)]))
    steps.append(("system datasets", [Path(d) / spec.name for d in SYSTEM_DIRS]))
    return steps


def _find_in(directory: Path, prefix: str) -> tuple[Path | None, Path | None]:
    def first(kind):
        for n in _file_names(prefix, kind):
            p = directory / n
            if p.is_file():
                return p
        return None
    return first("images"), first("labels")


def find(name: str, split: str = "train", root=None) -> tuple[Path, Path] | None:
    """The (images, labels) files that :func:`load` would read for ``split``, or None (no download)."""
    spec, prefix = _spec(name), _split_prefix(split)
    for _, dirs in _locations(spec, root):
        for d in dirs:
            images, labels = _find_in(d, prefix)
            if images is not None and labels is not None:
                return images, labels
    return None


# --- downloading -------------------------------------------------------------------------------------------
def _fetch(url: str, fileobj, timeout: float) -> None:
    """Copy ``url`` into the open binary ``fileobj`` (replaced in tests; never called by them)."""
    req = urllib.request.Request(url, headers={"User-Agent": "xpgrad"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        shutil.copyfileobj(resp, fileobj, 1 << 20)


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download_file(url: str, dest: Path, md5: str) -> None:
    """Download ``url`` to ``dest`` via a temporary file in the same folder; ``os.replace`` only once the
    MD5 matches, so ``dest`` is either absent or complete and verified. Partial files that a killed download
    of ``dest`` left behind (``.<name>.<host>.<pid>.<random>.part``) are removed first (see
    :func:`nn.serialization.remove_stale_temps`)."""
    fd, tmp = create_temp(dest, ".part")
    try:
        with os.fdopen(fd, "wb") as f:
            _fetch(url, f, DOWNLOAD_TIMEOUT)
        got = _md5(Path(tmp))
        if got != md5:
            raise ChecksumError(f"checksum mismatch for {url}: MD5 {got}, expected {md5}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _download_split(spec: DatasetSpec, split: str, dest: Path) -> list[str]:
    """Download the split's two files into ``dest``; returns the failure messages (empty on success)."""
    prefix = _split_prefix(split)
    created = [d for d in (dest, *dest.parents) if not d.exists()]   # deepest first
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return [f"cannot create {dest}: {e}"]
    errors = _download_files(spec, prefix, dest)
    if errors:
        for d in created:         # leave no empty folders behind; rmdir refuses non-empty ones
            try:
                d.rmdir()
            except OSError:
                break
    return errors


def _download_files(spec: DatasetSpec, prefix: str, dest: Path) -> list[str]:
    errors = []
    for kind in ("images", "labels"):
        have = _find_in(dest, prefix)[0 if kind == "images" else 1]
        if have is not None:
            continue
        fname = _file_names(prefix, kind)[2]          # canonical .gz name
        for mirror in spec.mirrors:
            url = mirror + fname
            try:
                print(f"xpgrad: downloading {url} -> {dest}", file=sys.stderr)
                _download_file(url, dest / fname, spec.md5[fname])
                break
            except Exception as e:     # URLError, timeouts, HTTP errors, ChecksumError...: try the next
                errors.append(f"{url}: {e}")
        else:
            return errors
    return []


def download(name: str, splits=("train", "test")) -> Path:
    """Download ``name`` (all ``splits``) into the user cache now; returns the folder. Raises OSError."""
    spec = _spec(name)
    dest = cache_dir(spec.name)
    for split in (splits,) if isinstance(splits, str) else splits:
        errors = _download_split(spec, split, dest)
        if errors:
            raise OSError(f"downloading {spec.title} {split!r} failed:\n  " + "\n  ".join(errors))
    return dest


# --- loading -----------------------------------------------------------------------------------------------
def _read(spec: DatasetSpec, split: str, images_path: Path, labels_path: Path, **kw) -> ImageDataset:
    images = read_idx_images(images_path, spec.image_shape)
    labels = read_idx_labels(labels_path)
    if len(images) != len(labels):
        raise IDXFormatError(f"{spec.title} {split!r}: {images_path} holds {len(images)} images but {labels_path} "
                             f"holds {len(labels)} labels; the files do not belong together")
    if labels.size and labels.max() >= len(spec.classes):
        raise IDXFormatError(f"{labels_path}: label {int(labels.max())} out of range for {len(spec.classes)} classes")
    return ImageDataset(images, labels, name=spec.name, split=split, classes=spec.classes,
                        path=images_path.parent, mean=spec.mean, std=spec.std, **kw)


def _not_found(spec: DatasetSpec, split: str, tried: list[str]) -> DatasetNotFoundError:
    prefix = _split_prefix(split)
    files = f"{prefix}-images-idx3-ubyte[.gz] and {prefix}-labels-idx1-ubyte[.gz]"
    fix = [f"pass root='/path/to/dir' holding the files to {spec.name.replace('-', '_')}(...)",
           f"set XPGRAD_DATA=/path/to/data with the files in /path/to/data/{spec.name}/",
           f"put the files into {cache_dir(spec.name)}/"]
    if spec.apt_package:
        fix.append(f"on Debian/Ubuntu: sudo apt-get install {spec.apt_package} "
                   f"(installs them into {SYSTEM_DIRS[0]}/{spec.name}/)")
    else:
        fix.append("(Debian packages only Fashion-MNIST: apt-get install dataset-fashion-mnist, then "
                   "use fashion_mnist() instead)")
    fix.append(f"download them: call with download=True while online (from {', '.join(spec.mirrors)}), "
               "or fetch them by hand from there")
    return DatasetNotFoundError(
        f"{spec.title} {split!r} split not found: need {files}.\nLooked in, in this order:\n  - "
        + "\n  - ".join(tried) + "\nTo provide it, do one of:\n  - " + "\n  - ".join(fix))


def load(name: str, split: str = "train", root=None, download: bool = True,
         transform: Callable | None = None, target_transform: Callable | None = None) -> ImageDataset:
    """Load ``split`` (``"train"`` or ``"test"``) of dataset ``name`` (``"mnist"`` or ``"fashion-mnist"``).

    See the module docstring for the search order. Raises :class:`DatasetNotFoundError` when no copy is
    found or downloaded, :class:`~nn.data.idx.IDXFormatError` when a found file is corrupt.
    """
    spec, prefix = _spec(name), _split_prefix(split)
    kw = dict(transform=transform, target_transform=target_transform)
    tried = []
    for label, dirs in _locations(spec, root):
        if not dirs:
            tried.append(f"{label}: not given" if label.startswith("root") else f"{label}: not set")
            continue
        for d in dirs:
            images, labels = _find_in(d, prefix)
            if images is not None and labels is not None:
                return _read(spec, split, images, labels, **kw)
            if images is not None or labels is not None:
                have = images or labels
                tried.append(f"{d} ({label}): incomplete, has {have.name} but not its "
                             f"{'labels' if images else 'images'} file")
            else:
                tried.append(f"{d} ({label}): {'no files' if d.is_dir() else 'no such directory'}")
    dest = cache_dir(spec.name)
    if not download:
        tried.append(f"download into {dest}: skipped (download=False)")
    else:
        errors = _download_split(spec, split, dest)
        if not errors:
            images, labels = _find_in(dest, prefix)
            return _read(spec, split, images, labels, **kw)
        tried.append(f"download into {dest}: failed:\n      " + "\n      ".join(errors))
    raise _not_found(spec, split, tried)


def mnist(split: str = "train", root=None, download: bool = True, transform: Callable | None = None,
          target_transform: Callable | None = None) -> ImageDataset:
    """MNIST handwritten digits: ``.images`` uint8 (60000 or 10000, 28, 28), ``.labels`` int64 in 0..9.

    Args:
        split: ``"train"`` (60,000) or ``"test"`` (10,000).
        root: a directory to look in first.
        download: fetch into the user cache when no local copy is found (network errors fall through to
            one :class:`DatasetNotFoundError` listing every option).
        transform, target_transform: batch-wise transforms for images and labels
            (:mod:`nn.data.transforms`).
    """
    return load("mnist", split, root, download, transform, target_transform)


def fashion_mnist(split: str = "train", root=None, download: bool = True, transform: Callable | None = None,
                  target_transform: Callable | None = None) -> ImageDataset:
    """Fashion-MNIST (Zalando article images, 10 classes); same layout and arguments as :func:`mnist`.

    On Debian/Ubuntu ``apt-get install dataset-fashion-mnist`` provides the files.
    """
    return load("fashion-mnist", split, root, download, transform, target_transform)


# --- torchvision's classes ---------------------------------------------------------------------------------
def _steps(transform) -> list:
    if type(transform) is T.Compose:
        return [s for t in transform.transforms for s in _steps(t)]
    return [transform]


def _pixel_table(transform) -> np.ndarray | None:
    """For ``ToTensor()`` followed by any ``Normalize``s (every pixel transformed on its own), the transform's
    value for each of the 256 uint8 pixel values, computed by the transform itself (so a batch looked up in
    the table equals the stacked per-sample results bit for bit); None for any other transform."""
    steps = _steps(transform)
    if not steps or type(steps[0]) is not T.ToTensor or any(type(s) is not T.Normalize for s in steps[1:]):
        return None
    out = transform(np.arange(256, dtype=np.uint8).reshape(16, 16))
    if not isinstance(out, Tensor) or tuple(out.shape) != (1, 16, 16):
        return None                                  # e.g. 3-channel statistics broadcast onto one channel
    return out.numpy().reshape(256)


def _column(value, what: str, ndim: int) -> Tensor:
    t = value if isinstance(value, Tensor) else ag.as_tensor(value)
    if t.ndim != ndim:
        raise ValueError(f"{what} must have {ndim} dimensions, got shape {tuple(t.shape)}")
    return t


class MNIST(Dataset):
    """The MNIST handwritten digits, as ``torchvision.datasets.MNIST``.

    Args:
        root: a directory to look in first: the IDX files themselves, ``root/mnist/`` or torchvision's
            ``root/MNIST/raw/`` (None: skip). Then ``$XPGRAD_DATA``, the user cache and
            ``/usr/share/datasets`` are searched (see :mod:`nn.data.datasets`).
        train: the 60,000 training images, else the 10,000 test images.
        transform: applied to each image, a uint8 ``(28, 28)`` NumPy array (torchvision: a PIL image), e.g.
            ``transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])``.
        target_transform: applied to each target, an int.
        download: when no local copy is found, download the files into the user cache (MD5-checked).
            Without it (the default, as torchvision) a missing dataset raises :class:`DatasetNotFoundError`
            listing every place looked in and every way to provide the files.

    ``dataset[i]`` is ``(image, target)`` after the transforms. ``.data`` is a uint8 Tensor (N, 28, 28),
    ``.targets`` an int64 Tensor (N,) (both may be replaced, e.g. by a slice of themselves), ``.classes`` the
    class names, ``.class_to_idx`` their indices, ``.path`` the folder the files were read from.

    A DataLoader batches it at once (one gather, no per-sample Python) when ``transform`` is None (uint8
    batches) or ``ToTensor()`` followed by ``Normalize``s (float batches (N, 1, 28, 28), looked up in a
    256-entry table the transform itself computed: the same values as per sample); any other transform
    (random ones included) runs per sample. ``target_transform`` always runs per target.
    """

    name = "mnist"
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]

    def __init__(self, root=None, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False):
        self.root = root
        self.train = bool(train)
        self.transform, self.target_transform = transform, target_transform
        ds = load(self.name, "train" if self.train else "test", root=root, download=download)
        self.path = ds.path
        self.data, self.targets = ds.images, ds.labels
        self.classes = list(self.classes)

    @property
    def data(self) -> Tensor:
        """The images: uint8 Tensor (N, H, W)."""
        return self._images

    @data.setter
    def data(self, value) -> None:
        self._images = _column(value, f"{type(self).__name__}.data", 3)

    @property
    def targets(self) -> Tensor:
        """The class indices: int64 Tensor (N,)."""
        return self._targets

    @targets.setter
    def targets(self, value) -> None:
        self._targets = _column(value, f"{type(self).__name__}.targets", 1)

    @property
    def class_to_idx(self) -> dict:
        return {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return int(self._images.shape[0])

    def __getitem__(self, index):
        if not _is_index(index):
            raise TypeError(f"{type(self).__name__} indices must be integers, got {type(index).__name__}")
        n = len(self)
        if not -n <= int(index) < n:
            raise IndexError(f"index {index} is out of range for a dataset of {n} samples")
        img = self._images.array[int(index)].copy()          # uint8 (H, W), the caller's own
        target = int(self._targets.array[int(index)])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    @property
    def get_batch(self):
        """The DataLoader's fast path: present when the transform is None or ToTensor then Normalize."""
        images = self._images.array
        if self.transform is None:
            table = None
        else:
            table = _pixel_table(self.transform) if images.dtype == np.uint8 else None
            if table is None:
                raise AttributeError("get_batch")          # a per-sample transform: the loader indexes
            table = backends.backend_of(images).xp.asarray(table)

        def batch(indices) -> list:
            imgs = self._images.array
            if table is None:
                x = _take(imgs, indices)
            else:
                xp = backends.backend_of(imgs).xp
                picked = imgs[indices] if isinstance(indices, slice) else xp.take(imgs, xp.asarray(indices), axis=0)
                x = xp.take(table, picked)[:, None]             # (N, 1, H, W): a table look-up per pixel
            y = _take(self._targets.array, indices)
            if self.target_transform is None:
                y = ag.as_tensor(y.astype(np.int64, copy=False))
            else:
                y = default_collate([self.target_transform(int(v)) for v in y.tolist()])
            return [ag.as_tensor(x), y]
        return batch

    def __repr__(self) -> str:
        shape = "x".join(str(d) for d in self._images.shape[1:])
        lines = [f"{type(self).__name__}: {len(self)} images {shape}, {'train' if self.train else 'test'} split, "
                 f"from {self.path}"]
        if self.transform is not None:
            lines.append(f"    transform: {self.transform!r}")
        if self.target_transform is not None:
            lines.append(f"    target_transform: {self.target_transform!r}")
        return "\n".join(lines)


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando's article images, 10 classes), as ``torchvision.datasets.FashionMNIST``: the same
    arguments and behaviour as :class:`MNIST` (``root/FashionMNIST/raw/`` and ``root/fashion-mnist/`` are
    looked in; on Debian/Ubuntu ``apt-get install dataset-fashion-mnist`` provides the files)."""

    name = "fashion-mnist"
    classes = list(SPECS["fashion-mnist"].classes)
