"""nn.data: datasets, DataLoader, random_split, k_fold, transforms."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import autograd as ag
from nn.data import (DataLoader, Dataset, Subset, TensorDataset, default_collate, k_fold, random_split,
                     to_device)
from nn.data import transforms as T


class Squares(Dataset):
    """A plain map-style dataset (no get_batch): exercises the per-sample path."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return np.full((2,), i, dtype=np.float32), i * i


def _rows(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return x, y


# --- TensorDataset / Subset ------------------------------------------------------------------------------
def test_tensor_dataset_items_and_len():
    x, y = _rows()
    ds = TensorDataset(x, y)
    assert len(ds) == 10
    xi, yi = ds[3]
    assert isinstance(xi, ag.Tensor) and isinstance(yi, ag.Tensor)
    np.testing.assert_array_equal(xi.numpy(), x[3])
    assert yi.shape == () and yi.dtype == np.int64 and yi.item() == 3
    assert np.shares_memory(xi.array, x) and np.shares_memory(yi.array, y)    # views of the rows, as PyTorch's
    xi, yi = ds[-1]
    assert yi.item() == 9
    with pytest.raises(IndexError):
        ds[10]
    with pytest.raises(TypeError):
        ds[1.5]


def test_tensor_dataset_accepts_tensors_and_lists():
    t = ag.tensor([[1., 2.], [3., 4.]])
    ds = TensorDataset(t, [0, 1])
    assert ds.tensors[0] is t and isinstance(ds.tensors[1], ag.Tensor) and ds.tensors[1].dtype == np.int64
    xb, yb = ds.get_batch(np.array([1, 0]))
    assert isinstance(xb, ag.Tensor) and isinstance(yb, ag.Tensor)
    np.testing.assert_array_equal(xb.numpy(), [[3., 4.], [1., 2.]])
    np.testing.assert_array_equal(yb.numpy(), [1, 0])
    assert xb.dtype == np.float32


def test_tensor_dataset_length_mismatch_is_clear():
    with pytest.raises(ValueError, match="same length"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError):
        TensorDataset()
    with pytest.raises(ValueError, match="0-d"):
        TensorDataset(np.float32(1.0))


def test_tensor_dataset_transforms_batchwise_also_for_single_items():
    imgs = np.arange(2 * 2 * 2, dtype=np.uint8).reshape(2, 2, 2)
    ds = TensorDataset(imgs, np.array([0, 1]), transform=T.Compose([T.ToFloat(), T.Flatten()]),
                       target_transform=lambda y: y + 10)
    x0, y0 = ds[1]
    assert isinstance(x0, ag.Tensor) and x0.shape == (4,) and x0.dtype == np.float32
    np.testing.assert_allclose(x0.numpy(), imgs[1].reshape(-1) / 255, rtol=1e-6)
    assert y0.item() == 11
    xb, yb = ds.get_batch(np.array([0, 1]))
    assert isinstance(xb, ag.Tensor) and xb.shape == (2, 4)
    np.testing.assert_array_equal(yb.numpy(), [10, 11])
    assert imgs.dtype == np.uint8 and imgs[1, 0, 0] == 4   # source untouched


def test_subset_maps_indices_and_keeps_fast_path():
    x, y = _rows()
    sub = Subset(TensorDataset(x, y), [7, 2, -1])
    assert len(sub) == 3
    assert sub[0][1].item() == 7 and sub[2][1].item() == 9
    _, yb = sub.get_batch(np.array([2, 0]))
    np.testing.assert_array_equal(yb.numpy(), [9, 7])
    nested = Subset(sub, [1])
    assert nested.get_batch(np.array([0]))[1].tolist() == [2]
    with pytest.raises(IndexError):
        Subset(TensorDataset(x, y), [10])
    assert not hasattr(Subset(Squares(3), [0]), "get_batch")


# --- DataLoader ------------------------------------------------------------------------------------------
def test_loader_batches_in_order_with_last_partial_batch():
    x, y = _rows(10)
    dl = DataLoader(TensorDataset(x, y), batch_size=4)
    batches = list(dl)
    assert len(dl) == 3 and len(batches) == 3
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert all(isinstance(b, list) and all(isinstance(t, ag.Tensor) for t in b) for b in batches)
    np.testing.assert_array_equal(batches[0][0].numpy(), x[:4])


def test_loader_drop_last():
    x, y = _rows(10)
    dl = DataLoader(TensorDataset(x, y), batch_size=4, drop_last=True)
    assert len(dl) == 2
    assert [len(b[1]) for b in dl] == [4, 4]
    dl = DataLoader(TensorDataset(x, y), batch_size=5, drop_last=True)
    assert len(dl) == 2 and len(list(dl)) == 2


def test_loader_batches_are_copies():
    x, y = _rows(6)
    for shuffle in (False, True):
        xb, _ = next(iter(DataLoader(TensorDataset(x, y), batch_size=3, shuffle=shuffle, seed=0)))
        assert not np.shares_memory(xb.array, x)
        xb.array[...] = -1
    assert x.min() == 0


def test_loader_shuffle_reproducible_and_reshuffles_each_epoch():
    x, y = _rows(50)
    ds = TensorDataset(x, y)
    a = DataLoader(ds, batch_size=8, shuffle=True, seed=123)
    b = DataLoader(ds, batch_size=8, shuffle=True, seed=123)
    ea1 = np.concatenate([yb.numpy() for _, yb in a])
    ea2 = np.concatenate([yb.numpy() for _, yb in a])
    eb1 = np.concatenate([yb.numpy() for _, yb in b])
    eb2 = np.concatenate([yb.numpy() for _, yb in b])
    np.testing.assert_array_equal(ea1, eb1)
    np.testing.assert_array_equal(ea2, eb2)
    assert not np.array_equal(ea1, ea2)              # a new order every epoch
    assert sorted(ea1.tolist()) == list(range(50))   # a permutation: every sample once
    gen = DataLoader(ds, batch_size=8, shuffle=True, seed=np.random.default_rng(123))
    np.testing.assert_array_equal(np.concatenate([yb.numpy() for _, yb in gen]), ea1)


def test_loader_default_seed_follows_manual_seed():
    x, y = _rows(30)
    ds = TensorDataset(x, y)
    ag.manual_seed(7)
    first = np.concatenate([yb.numpy() for _, yb in DataLoader(ds, 4, shuffle=True)])
    ag.manual_seed(7)
    again = np.concatenate([yb.numpy() for _, yb in DataLoader(ds, 4, shuffle=True)])
    np.testing.assert_array_equal(first, again)


def test_loader_fast_path_matches_per_sample_path():
    x, y = _rows(23)
    fast = DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True, seed=4)
    slow = DataLoader(TensorDataset(x, y), batch_size=5, shuffle=True, seed=4, collate_fn=default_collate)
    for bf, bs in zip(fast, slow, strict=True):
        assert type(bf) is type(bs) is list
        (xf, yf), (xs, ys) = bf, bs
        assert all(isinstance(t, ag.Tensor) for t in (xf, yf, xs, ys))
        np.testing.assert_array_equal(xf.numpy(), xs.numpy())
        np.testing.assert_array_equal(yf.numpy(), ys.numpy())
        assert xf.dtype == xs.dtype and yf.dtype == ys.dtype


def test_loader_fast_path_does_not_call_getitem():
    class Counting(TensorDataset):
        calls = 0

        def __getitem__(self, i):
            Counting.calls += 1
            return super().__getitem__(i)

    x, y = _rows(100)
    for _ in DataLoader(Counting(x, y), batch_size=10, shuffle=True, seed=0):
        pass
    assert Counting.calls == 0


def test_loader_per_sample_dataset_and_collate():
    dl = DataLoader(Squares(5), batch_size=2)
    (x0, y0), (x1, y1), (x2, y2) = dl
    assert isinstance(x0, ag.Tensor) and isinstance(y0, ag.Tensor)
    assert x0.shape == (2, 2) and x0.dtype == np.float32
    assert y0.dtype == np.int64 and y1.tolist() == [4, 9] and y2.tolist() == [16]


def test_loader_over_plain_array():
    x = np.arange(12).reshape(6, 2)
    batches = list(DataLoader(x, batch_size=4))
    assert [b.shape for b in batches] == [(4, 2), (2, 2)]
    assert all(isinstance(b, ag.Tensor) and b.dtype == x.dtype for b in batches)
    t = ag.as_tensor(x)
    assert [b.tolist() for b in DataLoader(t, batch_size=4)] == [x[:4].tolist(), x[4:].tolist()]


def test_loader_custom_collate_gets_list_of_samples():
    x, y = _rows(4)
    seen = []
    dl = DataLoader(TensorDataset(x, y), batch_size=3, collate_fn=lambda items: seen.append(len(items)) or items)
    out = list(dl)
    assert seen == [3, 1] and isinstance(out[0], list) and len(out[0][0]) == 2
    assert isinstance(out[0][0], tuple) and isinstance(out[0][0][0], ag.Tensor)     # the samples, untouched


def test_loader_bad_arguments():
    ds = TensorDataset(*_rows(3))
    for bs in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            DataLoader(ds, batch_size=bs)
    with pytest.raises(TypeError, match="seed"):
        DataLoader(ds, shuffle=True, seed="x")
    with pytest.raises(Exception, match="device"):
        DataLoader(ds, device="tpu")


def test_loader_empty_dataset():
    dl = DataLoader(TensorDataset(np.zeros((0, 3)), np.zeros(0, np.int64)), batch_size=4, shuffle=True)
    assert len(dl) == 0 and list(dl) == []


def test_loader_device_tensors(device):
    imgs = np.random.default_rng(0).integers(0, 256, (10, 4, 4), dtype=np.uint8)
    labels = np.arange(10, dtype=np.uint8) % 3
    ds = TensorDataset(imgs, labels, transform=T.Compose([T.ToFloat(), T.Flatten()]))
    dl = DataLoader(ds, batch_size=4, shuffle=True, seed=0, device=device)
    xb, yb = next(iter(dl))
    assert isinstance(xb, ag.Tensor) and isinstance(yb, ag.Tensor)
    assert xb.device == device and yb.device == device
    assert xb.dtype == np.float32 and xb.shape == (4, 16)
    assert yb.dtype == np.int64 and yb.shape == (4,)
    assert not xb.requires_grad
    # the values are those of the batches without device= (on the CPU, labels in their own dtype)
    ref = next(iter(DataLoader(ds, batch_size=4, shuffle=True, seed=0)))
    assert ref[0].device.kind == "cpu" and ref[1].dtype == np.uint8
    np.testing.assert_array_equal(xb.numpy(), ref[0].numpy())
    np.testing.assert_array_equal(yb.numpy(), ref[1].numpy())


def test_loader_device_dataset_of_tensors_stays_on_device(device):
    x = ag.randn(9, 3, device=device)
    y = ag.tensor(np.arange(9), device=device)
    batches = list(DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True, seed=1, device=device))
    assert [b[0].shape for b in batches] == [(4, 3), (4, 3), (1, 3)]
    got = np.concatenate([b[1].numpy() for b in batches])
    assert sorted(got.tolist()) == list(range(9))
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in batches]), x.numpy()[got])


def test_to_device_dtype_rules():
    batch = {"x": np.zeros((2, 3), np.float32), "x64": np.zeros(2, np.float64), "y": np.array([1, 2], np.int32),
             "img": np.zeros((2, 2, 2), np.uint8), "name": "keep"}
    out = to_device(batch, "cpu")
    assert out["x"].dtype == np.float32 and out["x64"].dtype == np.float64
    assert out["y"].dtype == np.int64 and out["img"].dtype == np.uint8 and out["name"] == "keep"
    out = to_device((np.zeros(2, np.float64),), "cpu", float_dtype="float32")
    assert isinstance(out, tuple) and out[0].dtype == np.float32
    assert DataLoader(TensorDataset(np.zeros((2, 2))), device="cpu", float_dtype="float32").float_dtype == np.float32


def test_default_collate_types():
    assert default_collate([1, 2]).dtype == np.int64
    assert default_collate([1.0, 2.0]).dtype == np.float64            # PyTorch's rule for Python floats
    assert default_collate([True, False]).dtype == np.bool_
    assert default_collate([np.float64(1), np.float64(2)]).dtype == np.float64
    assert default_collate([np.float32(1), np.float32(2)]).dtype == np.float32
    assert default_collate(["a", "b"]) == ["a", "b"]
    out = default_collate([{"a": np.zeros(2), "b": 1}, {"a": np.ones(2), "b": 2}])
    assert out["a"].shape == (2, 2) and out["b"].tolist() == [1, 2]
    assert isinstance(out["a"], ag.Tensor) and out["a"].dtype == np.float64
    pairs = default_collate([(np.zeros(3, np.float32), 1), (np.ones(3, np.float32), 2)])
    assert isinstance(pairs, list) and [type(t) for t in pairs] == [ag.Tensor, ag.Tensor]   # tuples -> a list
    t = default_collate([ag.tensor([1., 2.]), ag.tensor([3., 4.])])
    assert isinstance(t, ag.Tensor) and t.shape == (2, 2)
    with pytest.raises(TypeError, match="collate_fn"):
        default_collate([object()])
    with pytest.raises(ValueError, match="fields"):
        default_collate([(1, 2), (1,)])


# --- random_split / k_fold -------------------------------------------------------------------------------
@given(parts=st.lists(st.integers(0, 50), min_size=1, max_size=5), seed=st.integers(0, 2**31))
def test_random_split_counts(parts, seed):
    total = sum(parts)
    ds = TensorDataset(np.arange(total))
    subsets = random_split(ds, parts, seed=seed)
    assert [len(s) for s in subsets] == parts
    idx = np.concatenate([s.indices for s in subsets])
    assert sorted(idx.tolist()) == list(range(total))     # disjoint and covering


@given(n=st.integers(0, 300), weights=st.lists(st.integers(1, 10), min_size=1, max_size=6),
       seed=st.integers(0, 2**31))
def test_random_split_fractions(n, weights, seed):
    fracs = [w / sum(weights) for w in weights]
    subsets = random_split(TensorDataset(np.arange(n)), fracs, seed=seed)
    sizes = [len(s) for s in subsets]
    assert sum(sizes) == n
    for size, f in zip(sizes, fracs):
        assert abs(size - n * f) <= 1 + 1e-9
    assert sorted(np.concatenate([s.indices for s in subsets]).tolist()) == list(range(n))


def test_random_split_reproducible_and_errors():
    ds = TensorDataset(np.arange(20))
    a = random_split(ds, [0.5, 0.5], seed=3)
    b = random_split(ds, [10, 10], seed=3)
    np.testing.assert_array_equal(a[0].indices, b[0].indices)
    assert int(a[1][0][0]) == int(a[1].indices[0])
    with pytest.raises(ValueError, match="sum"):
        random_split(ds, [5, 5])
    with pytest.raises(ValueError, match="sum to 1"):
        random_split(ds, [0.5, 0.2])
    with pytest.raises(ValueError, match="non-negative"):
        random_split(ds, [25, -5])


@given(n=st.integers(2, 120), data=st.data())
def test_k_fold_properties(n, data):
    k = data.draw(st.integers(2, min(n, 10)))
    shuffle = data.draw(st.booleans())
    seed = data.draw(st.integers(0, 2**31))
    folds = list(k_fold(n, k, shuffle=shuffle, seed=seed))
    assert len(folds) == k
    vals = [v for _, v in folds]
    allval = np.concatenate(vals)
    assert sorted(allval.tolist()) == list(range(n))          # each sample validated exactly once
    sizes = [len(v) for v in vals]
    assert max(sizes) - min(sizes) <= 1
    for train, val in folds:
        assert train.dtype == np.int64 and val.dtype == np.int64
        assert not set(train.tolist()) & set(val.tolist())
        assert len(train) + len(val) == n                     # train is everything else


def test_k_fold_from_dataset_unshuffled_blocks_and_errors():
    folds = list(k_fold(TensorDataset(np.arange(7)), 3, shuffle=False))
    assert [v.tolist() for _, v in folds] == [[0, 1, 2], [3, 4], [5, 6]]
    a = [v.tolist() for _, v in k_fold(10, 5, seed=1)]
    b = [v.tolist() for _, v in k_fold(10, 5, seed=1)]
    assert a == b
    with pytest.raises(ValueError, match="k"):
        list(k_fold(3, 4))
    with pytest.raises(ValueError, match="k"):
        list(k_fold(3, 1))


# --- transforms ------------------------------------------------------------------------------------------
def test_to_float_and_normalize_to():
    x = np.array([[0, 128, 255]], dtype=np.uint8)
    f = T.ToFloat()(x)
    assert f.dtype == np.float32
    np.testing.assert_allclose(f, [[0, 128 / 255, 1]], rtol=1e-6)
    g = T.normalize_to(-1, 1)(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, [[-1, 128 / 255 * 2 - 1, 1]], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(T.NormalizeTo(-1, 1)(f), g, atol=1e-7)
    assert x.dtype == np.uint8 and x[0, 2] == 255
    with pytest.raises(ValueError):
        T.NormalizeTo(1, 1)
    with pytest.raises(ValueError):
        T.ToFloat("int32")


def test_normalize_scalar_and_per_channel():
    x = np.ones((2, 3, 2, 2), np.float32)
    out = T.Normalize(0.5, 0.25)(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 2.0)
    out = T.Normalize([0.0, 0.5, 1.0], [1.0, 0.5, 2.0])(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0], 1.0)
    np.testing.assert_allclose(out[:, 1], 1.0)
    np.testing.assert_allclose(out[:, 2], 0.0)
    u8 = np.full((1, 4), 255, np.uint8)
    np.testing.assert_allclose(T.Normalize(0.5, 0.5)(u8), 1.0)   # integers go through ToFloat first
    with pytest.raises(ValueError):
        T.Normalize(0.0, 0.0)
    with pytest.raises(ValueError):
        T.Normalize([0.1, 0.2], [1, 1])(np.zeros(3, np.float32))


def test_flatten_compose_lambda():
    x = np.zeros((5, 2, 3, 4), np.uint8)
    out = T.Compose([T.ToFloat(), T.Flatten(), T.Lambda(lambda a: a + 1)])(x)
    assert out.shape == (5, 24) and out.dtype == np.float32 and float(out.min()) == 1.0
    assert "ToFloat" in repr(T.Compose([T.ToFloat(), T.Flatten()]))
