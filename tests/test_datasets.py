"""IDX reading, MNIST / Fashion-MNIST search order, checksummed downloads and error messages.

Every test runs isolated from the machine: $XPGRAD_DATA unset, the user cache and the system dataset
folder redirected to temporary directories, and the network fetcher replaced so that nothing is ever
downloaded. Only the last test reads the real Debian copy of Fashion-MNIST, when it is installed.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import autograd as ag
from nn.data import DataLoader, datasets
from nn.data import transforms as T
from nn.data.datasets import ChecksumError, DatasetNotFoundError, ImageDataset
from nn.data.idx import IDXFormatError, read_idx, read_idx_images, read_idx_labels, write_idx

_REAL_SYSTEM_DIRS = datasets.SYSTEM_DIRS
_PREFIX = {"train": "train", "test": "t10k"}


class OfflineFetch:
    """Stands in for the network: records URLs and fails like an offline machine."""

    def __init__(self):
        self.urls = []

    def __call__(self, url, fileobj, timeout):
        self.urls.append(url)
        raise urllib.error.URLError("offline in tests")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("XPGRAD_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", (str(tmp_path / "system"),))
    fetch = OfflineFetch()
    monkeypatch.setattr(datasets, "_fetch", fetch)
    return fetch


def make_split(directory, split="train", n=5, gz=True, seed=0, names="canonical", n_labels=None, label_max=9):
    """Write a small IDX image/label pair; returns (images, labels)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, label_max + 1, n if n_labels is None else n_labels).astype(np.uint8)
    p = _PREFIX[split]
    sep = "-" if names == "canonical" else "."
    ext = ".gz" if gz else ""
    write_idx(directory / f"{p}-images{sep}idx3-ubyte{ext}", images)
    write_idx(directory / f"{p}-labels{sep}idx1-ubyte{ext}", labels)
    return images, labels


def idx_bytes(array, compress=True, tmp=None):
    path = Path(tmp) / ("x.gz" if compress else "x")
    write_idx(path, array)
    data = path.read_bytes()
    path.unlink()
    return data


# --- the IDX format --------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("gz", [False, True])
def test_idx_roundtrip(tmp_path, dtype, gz):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, a)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative and b.shape == a.shape
    np.testing.assert_array_equal(a, b)
    b[0] = 0   # writable, owns its memory


def test_idx_header_is_big_endian(tmp_path):
    labels = np.array([3, 1, 4], np.uint8)
    write_idx(tmp_path / "l", labels)
    raw = (tmp_path / "l").read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x01" and raw[4:8] == (3).to_bytes(4, "big") and raw[8:] == bytes([3, 1, 4])
    images = np.zeros((2, 28, 28), np.uint8)
    write_idx(tmp_path / "i", images)
    assert (tmp_path / "i").read_bytes()[:16] == bytes.fromhex("00000803" "00000002" "0000001c" "0000001c")
    assert read_idx_labels(tmp_path / "l").dtype == np.int64
    assert read_idx_images(tmp_path / "i", (28, 28)).shape == (2, 28, 28)


def test_gzip_detected_by_content_not_name(tmp_path):
    a = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    write_idx(tmp_path / "plain-name", a, compress=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain-name"), a)


def test_wrong_magic(tmp_path):
    write_idx(tmp_path / "imgs", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(IDXFormatError, match="0x00000803, expected 0x00000801"):
        read_idx_labels(tmp_path / "imgs")
    write_idx(tmp_path / "two_d", np.zeros((2, 784), np.uint8))
    with pytest.raises(IDXFormatError, match="0x00000802, expected 0x00000803"):
        read_idx_images(tmp_path / "two_d")
    (tmp_path / "junk").write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(IDXFormatError, match="not an IDX"):
        read_idx(tmp_path / "junk")


def test_truncated_and_oversized_payloads(tmp_path):
    write_idx(tmp_path / "ok", np.zeros((3, 28, 28), np.uint8))
    raw = (tmp_path / "ok").read_bytes()
    (tmp_path / "cut").write_bytes(raw[:-1])
    with pytest.raises(IDXFormatError, match="truncated"):
        read_idx_images(tmp_path / "cut")
    (tmp_path / "long").write_bytes(raw + b"\x00")
    with pytest.raises(IDXFormatError, match="trailing"):
        read_idx_images(tmp_path / "long")
    (tmp_path / "header").write_bytes(raw[:10])
    with pytest.raises(IDXFormatError, match="truncated"):
        read_idx_images(tmp_path / "header")
    (tmp_path / "tiny").write_bytes(raw[:3])
    with pytest.raises(IDXFormatError, match="too short"):
        read_idx(tmp_path / "tiny")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(IDXFormatError):
        read_idx(tmp_path / "empty")


def test_truncated_and_corrupt_gzip(tmp_path):
    gz = idx_bytes(np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8), tmp=tmp_path)
    (tmp_path / "cut.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(IDXFormatError, match="gzip"):
        read_idx_images(tmp_path / "cut.gz")
    bad = bytearray(gz)
    bad[-8] ^= 0xFF                       # CRC of the uncompressed data
    (tmp_path / "crc.gz").write_bytes(bytes(bad))
    with pytest.raises(IDXFormatError, match="gzip"):
        read_idx_images(tmp_path / "crc.gz")
    # a complete gzip stream of a truncated IDX payload
    raw = gzip.decompress(gz)
    (tmp_path / "short.gz").write_bytes(gzip.compress(raw[:-28]))
    with pytest.raises(IDXFormatError, match="truncated"):
        read_idx_images(tmp_path / "short.gz")


def test_wrong_image_size(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 27, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(IDXFormatError, match="27x28, expected 28x28"):
        datasets.mnist(root=tmp_path)


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(TypeError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))


# --- loading and the search order ------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("split", ["train", "test"])
def test_load_from_root(tmp_path, gz, split):
    images, labels = make_split(tmp_path / "d", split, n=7, gz=gz)
    ds = datasets.mnist(split, root=tmp_path / "d")
    assert isinstance(ds, ImageDataset) and len(ds) == 7
    assert ds.images.dtype == np.uint8 and ds.images.shape == (7, 28, 28)
    assert ds.labels.dtype == np.int64 and ds.labels.shape == (7,)
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.path == tmp_path / "d" and ds.split == split and ds.name == "mnist"
    img, lab = ds[2]
    assert isinstance(img, ag.Tensor) and img.dtype == np.uint8 and img.shape == (28, 28)
    np.testing.assert_array_equal(img.numpy(), images[2])
    assert isinstance(lab, ag.Tensor) and lab.dtype == np.int64 and lab.item() == labels[2]


def test_root_layouts(tmp_path):
    make_split(tmp_path / "a" / "fashion-mnist", n=2)
    assert len(datasets.fashion_mnist(root=tmp_path / "a")) == 2
    make_split(tmp_path / "b" / "FashionMNIST" / "raw", n=3)
    assert len(datasets.fashion_mnist(root=tmp_path / "b")) == 3     # torchvision's layout
    make_split(tmp_path / "c", n=4, gz=False, names="dotted")         # the unzipped originals' spelling
    assert len(datasets.load("Fashion_MNIST", root=str(tmp_path / "c"))) == 4


def test_uncompressed_preferred_over_gz(tmp_path):
    make_split(tmp_path, n=3, gz=True)
    make_split(tmp_path, n=6, gz=False)
    assert len(datasets.mnist(root=tmp_path)) == 6


def test_search_order(tmp_path, monkeypatch):
    root, env, cache, system = (tmp_path / s for s in ("root", "env", "cache", "system"))
    make_split(root, n=1)
    make_split(env / "mnist", n=2)
    make_split(cache / "xpgrad" / "mnist", n=3)
    make_split(system / "mnist", n=4)
    monkeypatch.setenv("XPGRAD_DATA", str(env))
    assert len(datasets.mnist(root=root)) == 1          # explicit root first
    assert len(datasets.mnist()) == 2                   # then $XPGRAD_DATA/<name>
    monkeypatch.delenv("XPGRAD_DATA")
    ds = datasets.mnist()
    assert len(ds) == 3 and ds.path == cache / "xpgrad" / "mnist"   # then the user cache
    assert datasets.cache_dir("mnist") == cache / "xpgrad" / "mnist"
    for f in (cache / "xpgrad" / "mnist").iterdir():
        f.unlink()
    assert len(datasets.mnist()) == 4                   # then /usr/share/datasets/<name>
    assert datasets.find("mnist", "train") == (system / "mnist" / "train-images-idx3-ubyte.gz",
                                               system / "mnist" / "train-labels-idx1-ubyte.gz")
    assert datasets.find("mnist", "test") is None


def test_root_without_the_files_falls_through(tmp_path):
    make_split(tmp_path / "cache" / "xpgrad" / "mnist", n=3)
    (tmp_path / "empty").mkdir()
    assert len(datasets.mnist(root=tmp_path / "empty")) == 3


def test_default_cache_is_home(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert datasets.cache_dir("fashion_mnist") == tmp_path / "home" / ".cache" / "xpgrad" / "fashion-mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert datasets.cache_dir() == tmp_path / "home" / ".cache" / "xpgrad"


def test_xpgrad_data_needs_dataset_subfolder(tmp_path, monkeypatch):
    # MNIST and Fashion-MNIST share file names: loose files in $XPGRAD_DATA must not be taken for either
    make_split(tmp_path / "data", n=2)
    make_split(tmp_path / "data" / "fashion-mnist", n=5)
    monkeypatch.setenv("XPGRAD_DATA", str(tmp_path / "data"))
    assert len(datasets.fashion_mnist()) == 5
    with pytest.raises(DatasetNotFoundError):
        datasets.mnist(download=False)


def test_split_files_must_come_from_one_folder(tmp_path, monkeypatch):
    make_split(tmp_path / "a", n=2)
    (tmp_path / "a" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match="incomplete, has train-images-idx3-ubyte.gz but not its labels"):
        datasets.mnist(root=tmp_path / "a", download=False)


def test_mismatched_counts(tmp_path):
    make_split(tmp_path, n=5, n_labels=4)
    with pytest.raises(IDXFormatError, match="5 images but .* 4 labels"):
        datasets.mnist(root=tmp_path)


def test_label_out_of_range(tmp_path):
    make_split(tmp_path, n=40, label_max=12, seed=3)
    with pytest.raises(IDXFormatError, match="out of range for 10 classes"):
        datasets.fashion_mnist(root=tmp_path)


def test_corrupt_file_is_an_error_not_a_fallthrough(tmp_path):
    make_split(tmp_path / "good" / "mnist", n=3)
    make_split(tmp_path / "bad", n=3, gz=False)
    p = tmp_path / "bad" / "train-images-idx3-ubyte"
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(IDXFormatError, match="train-images-idx3-ubyte.*truncated"):
        datasets.mnist(root=tmp_path / "bad")


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        datasets.mnist("validation")
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load("cifar10")


# --- the offline error -----------------------------------------------------------------------------------
def test_offline_error_lists_every_location_and_option(tmp_path, monkeypatch, isolated):
    monkeypatch.setenv("XPGRAD_DATA", str(tmp_path / "env"))
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.fashion_mnist("test", root=tmp_path / "mine")
    msg = str(info.value)
    for text in ("Fashion-MNIST 'test'", "t10k-images-idx3-ubyte[.gz]", str(tmp_path / "mine"),
                 str(tmp_path / "env" / "fashion-mnist"), str(tmp_path / "cache" / "xpgrad" / "fashion-mnist"),
                 str(tmp_path / "system" / "fashion-mnist"), "offline in tests",
                 "apt-get install dataset-fashion-mnist", "XPGRAD_DATA=", "root=", "download=True",
                 "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"):
        assert text in msg, text
    assert msg.index(str(tmp_path / "mine")) < msg.index(str(tmp_path / "env")) < msg.index(
        str(tmp_path / "cache")) < msg.index(str(tmp_path / "system")) < msg.index("offline in tests")
    assert isolated.urls == ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-images-idx3-ubyte.gz"]
    assert not (tmp_path / "cache").exists()            # a failed download leaves no folders behind
    assert isinstance(info.value, FileNotFoundError)


def test_offline_mnist_tries_every_mirror_and_points_to_debian(isolated):
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.mnist()
    msg = str(info.value)
    assert "$XPGRAD_DATA: not set" in msg and "root= argument: not given" in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert [u.rsplit("/", 1)[0] + "/" for u in isolated.urls] == list(datasets.SPECS["mnist"].mirrors)


def test_download_false_never_fetches(isolated):
    with pytest.raises(DatasetNotFoundError, match=r"skipped \(download=False\)"):
        datasets.mnist(download=False)
    assert isolated.urls == []


# --- downloads (the fetcher is replaced; nothing touches the network) -------------------------------------
class FakeServer:
    """Serves given bytes per file name; optionally fails some URLs or dies mid-transfer."""

    def __init__(self, files, fail=(), die_midway=False):
        self.files, self.fail, self.die_midway, self.urls = files, set(fail), die_midway, []

    def __call__(self, url, fileobj, timeout):
        self.urls.append(url)
        if url in self.fail:
            raise urllib.error.URLError("mirror down")
        data = self.files[url.rsplit("/", 1)[1]]
        if self.die_midway:
            fileobj.write(data[: len(data) // 2])
            raise ConnectionResetError("connection reset")
        fileobj.write(data)


def _served_split(tmp_path, monkeypatch, name="mnist", split="train", n=6, good_md5=True):
    p = _PREFIX[split]
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    files = {f"{p}-images-idx3-ubyte.gz": idx_bytes(images, tmp=tmp_path),
             f"{p}-labels-idx1-ubyte.gz": idx_bytes(labels, tmp=tmp_path)}
    for fname, data in files.items():
        md5 = hashlib.md5(data).hexdigest() if good_md5 else "0" * 32
        monkeypatch.setitem(datasets.SPECS[name].md5, fname, md5)
    return files, images, labels


def _cache_files(tmp_path, name="mnist"):
    d = tmp_path / "cache" / "xpgrad" / name
    return sorted(os.listdir(d)) if d.exists() else []


def test_download_verified_into_cache(tmp_path, monkeypatch):
    files, images, labels = _served_split(tmp_path, monkeypatch)
    server = FakeServer(files)
    monkeypatch.setattr(datasets, "_fetch", server)
    ds = datasets.mnist("train")
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.path == tmp_path / "cache" / "xpgrad" / "mnist"
    assert _cache_files(tmp_path) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert server.urls == ["https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
                           "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz"]
    datasets.mnist("train")                       # found in the cache now: no second download
    assert len(server.urls) == 2


def test_download_falls_back_to_next_mirror(tmp_path, monkeypatch):
    files, _, _ = _served_split(tmp_path, monkeypatch, split="test")
    first = "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz"
    server = FakeServer(files, fail={first})
    monkeypatch.setattr(datasets, "_fetch", server)
    assert len(datasets.mnist("test")) == 6
    assert server.urls[:2] == [first, "http://yann.lecun.com/exdb/mnist/t10k-images-idx3-ubyte.gz"]


def test_bad_checksum_leaves_no_file(tmp_path, monkeypatch):
    files, _, _ = _served_split(tmp_path, monkeypatch, name="fashion-mnist", good_md5=False)
    monkeypatch.setattr(datasets, "_fetch", FakeServer(files))
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch") as info:
        datasets.fashion_mnist()
    assert "expected 00000000000000000000000000000000" in str(info.value)
    assert _cache_files(tmp_path, "fashion-mnist") == []


def test_checksum_error_direct(tmp_path, monkeypatch):
    data = b"exactly this"
    monkeypatch.setattr(datasets, "_fetch", lambda url, f, timeout: f.write(data))
    d = tmp_path / "dl"
    d.mkdir()
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        datasets._download_file("http://example.invalid/f.gz", d / "f.gz", "0" * 32)
    assert os.listdir(d) == []                       # neither the file nor its temporary part
    datasets._download_file("http://example.invalid/f.gz", d / "f.gz", hashlib.md5(data).hexdigest())
    assert (d / "f.gz").read_bytes() == data
    assert os.listdir(d) == ["f.gz"]


def test_interrupted_download_leaves_no_partial_file(tmp_path, monkeypatch):
    files, _, _ = _served_split(tmp_path, monkeypatch)
    monkeypatch.setattr(datasets, "_fetch", FakeServer(files, die_midway=True))
    with pytest.raises(DatasetNotFoundError, match="connection reset"):
        datasets.mnist()
    assert _cache_files(tmp_path) == []


def test_download_completes_a_half_present_cache(tmp_path, monkeypatch):
    files, images, _ = _served_split(tmp_path, monkeypatch)
    d = tmp_path / "cache" / "xpgrad" / "mnist"
    d.mkdir(parents=True)
    (d / "train-images-idx3-ubyte.gz").write_bytes(files["train-images-idx3-ubyte.gz"])
    server = FakeServer(files)
    monkeypatch.setattr(datasets, "_fetch", server)
    np.testing.assert_array_equal(datasets.mnist().images, images)
    assert [u.rsplit("/", 1)[1] for u in server.urls] == ["train-labels-idx1-ubyte.gz"]


def test_download_function(tmp_path, monkeypatch):
    train, _, _ = _served_split(tmp_path, monkeypatch, split="train")
    test, _, _ = _served_split(tmp_path, monkeypatch, split="test")
    monkeypatch.setattr(datasets, "_fetch", FakeServer({**train, **test}))
    assert datasets.download("mnist") == tmp_path / "cache" / "xpgrad" / "mnist"
    assert len(_cache_files(tmp_path)) == 4
    monkeypatch.setattr(datasets, "_fetch", OfflineFetch())
    with pytest.raises(OSError, match="offline in tests"):
        datasets.download("fashion-mnist", "test")


# --- the dataset object ----------------------------------------------------------------------------------
def test_image_dataset_float_arrays_and_loader(tmp_path):
    images, labels = make_split(tmp_path, n=9)
    ds = datasets.fashion_mnist(root=tmp_path)
    x, y = ds.float_arrays()
    assert x.dtype == np.float32 and x.shape == (9, 28, 28) and y.dtype == np.int64
    np.testing.assert_allclose(x, images / 255, rtol=1e-6)
    x, _ = ds.float_arrays(flatten=True, normalize="symmetric")
    assert x.shape == (9, 784) and x.min() >= -1 and x.max() <= 1
    np.testing.assert_allclose(x, images.reshape(9, -1) / 127.5 - 1, atol=1e-6)
    x, _ = ds.float_arrays(normalize="standard")
    np.testing.assert_allclose(x, (images / 255 - 0.2860) / 0.3530, rtol=1e-5, atol=1e-5)
    x, y2 = ds.float_arrays(normalize=None)
    assert x.max() == images.max()
    y2[:] = 0
    assert (ds.labels == labels).all()                # labels are copied
    with pytest.raises(ValueError):
        ds.float_arrays(normalize="bogus")
    assert ds.classes[9] == "Ankle boot" and "fashion-mnist" in repr(ds)
    other = ImageDataset(images.astype(np.float32), labels, name="x", split="train")   # no look-up table
    np.testing.assert_allclose(other.float_arrays(normalize="symmetric")[0], images / 127.5 - 1, atol=1e-6)

    tds = datasets.fashion_mnist(root=tmp_path, transform=T.Compose([T.ToFloat(), T.Flatten()]))
    batches = list(DataLoader(tds, batch_size=4, shuffle=True, seed=0, device="cpu"))
    assert [tuple(b[0].shape) for b in batches] == [(4, 784), (4, 784), (1, 784)]
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64
    assert sorted(np.concatenate([b[1].numpy() for b in batches]).tolist()) == sorted(labels.tolist())
    plain = list(DataLoader(tds, batch_size=4))                      # no device: Tensors on the CPU all the same
    assert all(isinstance(t, ag.Tensor) and t.device.kind == "cpu" for b in plain for t in b)
    np.testing.assert_allclose(plain[0][0].numpy(), images[:4].reshape(4, -1) / 255, rtol=1e-6)


# --- the real Debian copy --------------------------------------------------------------------------------
@pytest.mark.parametrize("split,n", [("train", 60000), ("test", 10000)])
def test_debian_fashion_mnist(monkeypatch, split, n):
    folder = Path(_REAL_SYSTEM_DIRS[0]) / "fashion-mnist"
    if not (folder / f"{_PREFIX[split]}-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", _REAL_SYSTEM_DIRS)
    ds = datasets.fashion_mnist(split, download=False)
    assert ds.path == folder
    assert ds.images.shape == (n, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels.shape == (n,) and ds.labels.dtype == np.int64
    assert ds.labels.min() == 0 and ds.labels.max() == 9
    assert (np.bincount(ds.labels, minlength=10) == n // 10).all()      # balanced classes
    assert abs(ds.images.mean() / 255 - 0.286) < 0.002


# --- size limits and stale partial downloads ----------------------------------------------------------------
def test_declared_size_over_the_limit_is_refused_before_reading(tmp_path, monkeypatch):
    import nn.data.idx as idx
    # a 60-byte gzip whose consistent header declares 10^6 x 1000 x 1000 uint8 images (1 TB)
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (10 ** 6, 1000, 1000))
    (tmp_path / "bomb.gz").write_bytes(gzip.compress(header + bytes(1000)))
    with pytest.raises(IDXFormatError, match=r"bomb\.gz: header says shape \(1000000, 1000, 1000\) of uint8 "
                                             r"\(1,000,000,000,000 bytes\).*max_bytes=2,147,483,648"):
        read_idx(tmp_path / "bomb.gz")
    # a real file over a lowered limit: the module default (read at call time) and the keyword
    write_idx(tmp_path / "ok.gz", np.zeros((4, 28, 28), np.uint8))
    monkeypatch.setattr(idx, "MAX_BYTES", 3000)
    with pytest.raises(IDXFormatError, match=r"ok\.gz.*3,136 bytes.*max_bytes=3,000"):
        read_idx_images(tmp_path / "ok.gz")
    assert read_idx(tmp_path / "ok.gz", max_bytes=3136).shape == (4, 28, 28)
    monkeypatch.setattr(idx, "MAX_BYTES", 3136)
    assert read_idx_images(tmp_path / "ok.gz").shape == (4, 28, 28)
    with pytest.raises(IDXFormatError, match="max_bytes=100"):
        read_idx(tmp_path / "ok.gz", max_bytes=100)
    with pytest.raises(ValueError, match="max_bytes"):
        read_idx(tmp_path / "ok.gz", max_bytes=-1)


def test_gzip_stream_shorter_or_longer_than_its_header(tmp_path, monkeypatch):
    import nn.data.idx as idx
    monkeypatch.setattr(idx, "_CHUNK", 1000)          # several chunks even for a small file
    a = np.random.default_rng(0).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    raw = gzip.decompress(idx_bytes(a, tmp=tmp_path))
    # the header declares 10^5 images (78 MB, under the limit); the stream holds 10: refused, never reshaped
    bomb = raw[:4] + (10 ** 5).to_bytes(4, "big") + raw[8:]
    (tmp_path / "short.gz").write_bytes(gzip.compress(bomb))
    with pytest.raises(IDXFormatError, match=r"short\.gz: header says shape \(100000, 28, 28\).*decompressed "
                                             r"stream holds 7856 bytes: the file is truncated"):
        read_idx_images(tmp_path / "short.gz")
    (tmp_path / "long.gz").write_bytes(gzip.compress(raw + bytes(5000)))
    with pytest.raises(IDXFormatError, match=r"long\.gz.*stream holds more: the file has trailing bytes"):
        read_idx_images(tmp_path / "long.gz")
    (tmp_path / "ok.gz").write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(read_idx_images(tmp_path / "ok.gz"), a)


def test_multibyte_types_come_back_native_and_writable(tmp_path):
    a = np.arange(-600, 600, dtype=np.int32).reshape(40, 30)
    for name in ("i.gz", "i"):
        write_idx(tmp_path / name, a)
        got = read_idx(tmp_path / name)
        assert got.dtype == np.dtype("int32") and got.dtype.isnative and got.flags.writeable
        np.testing.assert_array_equal(got, a)


def test_download_removes_partial_files_of_killed_downloads(tmp_path, monkeypatch):
    import subprocess
    import sys
    import nn.serialization as ser
    files, images, _ = _served_split(tmp_path, monkeypatch)
    d = tmp_path / "cache" / "xpgrad" / "mnist"
    d.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    stale = d / f".train-images-idx3-ubyte.gz.{ser._HOST}.{proc.pid}.{'ab' * 8}.part"
    stale.write_bytes(b"\x1f\x8b half a download")
    live = d / f".train-images-idx3-ubyte.gz.{ser._HOST}.{os.getppid()}.{'cd' * 8}.part"
    live.write_bytes(b"\x1f\x8b another process is downloading")
    monkeypatch.setattr(datasets, "_fetch", FakeServer(files))
    np.testing.assert_array_equal(datasets.mnist().images, images)
    assert sorted(os.listdir(d)) == sorted([live.name, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"])
