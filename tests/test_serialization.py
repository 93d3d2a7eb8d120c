"""nn.save / nn.load: round trips, no code execution on load, damaged files, atomic writes."""
from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import autograd as ag
import nn
from nn.serialization import CheckpointError


def _same(a, b) -> bool:
    """Structural equality: containers by type and content, arrays by dtype, shape and values (NaN == NaN)."""
    if isinstance(a, ag.Tensor):
        return (isinstance(b, ag.Tensor) and type(a) is type(b) and a.requires_grad == b.requires_grad
                and _same(a.numpy(), b.numpy()))
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, np.generic):
        return type(a) is type(b) and _same(np.asarray(a), np.asarray(b))
    if isinstance(a, dict):
        return (type(a) is type(b) and list(a) == list(b) and all(type(k) is type(kb) for k, kb in zip(a, b))
                and all(_same(a[k], b[k]) for k in a))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


_dtypes = st.sampled_from([np.float32, np.float64, np.float16, np.int64, np.int32, np.uint8, np.bool_,
                           np.complex64])
_arrays = _dtypes.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)))
_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=True), st.text(max_size=8),
    _arrays,
    _arrays.filter(lambda a: a.dtype.kind == "f").map(lambda a: ag.Tensor(a)),
    hnp.arrays(np.float32, (2,)).map(lambda a: nn.Parameter(ag.Tensor(a))),
    st.sampled_from([np.float32(1.5), np.int64(-3), np.bool_(True)]),
)
_keys = st.one_of(st.text(max_size=6), st.integers(-5, 5), st.booleans(), st.none())
_trees = st.recursive(_leaves, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.lists(kids, max_size=3).map(tuple),
    st.dictionaries(_keys, kids, max_size=3), st.dictionaries(st.text(max_size=4), kids, max_size=3).map(OrderedDict),
), max_leaves=8)


@given(obj=_trees)
def test_round_trip(obj):
    buf = io.BytesIO()
    nn.save(obj, buf)
    buf.seek(0)
    assert _same(obj, nn.load(buf))


def test_round_trip_file_and_tensor_properties(tmp_path):
    w = nn.Parameter(ag.randn(3, 2))
    shared = ag.tensor(np.arange(4.0))
    obj = {"w": w, "b": ag.zeros(2, dtype="float64"), "idx": ag.tensor([1, 2, 3]), "a": shared, "again": shared,
           "nested": [{"x": (1, 2.5, "s")}, None], 7: "int key", "inf": -math.inf}
    path = tmp_path / "obj.ckpt"
    nn.save(obj, path)
    out = nn.load(str(path))
    assert isinstance(out["w"], nn.Parameter) and out["w"].requires_grad and out["w"].dtype == np.float32
    assert out["b"].dtype == np.float64 and not out["b"].requires_grad and out["idx"].dtype == obj["idx"].dtype
    assert out["w"].device == "cpu" and out["a"] is out["again"]            # shared tensors stay shared
    assert out[7] == "int key" and out["inf"] == -math.inf and out["nested"][0]["x"] == (1, 2.5, "s")
    np.testing.assert_array_equal(out["w"].numpy(), w.numpy())
    out2 = nn.load(path, device="cpu")
    assert _same(out2["w"], out["w"])
    with zipfile.ZipFile(path) as zf:                                     # a plain npz, no pickles
        assert "__structure__.npy" in zf.namelist()
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["__structure__"].tobytes())
    assert meta["format"] == "xpgrad-checkpoint" and meta["version"] == 1
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask              # not the temp file's private mode


def test_module_state_dict_round_trip(tmp_path):
    ag.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    model(ag.randn(8, 3))                                                # moves the BatchNorm statistics
    nn.save(model.state_dict(), tmp_path / "m.npz")
    ag.manual_seed(2)
    other = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    sd = nn.load(tmp_path / "m.npz")
    assert isinstance(sd, OrderedDict) and list(sd) == list(model.state_dict())
    other.load_state_dict(sd)
    model.eval()
    other.eval()
    x = ag.randn(5, 3)
    np.testing.assert_array_equal(model(x).numpy(), other(x).numpy())


def test_load_onto_device(tmp_path, device):
    nn.save({"t": ag.tensor([1.0, 2.0]), "a": np.ones(2)}, tmp_path / "d.npz")
    out = nn.load(tmp_path / "d.npz", map_location=device)
    assert out["t"].device == device and out["t"].dtype == np.float32
    assert isinstance(out["a"], np.ndarray)
    with pytest.raises(ValueError, match="disagree"):
        nn.load(tmp_path / "d.npz", map_location="cpu", device="cuda:7")


# --- refusing unsafe and damaged files ------------------------------------------------------------------
_UNPICKLED = []


def _mark():
    _UNPICKLED.append(1)
    return "pwned"


class _Payload:
    def __reduce__(self):
        return (_mark, ())


def test_pickled_object_array_is_refused(tmp_path):
    evil = np.array([_Payload(), 1], dtype=object)
    path = tmp_path / "evil.npz"
    np.savez(path, allow_pickle=True, x=evil)
    with pytest.raises(CheckpointError, match="pickled"):
        nn.load(path)
    # the same inside an otherwise valid checkpoint
    good = tmp_path / "good.npz"
    nn.save({"t": ag.tensor([1.0])}, good)
    with zipfile.ZipFile(good, "a") as zf, zf.open("a1.npy", "w") as fh:
        np.lib.format.write_array(fh, evil, allow_pickle=True)
    with pytest.raises(CheckpointError, match="pickled"):
        nn.load(good)
    assert not _UNPICKLED                                                 # nothing was ever unpickled
    with pytest.raises(ValueError):                                       # CheckpointError is a ValueError
        nn.load(path)


def test_saving_unsupported_objects_fails_cleanly(tmp_path):
    path = tmp_path / "x.npz"
    nn.save({"ok": 1}, path)
    before = path.read_bytes()
    for bad, match in [({"m": nn.Linear(2, 2)}, "state_dict"), ({"s": {1, 2}}, "set"),
                       ({"o": np.array([object()])}, "dtype object"), ({"f": lambda: 0}, "function"),
                       ({(1, 2): 3}, "key")]:
        with pytest.raises(TypeError, match=match):
            nn.save(bad, path)
    cyc = []
    cyc.append(cyc)
    with pytest.raises(ValueError, match="circular"):
        nn.save(cyc, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["x.npz"]


def test_interrupted_write_leaves_old_file(tmp_path, monkeypatch):
    import nn.serialization as ser
    path = tmp_path / "ck.npz"
    nn.save({"v": ag.tensor([1.0])}, path)
    before = path.read_bytes()

    def broken(fh, arrays, meta):
        fh.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(ser, "_write", broken)
    with pytest.raises(OSError, match="disk full"):
        nn.save({"v": ag.tensor([2.0])}, path)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["ck.npz"]


def _checkpoint():
    obj = {"w": ag.tensor(np.arange(12.0).reshape(3, 4)), "b": ag.tensor([1.0, 2.0]), "step": 5}
    buf = io.BytesIO()
    nn.save(obj, buf)
    return obj, buf.getvalue()


@given(frac=st.floats(0.0, 0.999))
def test_truncated_file_gives_clear_error(frac):
    obj, data = _checkpoint()
    with pytest.raises(CheckpointError, match="truncated or corrupt|not a valid"):
        nn.load(io.BytesIO(data[: int(len(data) * frac)]))


def test_truncated_path_names_the_file(tmp_path):
    obj, data = _checkpoint()
    (tmp_path / "cut.npz").write_bytes(data[:-40])
    with pytest.raises(CheckpointError, match="cut.npz.*truncated or corrupt"):
        nn.load(tmp_path / "cut.npz")


@given(pos=st.integers(0, 10 ** 6), byte=st.integers(0, 255))
def test_corrupt_byte_is_detected_or_harmless(pos, byte):
    obj, data = _checkpoint()
    data = bytearray(data)
    pos %= len(data)
    data[pos] = byte
    try:
        out = nn.load(io.BytesIO(bytes(data)))
    except CheckpointError:
        return
    assert _same(obj, out)          # a flip in a field the reader ignores must not change the result


def test_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        nn.load(tmp_path / "missing.npz")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(CheckpointError, match="not a valid"):
        nn.load(tmp_path / "empty")
    (tmp_path / "text").write_text("hello")
    with pytest.raises(CheckpointError, match="not a valid"):
        nn.load(tmp_path / "text")
    np.save(tmp_path / "plain.npy", np.ones(3))
    with pytest.raises(CheckpointError, match=r"plain \.npy"):
        nn.load(tmp_path / "plain.npy")
    np.savez(tmp_path / "plain.npz", a=np.ones(3))
    with pytest.raises(CheckpointError, match="numpy.load"):
        nn.load(tmp_path / "plain.npz")
    # a valid archive whose structure names an array that is not there
    meta = json.dumps({"format": "xpgrad-checkpoint", "version": 1, "root": {"__tensor__": "a9"}}).encode()
    np.savez(tmp_path / "dangling.npz", __structure__=np.frombuffer(meta, np.uint8))
    with pytest.raises(CheckpointError, match="missing array"):
        nn.load(tmp_path / "dangling.npz")
    meta = json.dumps({"format": "xpgrad-checkpoint", "version": 99, "root": None}).encode()
    np.savez(tmp_path / "future.npz", __structure__=np.frombuffer(meta, np.uint8))
    with pytest.raises(CheckpointError, match="version"):
        nn.load(tmp_path / "future.npz")
    np.savez(tmp_path / "junk.npz", __structure__=np.frombuffer(b"{not json", np.uint8))
    with pytest.raises(CheckpointError, match="structure"):
        nn.load(tmp_path / "junk.npz")


def test_plain_pickle_is_refused(tmp_path):
    import pickle
    (tmp_path / "p.pt").write_bytes(pickle.dumps({"w": _Payload()}))
    with pytest.raises(CheckpointError, match="pickle"):
        nn.load(tmp_path / "p.pt")
    assert not _UNPICKLED
