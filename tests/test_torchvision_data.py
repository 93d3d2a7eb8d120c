"""PyTorch's data API: Tensor batches, default_collate, torchvision's MNIST/FashionMNIST classes and transforms.

``nn.data`` stands for ``torch.utils.data``, ``nn.data.datasets`` / ``nn.data.transforms`` for torchvision's.
Datasets are small synthetic IDX files in tmp_path; the machine's own copies, the network and the user cache are
kept out (as in tests/test_datasets.py). Comparisons with PyTorch skip when it is not installed.
"""
from __future__ import annotations

import collections
import hashlib
import urllib.error
from pathlib import Path

import numpy as np
import pytest

import autograd as ag
import backends
import nn
from nn.data import DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split
from nn.data import datasets
from nn.data import transforms
from nn.data.datasets import DatasetNotFoundError, FashionMNIST, MNIST
from nn.data.idx import write_idx
from nn.training import fit

_PREFIX = {"train": "train", "test": "t10k"}
TF = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """No $XPGRAD_DATA, a private user cache and system folder, and a network that always fails."""
    monkeypatch.delenv("XPGRAD_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", (str(tmp_path / "system"),))
    urls = []

    def fetch(url, fileobj, timeout):
        urls.append(url)
        raise urllib.error.URLError("offline in tests")
    monkeypatch.setattr(datasets, "_fetch", fetch)
    return urls


def write_split(directory, split="train", n=20, seed=0, learnable=False):
    """IDX files of ``n`` 28x28 uint8 images and labels in ``directory``; returns (images, labels).

    ``learnable``: each class lights up its own 4-row band, so a small model can tell them apart."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60 if learnable else 256, (n, 28, 28), dtype=np.uint8)
    if learnable:
        for k, c in enumerate(labels):
            images[k, 2 * c + 4:2 * c + 8] = 255
    p = _PREFIX[split]
    write_idx(directory / f"{p}-images-idx3-ubyte.gz", images)
    write_idx(directory / f"{p}-labels-idx1-ubyte.gz", labels)
    return images, labels


def _torch():
    return pytest.importorskip("torch")


# --- TensorDataset and DataLoader give Tensors ---------------------------------------------------------------
def test_tensor_dataset_takes_tensors_and_arrays_sharing_memory():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = ag.tensor([0, 1, 0, 1])
    ds = TensorDataset(x, y)
    assert ds.tensors[1] is y and isinstance(ds.tensors[0], ag.Tensor)
    assert np.shares_memory(ds.tensors[0].array, x)                      # as_tensor: no copy
    xi, yi = ds[2]
    assert type(ds[2]) is tuple and xi.shape == (3,) and yi.shape == () and yi.dtype == np.int64
    x[2, 0] = 100.0
    assert xi.tolist() == [100.0, 7.0, 8.0]                               # a view, as PyTorch's t[i]
    xs, ys = ds[1:3]
    assert xs.shape == (2, 3) and ys.tolist() == [1, 0] and np.shares_memory(xs.array, x)
    xl, yl = ds[[3, 0]]
    assert yl.tolist() == [1, 0] and not np.shares_memory(xl.array, x)
    with pytest.raises(TypeError):
        ds["a"]
    with pytest.raises(IndexError):
        ds[[0, 4]]
    with pytest.raises(TypeError, match="tensor 0"):
        TensorDataset(np.array(["a", "b"]))


def test_tensor_dataset_matches_torch():
    torch = _torch()
    x = np.random.default_rng(0).standard_normal((6, 2)).astype(np.float32)
    y = np.arange(6)
    ours, theirs = TensorDataset(x, y), torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    for i in (0, 5, -1):
        a, b = ours[i], theirs[i]
        assert len(a) == len(b) == 2
        for u, v in zip(a, b):
            assert u.shape == tuple(v.shape) and u.dtype == np.dtype(str(v.dtype).removeprefix("torch."))
            np.testing.assert_array_equal(u.numpy(), v.numpy())
    ob = next(iter(DataLoader(ours, 4)))
    tb = next(iter(torch.utils.data.DataLoader(theirs, 4)))
    assert type(ob) is type(tb) is list
    for u, v in zip(ob, tb):
        np.testing.assert_array_equal(u.numpy(), v.numpy())


def test_loader_batches_are_tensors_on_the_data_device(device):
    x = ag.as_tensor(np.arange(20, dtype=np.float32).reshape(10, 2), device=device)
    y = ag.as_tensor(np.arange(10, dtype=np.int32), device=device)
    for kw in ({}, {"shuffle": True, "seed": 0}, {"collate_fn": None}):
        batches = list(DataLoader(TensorDataset(x, y), 4, **kw))
        assert [b[0].shape for b in batches] == [(4, 2), (4, 2), (2, 2)]
        for xb, yb in batches:
            assert isinstance(xb, ag.Tensor) and xb.device == x.device and yb.device == x.device
            assert xb.dtype == np.float32 and yb.dtype == np.int32 and not xb.requires_grad   # dtypes kept
    moved = next(iter(DataLoader(TensorDataset(x, y), 4, device="cpu")))
    assert moved[0].device.kind == "cpu" and moved[1].dtype == np.int64   # device=: labels int64 (see to_device)
    cast = next(iter(DataLoader(TensorDataset(x, y), 4, float_dtype="float64")))
    assert cast[0].dtype == np.float64 and cast[0].device == x.device


def test_loader_adds_no_copy_to_a_batch():
    made = []

    class Gathering(Dataset):
        def __len__(self):
            return 8

        def get_batch(self, indices):
            made.append(np.arange(8.0, dtype=np.float32)[indices].copy())
            return made[-1], np.zeros(len(made[-1]), np.int64)

    for device in (None, "cpu"):
        made.clear()
        xb, _ = next(iter(DataLoader(Gathering(), 4, device=device)))
        assert isinstance(xb, ag.Tensor) and np.shares_memory(xb.array, made[0])
    made.clear()
    x, _ = next(iter(DataLoader(TensorDataset(np.zeros((8, 2), np.float32), np.zeros(8)), 4)))
    x2 = nn.training.loop._split_batch([x, ag.zeros(4, dtype="int64")], backends.cpu, np.dtype("float32"))[0]
    assert x2 is x                                    # fit takes the loader's Tensor as it is


def test_per_sample_datasets_and_fast_path_agree():
    class Pairs(Dataset):
        def __init__(self, x, y):
            self.x, self.y = x, y

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return self.x[i], int(self.y[i])

    x = np.random.default_rng(1).standard_normal((11, 3)).astype(np.float32)
    y = np.arange(11) % 4
    slow = list(DataLoader(Pairs(x, y), 4, shuffle=True, seed=3))
    fast = list(DataLoader(TensorDataset(x, y), 4, shuffle=True, seed=3))
    for a, b in zip(slow, fast, strict=True):
        assert type(a) is type(b) is list
        for u, v in zip(a, b):
            assert isinstance(u, ag.Tensor) and u.dtype == v.dtype and u.shape == v.shape
            np.testing.assert_array_equal(u.numpy(), v.numpy())


# --- default_collate against PyTorch's -----------------------------------------------------------------------
Point = collections.namedtuple("Point", "x y")


def _samples():
    rng = np.random.default_rng(0)
    return [
        {"image": rng.standard_normal((2, 3)).astype(np.float32), "label": k, "weight": 0.5 * k,
         "flag": bool(k % 2), "id": f"s{k}", "raw": b"x", "n16": np.int16(k), "f64": np.float64(k / 3),
         "pair": (np.arange(3, dtype=np.int32) + k, [float(k), 2.0]), "point": Point(k, np.full(2, k, np.uint8)),
         "tensor": ag.tensor([1.0, 2.0]) * k}
        for k in range(3)]


def _to_torch_sample(v, torch):
    if isinstance(v, ag.Tensor):
        return torch.from_numpy(v.numpy().copy())
    if isinstance(v, dict):
        return {k: _to_torch_sample(u, torch) for k, u in v.items()}
    if isinstance(v, tuple) and hasattr(v, "_fields"):
        return type(v)(*(_to_torch_sample(u, torch) for u in v))
    if isinstance(v, (tuple, list)):
        return type(v)(_to_torch_sample(u, torch) for u in v)
    return v


def _same(ours, theirs, torch, where="batch"):
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, ag.Tensor), where
        assert ours.dtype == np.dtype(str(theirs.dtype).removeprefix("torch.")), where
        assert ours.shape == tuple(theirs.shape), where
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=where)
    elif isinstance(theirs, dict):
        assert type(ours) is type(theirs) and list(ours) == list(theirs), where
        for k in theirs:
            _same(ours[k], theirs[k], torch, f"{where}[{k!r}]")
    elif isinstance(theirs, (tuple, list)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs)):
            _same(a, b, torch, f"{where}[{i}]")
    else:
        assert ours == theirs, where


def test_default_collate_matches_torch_on_nested_samples():
    torch = _torch()
    from torch.utils.data import default_collate as torch_collate
    samples = _samples()
    ours = default_collate(samples)
    theirs = torch_collate([_to_torch_sample(s, torch) for s in samples])
    _same(ours, theirs, torch)
    assert type(ours["pair"]) is list and type(ours["point"]) is Point      # tuples -> lists, namedtuples kept
    for flat in ([1, 2], [1.5, 2.0], [True, False], [np.uint8(3), np.uint8(4)], [np.float32(1.0)],
                 [(1, "a"), (2, "b")], [[1, 2], [3, 4]],
                 [collections.OrderedDict(a=1, b=2.0), collections.OrderedDict(a=3, b=4.0)]):
        _same(default_collate(flat), torch_collate(flat), torch, repr(flat))


def test_default_collate_stacks_on_the_device(device):
    t = [ag.as_tensor(np.full(3, k, np.float32), device=device) for k in range(4)]
    out = default_collate(t)
    assert out.device == t[0].device and out.shape == (4, 3) and out[:, 0].tolist() == [0, 1, 2, 3]


# --- transforms ---------------------------------------------------------------------------------------------
def test_to_tensor_values_layout_and_dtypes():
    img = np.array([[0, 51], [255, 128]], np.uint8)
    t = transforms.ToTensor()(img)
    assert isinstance(t, ag.Tensor) and t.shape == (1, 2, 2) and t.dtype == np.float32
    np.testing.assert_array_equal(t.numpy()[0], np.array([[0, 51], [255, 128]], np.float32) / np.float32(255))
    assert t.numpy()[0, 0, 1] == np.float32(0.2) and t.numpy()[0, 1, 0] == 1.0
    hwc = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    c = transforms.ToTensor()(hwc).numpy()
    assert c.shape == (3, 2, 4) and c.flags.c_contiguous
    np.testing.assert_array_equal(c[2], hwc[:, :, 2] / np.float32(255))
    f = np.full((2, 2), 7.5, np.float64)                         # not uint8: no scaling, dtype kept
    tf = transforms.ToTensor()(f)
    assert tf.dtype == np.float64 and tf.shape == (1, 2, 2) and float(tf.numpy().max()) == 7.5
    assert np.shares_memory(tf.array, f)
    assert np.array_equal(img, [[0, 51], [255, 128]])            # input untouched
    with pytest.raises(TypeError, match="already a Tensor"):
        transforms.ToTensor()(t)
    with pytest.raises(ValueError, match="4 dimensions"):
        transforms.ToTensor()(np.zeros((1, 1, 2, 2), np.uint8))
    with pytest.raises(TypeError):
        transforms.ToTensor()([[1, 2]])


def test_to_tensor_and_normalize_match_torch_math():
    torch = _torch()
    img = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ours = transforms.Normalize(mean, std)(transforms.ToTensor()(img))
    ref = torch.from_numpy(img).permute(2, 0, 1).contiguous().to(torch.float32).div(255)
    ref = ref.sub_(torch.tensor(mean).view(-1, 1, 1)).div_(torch.tensor(std).view(-1, 1, 1))
    np.testing.assert_array_equal(ours.numpy(), ref.numpy())      # the same float32 operations, bit for bit


def test_normalize_per_channel_inplace_and_kinds():
    x = np.stack([np.full((2, 2), v, np.float32) for v in (1.0, 2.0, 3.0)])     # (C, H, W)
    out = transforms.Normalize([1.0, 1.0, 1.0], [1.0, 0.5, 0.25])(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32               # arrays in, arrays out
    np.testing.assert_array_equal(out[:, 0, 0], [0.0, 2.0, 8.0])
    batch = ag.as_tensor(np.stack([x, x]))                                       # (N, C, H, W): channels at -3
    out = transforms.Normalize((1.0, 1.0, 1.0), (1.0, 0.5, 0.25))(batch)
    assert isinstance(out, ag.Tensor) and out.shape == (2, 3, 2, 2) and out.numpy()[1, 2, 1, 1] == 8.0
    assert batch.numpy()[0, 2, 0, 0] == 3.0                                      # not in place by default
    t = ag.as_tensor(x.copy())
    v0 = t.version
    same = transforms.Normalize(0.5, 2.0, inplace=True)(t)
    assert same is t and t.version > v0 and t.numpy()[2, 0, 0] == 1.25
    assert transforms.Normalize((0.5,), (0.5,))(np.full((1, 1, 1), 255, np.uint8)).item() == 1.0   # ints: ToFloat
    with pytest.raises(ValueError, match="non-zero"):
        transforms.Normalize((0.5,), (0.0,))
    with pytest.raises(ValueError, match="zero in float16"):
        transforms.Normalize(0.0, 1e-10)(np.ones((1, 2, 2), np.float16))
    with pytest.raises(ValueError, match="channels"):
        transforms.Normalize((0.1, 0.2), (1.0, 2.0, 3.0))


def test_compose_and_lambda():
    tf = transforms.Compose([transforms.ToTensor(), transforms.Lambda(lambda t: t * 2)])
    out = tf(np.full((2, 2), 255, np.uint8))
    assert out.shape == (1, 2, 2) and out.numpy().max() == 2.0
    assert "ToTensor()" in repr(tf) and "Lambda" in repr(tf)
    with pytest.raises(TypeError, match="callable"):
        transforms.Lambda(3)


def _image(h=6, w=5, c=None, seed=0):
    shape = (h, w) if c is None else (h, w, c)
    return np.random.default_rng(seed).integers(1, 256, shape, dtype=np.uint8)


def test_random_crop_offsets_come_from_the_seeded_generator():
    img = _image()
    ag.manual_seed(5)
    rng = backends.cpu.rng
    i, j = int(rng.integers(0, 6 - 3 + 1)), int(rng.integers(0, 5 - 2 + 1))
    ag.manual_seed(5)
    out = transforms.RandomCrop((3, 2))(img)
    np.testing.assert_array_equal(out, img[i:i + 3, j:j + 2])
    ag.manual_seed(5)
    again = transforms.RandomCrop((3, 2))(img)
    np.testing.assert_array_equal(again, out)
    seen = {transforms.RandomCrop(3)(img).tobytes() for _ in range(60)}
    assert len(seen) > 4                                          # it does move
    ag.manual_seed(0)
    whole = transforms.RandomCrop((6, 5))(img)                    # the whole image: no draw
    assert backends.cpu.rng.integers(0, 1 << 30) == np.random.default_rng(0).integers(0, 1 << 30)
    np.testing.assert_array_equal(whole, img)


def test_random_crop_padding_forms_and_fill():
    img = _image(2, 3)
    out = transforms.RandomCrop((4, 5), padding=1, fill=9)(img)   # exactly the padded size: no randomness
    expect = np.full((4, 5), 9, np.uint8)
    expect[1:3, 1:4] = img
    np.testing.assert_array_equal(out, expect)
    out = transforms.RandomCrop((2 + 2 * 2, 3 + 2 * 1), padding=(1, 2))(img)    # (left/right, top/bottom)
    assert out.shape == (6, 5) and (out[2:4, 1:4] == img).all() and out[0].sum() == 0
    out = transforms.RandomCrop((2 + 0 + 3, 3 + 1 + 2), padding=(1, 0, 2, 3))(img)   # (left, top, right, bottom)
    assert out.shape == (5, 6) and (out[0:2, 1:4] == img).all() and out[:, 0].sum() == 0
    np.testing.assert_array_equal(transforms.RandomCrop((4, 5), padding=1, padding_mode="edge")(img),
                                  np.pad(img, 1, mode="edge"))
    rgb = _image(2, 2, 3)
    out = transforms.RandomCrop(4, padding=1, fill=(1, 2, 3))(rgb)
    assert out.shape == (4, 4, 3) and out[0, 0].tolist() == [1, 2, 3] and (out[1:3, 1:3] == rgb).all()
    small = transforms.RandomCrop((4, 5), pad_if_needed=True)(img)     # pads both sides by the shortfall
    assert small.shape == (4, 5)
    with pytest.raises(ValueError, match="larger"):
        transforms.RandomCrop(7)(img)
    with pytest.raises(ValueError, match="padding_mode"):
        transforms.RandomCrop(2, padding=1, padding_mode="wrap")
    with pytest.raises(ValueError, match="padding"):
        transforms.RandomCrop(2, padding=(1, 2, 3))


def test_random_crop_on_tensors_matches_torch_padding():
    torch = _torch()
    x = np.random.default_rng(2).standard_normal((2, 4, 5)).astype(np.float32)     # (C, H, W)
    t = ag.as_tensor(x)
    for mode, tmode in (("reflect", "reflect"), ("edge", "replicate"), ("constant", "constant")):
        out = transforms.RandomCrop((4 + 2 * 2, 5 + 2 * 1), padding=(1, 2), padding_mode=mode)(t)
        ref = torch.nn.functional.pad(torch.from_numpy(x)[None], (1, 1, 2, 2), mode=tmode)[0]
        assert isinstance(out, ag.Tensor) and out.shape == (2, 8, 7)
        np.testing.assert_array_equal(out.numpy(), ref.numpy())
    ag.manual_seed(1)
    rng = backends.cpu.rng
    i, j = int(rng.integers(0, 2)), int(rng.integers(0, 3))
    ag.manual_seed(1)
    crop = transforms.RandomCrop((3, 3))(t)
    np.testing.assert_array_equal(crop.numpy(), x[:, i:i + 3, j:j + 3])          # every channel the same crop


def test_random_horizontal_flip():
    img = _image(3, 4)
    np.testing.assert_array_equal(transforms.RandomHorizontalFlip(p=1.0)(img), img[:, ::-1])
    assert transforms.RandomHorizontalFlip(p=0.0)(img) is img
    t = ag.as_tensor(np.arange(6, dtype=np.float32).reshape(1, 2, 3))
    flipped = transforms.RandomHorizontalFlip(1.0)(t)
    assert isinstance(flipped, ag.Tensor) and flipped.tolist() == [[[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]]
    ag.manual_seed(11)
    expect = [bool(backends.cpu.rng.random() < 0.3) for _ in range(50)]
    ag.manual_seed(11)
    got = [not np.array_equal(transforms.RandomHorizontalFlip(0.3)(img), img) for _ in range(50)]
    assert got == expect and 3 < sum(got) < 30
    with pytest.raises(ValueError, match="probability"):
        transforms.RandomHorizontalFlip(1.5)


def test_batchwise_transforms_take_tensors_too():
    u8 = ag.as_tensor(np.full((2, 2, 2), 255, np.uint8))
    out = transforms.Compose([transforms.ToFloat(), transforms.Flatten()])(u8)
    assert isinstance(out, ag.Tensor) and out.shape == (2, 4) and out.numpy().min() == 1.0
    assert isinstance(transforms.NormalizeTo(-1, 1)(u8), ag.Tensor)


# --- MNIST / FashionMNIST ------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls,name", [(MNIST, "mnist"), (FashionMNIST, "fashion-mnist")])
def test_mnist_classes_like_torchvision(tmp_path, cls, name):
    images, labels = write_split(tmp_path / "data" / cls.__name__ / "raw", "test", n=7)   # torchvision's layout
    ds = cls(str(tmp_path / "data"), train=False)
    assert len(ds) == 7 and ds.train is False and ds.path == tmp_path / "data" / cls.__name__ / "raw"
    assert isinstance(ds.data, ag.Tensor) and ds.data.dtype == np.uint8 and ds.data.shape == (7, 28, 28)
    assert isinstance(ds.targets, ag.Tensor) and ds.targets.dtype == np.int64 and ds.targets.shape == (7,)
    np.testing.assert_array_equal(ds.data.numpy(), images)
    np.testing.assert_array_equal(ds.targets.numpy(), labels)
    img, target = ds[3]
    assert type(img) is np.ndarray and img.dtype == np.uint8 and img.shape == (28, 28)
    assert type(target) is int and target == labels[3]
    np.testing.assert_array_equal(img, images[3])
    img[:] = 0
    assert ds.data.numpy()[3].any()                                  # the sample is the caller's copy
    assert ds[-1][1] == labels[-1]
    with pytest.raises(IndexError):
        ds[7]
    assert len(ds.classes) == 10 and ds.class_to_idx[ds.classes[9]] == 9
    assert ds.classes[0] == ("0 - zero" if cls is MNIST else "T-shirt/top")
    assert cls.__name__ in repr(ds) and "test split" in repr(ds)
    write_split(tmp_path / "flat", "train", n=5)
    assert len(cls(tmp_path / "flat")) == 5                           # root: the files themselves


def test_mnist_transforms_per_sample(tmp_path):
    images, labels = write_split(tmp_path, n=5)
    ds = MNIST(tmp_path, transform=TF, target_transform=lambda y: y + 100)
    x, y = ds[1]
    assert isinstance(x, ag.Tensor) and x.shape == (1, 28, 28) and x.dtype == np.float32
    expect = (images[1].astype(np.float32) / np.float32(255) - np.float32(0.1307)) / np.float32(0.3081)
    np.testing.assert_array_equal(x.numpy()[0], expect)
    assert y == labels[1] + 100


def test_mnist_not_found_without_download(tmp_path, offline):
    with pytest.raises(DatasetNotFoundError) as info:
        FashionMNIST(tmp_path / "nowhere", train=True)
    msg = str(info.value)
    for text in (str(tmp_path / "nowhere"), str(tmp_path / "cache" / "xpgrad" / "fashion-mnist"),
                 str(tmp_path / "system" / "fashion-mnist"), "skipped (download=False)", "download=True"):
        assert text in msg, text
    assert offline == []                                                # nothing fetched


def test_mnist_download_true_fetches_verified_files(tmp_path, monkeypatch, offline):
    src = tmp_path / "served"
    images, labels = write_split(src, "train", n=6)
    served = {f.name: f.read_bytes() for f in src.iterdir()}
    for fname, data in served.items():
        monkeypatch.setitem(datasets.SPECS["mnist"].md5, fname, hashlib.md5(data).hexdigest())
    monkeypatch.setattr(datasets, "_fetch", lambda url, f, timeout: f.write(served[url.rsplit("/", 1)[1]]))
    ds = MNIST(tmp_path / "empty", train=True, download=True)
    assert ds.path == tmp_path / "cache" / "xpgrad" / "mnist"
    np.testing.assert_array_equal(ds.data.numpy(), images)
    assert offline == []
    served["t10k-images-idx3-ubyte.gz"] = served["t10k-labels-idx1-ubyte.gz"] = b"not the published file"
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch"):
        MNIST(None, train=False, download=True)
    assert sorted(f.name for f in ds.path.iterdir()) == sorted(served)[2:]   # only the verified train files


def _loader_batches(ds, **kw):
    return [[t.numpy() for t in b] + [b[0].dtype, b[1].dtype] for b in DataLoader(ds, 8, **kw)]


@pytest.mark.parametrize("tf", [None, TF, transforms.ToTensor(),
                                transforms.Compose([transforms.Compose([transforms.ToTensor()]),
                                                    transforms.Normalize(0.5, 0.5), transforms.Normalize(1, 2)])])
def test_mnist_loader_fast_path_equals_per_sample(tmp_path, tf):
    write_split(tmp_path, n=21)
    ds = MNIST(tmp_path, transform=tf)
    calls = []
    per_sample = DataLoader(ds, 8, shuffle=True, seed=2, collate_fn=lambda s: calls.append(1) or default_collate(s))
    slow = [[t.numpy() for t in b] for b in per_sample]
    assert len(calls) == 3
    fast = list(DataLoader(ds, 8, shuffle=True, seed=2))
    assert len(fast) == 3 and all(type(b) is list for b in fast)
    for a, b in zip(slow, fast, strict=True):
        for u, v in zip(a, b):
            assert u.dtype == v.dtype and u.shape == v.shape
            np.testing.assert_array_equal(u, v.numpy())                 # bit for bit
    x, y = fast[0]
    assert y.dtype == np.int64 and x.shape == ((8, 28, 28) if tf is None else (8, 1, 28, 28))


def test_mnist_loader_picks_the_path_by_the_transform(tmp_path, monkeypatch):
    write_split(tmp_path, n=16)
    ds = MNIST(tmp_path, transform=TF)
    seen = []
    original = MNIST.__getitem__
    monkeypatch.setattr(MNIST, "__getitem__", lambda self, i: seen.append(i) or original(self, i))
    loader = DataLoader(ds, 8)
    list(loader)
    assert seen == []                                                # vectorized: no per-sample call
    ds.transform = transforms.Compose([transforms.RandomHorizontalFlip(), transforms.ToTensor()])
    batches = list(loader)                                           # the same loader, looked up again
    assert len(seen) == 16 and batches[0][0].shape == (8, 1, 28, 28)
    ds.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1, 0.2, 0.3), (1, 1, 1))])
    seen.clear()
    assert next(iter(loader))[0].shape == (8, 3, 28, 28) and len(seen) == 8   # broadcast channels: per sample
    sub = Subset(MNIST(tmp_path, transform=TF), [3, 1])
    seen.clear()
    xb, yb = next(iter(DataLoader(sub, 2)))
    assert seen == [] and xb.shape == (2, 1, 28, 28)


def test_mnist_target_transform_and_replaced_data(tmp_path):
    images, labels = write_split(tmp_path, n=12)
    ds = MNIST(tmp_path, transform=TF, target_transform=lambda y: float(y) / 2)
    _, yb = next(iter(DataLoader(ds, 4)))
    assert yb.dtype == np.float64 and yb.tolist() == (labels[:4] / 2).tolist()
    ds.data, ds.targets = ds.data[:5], ds.targets[:5]                # torchvision's trimming idiom
    assert len(ds) == 5 and len(list(DataLoader(ds, 4))) == 2
    ds.data = images[:3]                                              # arrays become Tensors
    assert isinstance(ds.data, ag.Tensor)
    with pytest.raises(ValueError, match="3 dimensions"):
        ds.data = images[0]


def test_textbook_loop_with_to_tensor_and_normalize(tmp_path):
    """The textbook's PyTorch MNIST MLP (ch. 3 notes) with only the imports changed."""
    write_split(tmp_path / "data" / "MNIST" / "raw", "train", n=256, seed=0, learnable=True)
    write_split(tmp_path / "data" / "MNIST" / "raw", "test", n=128, seed=1, learnable=True)
    torch = ag
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    trainset = datasets.MNIST(root=str(tmp_path / "data"), train=True, download=True, transform=transform)
    testset = datasets.MNIST(root=str(tmp_path / "data"), train=False, download=True, transform=transform)
    trainloader = DataLoader(trainset, batch_size=32, shuffle=True)
    testloader = DataLoader(testset, batch_size=32, shuffle=False)

    class MLP(nn.Module):
        def __init__(self, input_size, hidden_size, output_size):
            super().__init__()
            self.fc1 = nn.Linear(input_size, hidden_size)
            self.relu = nn.ReLU()
            self.fc2 = nn.Linear(hidden_size, output_size)

        def forward(self, x):
            x = x.view(x.size(0), -1)
            return self.fc2(self.relu(self.fc1(x)))

    torch.manual_seed(0)
    model = MLP(28 * 28, 64, 10)
    criterion = nn.CrossEntropyLoss()
    optimizer = nn.optim.Adam(model.parameters(), lr=0.001)
    losses = []
    for epoch in range(3):
        running_loss = 0.0
        for i, (images, labels) in enumerate(trainloader):
            images = images.reshape(-1, 28 * 28)
            outputs = model(images)
            loss = criterion(outputs, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        losses.append(running_loss / len(trainloader))
    correct = total = 0
    with torch.no_grad():
        for images, labels in testloader:
            assert images.shape[1:] == (1, 28, 28) and labels.dtype == np.int64
            outputs = model(images)
            _, predicted = torch.max(outputs.data, 1)
            total += labels.size(0)
            correct += (predicted == labels).sum().item()
    assert total == 128
    assert losses[-1] < 0.5 * losses[0] and correct / total > 0.9


def test_fit_over_mnist_and_random_split(tmp_path):
    write_split(tmp_path, n=96, learnable=True)
    ds = MNIST(tmp_path, transform=TF)
    train, val = random_split(ds, [64, 32], seed=0)
    ag.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    h = fit(model, nn.optim.Adam(model.parameters(), lr=1e-2), nn.CrossEntropyLoss(),
            DataLoader(train, 16, shuffle=True, seed=0), 3, val_loader=DataLoader(val, 32), progress=False)
    assert h.val_acc[-1] > 0.8
