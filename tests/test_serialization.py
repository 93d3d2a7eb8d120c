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


# --- limits on untrusted files: nesting depth, decompressed size, entries read ---------------------------------
def _struct_only(root, entries=None) -> bytes:
    """An .npz holding a hand-made structure (a JSON-able object or JSON text) and optionally extra arrays."""
    text = root if isinstance(root, str) else json.dumps(root)
    meta = ('{"format": "xpgrad-checkpoint", "version": 1, "root": ' + text + "}").encode()
    buf = io.BytesIO()
    np.savez(buf, __structure__=np.frombuffer(meta, np.uint8), **(entries or {}))
    return buf.getvalue()


def _nested(depth):
    x = 1
    for _ in range(depth):
        x = [x]
    return x


def _nested_json(depth) -> str:
    return "[" * depth + "1" + "]" * depth


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path, monkeypatch):
    import nn.serialization as ser
    for depth in (500, 5000, 100000):                # JSON pre-scan: never reaches json.loads' recursion
        (tmp_path / "deep.npz").write_bytes(_struct_only(_nested_json(depth)))
        with pytest.raises(CheckpointError, match=r"deep\.npz.*__structure__.*max_depth=64"):
            nn.load(tmp_path / "deep.npz")
    (tmp_path / "d65.npz").write_bytes(_struct_only(_nested(65)))   # within the JSON bound, over the real one
    with pytest.raises(CheckpointError, match=r"d65\.npz.*root\[0\].*nested more than max_depth=64"):
        nn.load(tmp_path / "d65.npz")
    assert nn.load(tmp_path / "d65.npz", max_depth=65) == _nested(65)
    assert nn.load(tmp_path / "d65.npz", max_depth=1000) == _nested(65)
    monkeypatch.setattr(ser, "MAX_DEPTH", 65)         # the module default is read at call time
    assert nn.load(tmp_path / "d65.npz") == _nested(65)
    monkeypatch.setattr(ser, "MAX_DEPTH", 3)
    with pytest.raises(CheckpointError, match="max_depth=3"):
        nn.load(tmp_path / "d65.npz")
    with pytest.raises(ValueError, match="max_depth"):
        nn.load(tmp_path / "d65.npz", max_depth=-1)


def test_dict_and_tuple_nesting_counts_like_lists(tmp_path):
    obj = {"a": ({"b": [1]},)}                        # dict > tuple > dict > list: 4 containers
    nn.save(obj, tmp_path / "n.npz")
    assert nn.load(tmp_path / "n.npz", max_depth=4) == obj
    with pytest.raises(CheckpointError, match=r"root\['a'\]\[0\]\['b'\].*max_depth=3"):
        nn.load(tmp_path / "n.npz", max_depth=3)


def test_save_refuses_what_load_would_refuse(tmp_path):
    path = tmp_path / "x.npz"
    with pytest.raises(ValueError, match="max_depth=64"):
        nn.save(_nested(65), path)
    with pytest.raises(ValueError, match="max_depth=64"):
        nn.save(_nested(5000), path)                  # no RecursionError either
    assert not os.listdir(tmp_path)
    nn.save(_nested(65), path, max_depth=65)
    assert nn.load(path, max_depth=65) == _nested(65)


def test_size_limit_checks_declared_size_before_reading(tmp_path, monkeypatch):
    import nn.serialization as ser
    nn.save({"big": np.zeros(10 ** 6, np.uint8)}, tmp_path / "raw.npz")
    bomb = tmp_path / "bomb.npz"                      # deflated: ~1 KB on disk, 1 MB once read
    with zipfile.ZipFile(tmp_path / "raw.npz") as zin, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    assert bomb.stat().st_size < 5000
    reads = []
    real_read = ser._Archive.read

    def spy(self, key):
        reads.append(key)
        return real_read(self, key)

    monkeypatch.setattr(ser._Archive, "read", spy)
    with pytest.raises(CheckpointError, match=r"bomb\.npz.*entry 'a0' declares an uncompressed size of "
                                              r"1,000,128 bytes.*max_bytes=500,000"):
        nn.load(bomb, max_bytes=500_000)
    monkeypatch.setattr(ser, "MAX_BYTES", 500_000)
    with pytest.raises(CheckpointError, match="max_bytes=500,000"):
        nn.load(bomb)
    monkeypatch.setattr(ser, "MAX_BYTES", 2_000_000)
    assert nn.load(bomb)["big"].shape == (10 ** 6,)
    assert nn.load(bomb, max_bytes=1_001_000)["big"].shape == (10 ** 6,)
    # the limit is on all entries together: two of 0.6 MB pass one by one but not together
    nn.save({"x": np.zeros(600_000, np.uint8), "y": np.ones(600_000, np.uint8)}, tmp_path / "two.npz")
    with pytest.raises(CheckpointError, match=r"entry 'a1'.*already read"):
        nn.load(tmp_path / "two.npz", max_bytes=1_000_000)


def _set_zip_size(data: bytes, member: str, size: int, crc: int | None = None) -> bytes:
    """Rewrite the uncompressed size (and the CRC) of ``member`` in its local and central headers: a zip header
    that lies about what the member inflates to."""
    data = bytearray(data)
    name = member.encode()
    for sig, name_off, crc_off, size_off in ((b"PK\x03\x04", 30, 14, 22), (b"PK\x01\x02", 46, 16, 24)):
        pos = data.find(sig)
        while pos >= 0:
            if data[pos + name_off:pos + name_off + len(name)] == name:
                data[pos + size_off:pos + size_off + 4] = size.to_bytes(4, "little")
                if crc is not None:
                    data[pos + crc_off:pos + crc_off + 4] = crc.to_bytes(4, "little")
            pos = data.find(sig, pos + 1)
    return bytes(data)


def _npz_plain(entries: dict, compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, arr in entries.items():
            with zf.open(name + ".npy", "w") as fh:
                np.lib.format.write_array(fh, arr, allow_pickle=False)
    return buf.getvalue()


def test_lying_zip_header_does_not_get_past_the_limit(tmp_path):
    import zlib
    meta = json.dumps({"format": "xpgrad-checkpoint", "version": 1, "root": {"__ndarray__": "a0"}}).encode()
    big = np.zeros(10 ** 6)                                      # 8 MB, deflates to ~8 KB
    member = io.BytesIO()
    np.lib.format.write_array(member, big)
    first = member.getvalue()[:200]
    data = _npz_plain({"__structure__": np.frombuffer(meta, np.uint8), "a0": big})
    liar = tmp_path / "liar.npz"
    # the zip says 200 bytes (with their CRC, so zipfile itself is satisfied); the .npy header inside says 8 MB
    liar.write_bytes(_set_zip_size(data, "a0.npy", 200, zlib.crc32(first)))
    with pytest.raises(CheckpointError, match=r"liar\.npz.*'a0' has a \.npy header declaring shape \(1000000,\)"
                                              r".*8,000,128 bytes.*max_bytes=100,000"):
        nn.load(liar, max_bytes=100_000)
    with pytest.raises(CheckpointError, match=r"liar\.npz.*'a0' could not be read.*declares 8000128 bytes, the "
                                              r"zip entry 200"):
        nn.load(liar)                                            # under the limit: still refused, not misread
    liar.write_bytes(_set_zip_size(data, "a0.npy", 200))        # CRC left alone: zipfile's own check
    with pytest.raises(CheckpointError, match=r"liar\.npz.*'a0' could not be read"):
        nn.load(liar)
    # a stored (uncompressed) member whose data stops short of what both headers declare
    data = _npz_plain({"__structure__": np.frombuffer(meta, np.uint8), "a0": np.arange(1000.0)}, zipfile.ZIP_STORED)
    (tmp_path / "short.npz").write_bytes(data.replace(np.arange(1000.0).tobytes(), np.arange(500.0).tobytes()))
    with pytest.raises(CheckpointError, match=r"short\.npz.*could not be read.*truncated or corrupt"):
        nn.load(tmp_path / "short.npz")


def test_only_entries_the_structure_uses_are_read(tmp_path, monkeypatch):
    import nn.serialization as ser
    meta = json.dumps({"format": "xpgrad-checkpoint", "version": 1, "root": {"__ndarray__": "a0"}}).encode()
    data = _npz_plain({"__structure__": np.frombuffer(meta, np.uint8), "a0": np.arange(3.0),
                       "unused": np.zeros(10 ** 6)})
    path = tmp_path / "extra.npz"
    path.write_bytes(_set_zip_size(data, "unused.npy", 5))     # damaged and larger than the limit, but unused
    reads = []
    real_read = ser._Archive.read
    monkeypatch.setattr(ser._Archive, "read", lambda self, key: reads.append(key) or real_read(self, key))
    np.testing.assert_array_equal(nn.load(path, max_bytes=10_000), np.arange(3.0))
    assert reads == ["__structure__", "a0"]


def test_save_removes_temporaries_of_killed_saves(tmp_path):
    import subprocess
    import sys
    import time
    import nn.serialization as ser
    path = tmp_path / "ck.npz"
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = proc.pid                                               # a pid that has exited
    host = ser._HOST
    stale = tmp_path / f".ck.npz.{host}.{dead}.{'ab' * 8}.tmp"   # what a save killed mid-write leaves
    stale.write_bytes(b"PK\x03\x04 half a checkpoint")
    live = tmp_path / f".ck.npz.{host}.{os.getppid()}.{'cd' * 8}.tmp"   # a concurrent live writer's
    live.write_bytes(b"being written")
    mine = tmp_path / f".ck.npz.{host}.{os.getpid()}.{'ef' * 8}.tmp"    # another thread of this process
    mine.write_bytes(b"being written")
    remote = tmp_path / f".ck.npz.otherhost.{dead}.{'12' * 8}.tmp"      # pid means nothing on another host
    remote.write_bytes(b"?")
    remote_old = tmp_path / f".ck.npz.otherhost.{dead}.{'34' * 8}.tmp"
    remote_old.write_bytes(b"?")
    legacy_old = tmp_path / ".ck.npz.k3j_9x2a.tmp"               # older xpgrad's mkstemp names
    legacy_old.write_bytes(b"?")
    legacy_new = tmp_path / ".ck.npz.q8w2e4r6.tmp"
    legacy_new.write_bytes(b"?")
    other = tmp_path / f".other.npz.{host}.{dead}.{'ab' * 8}.tmp"     # another target's: not ours to judge
    other.write_bytes(b"?")
    old = time.time() - 2 * ser.STALE_TEMP_SECONDS
    for p in (remote_old, legacy_old):
        os.utime(p, (old, old))
    nn.save({"v": ag.tensor([1.0])}, path)
    assert sorted(os.listdir(tmp_path)) == sorted(["ck.npz", live.name, mine.name, remote.name, legacy_new.name,
                                                   other.name])
    os.utime(live, (old, old))                                    # untouched for longer than the bound
    nn.save({"v": ag.tensor([2.0])}, path)
    assert not live.exists()
    assert nn.load(path)["v"].numpy().tolist() == [2.0]


def test_save_temporary_file_name_and_mode(tmp_path, monkeypatch):
    import nn.serialization as ser
    seen = []

    def spy(fh, arrays, meta):
        seen.extend(n for n in os.listdir(tmp_path) if n != "m.npz")
        return real(fh, arrays, meta)

    real = ser._write
    monkeypatch.setattr(ser, "_write", spy)
    nn.save({"a": 1}, tmp_path / "m.npz")
    assert ser._temp_pattern(str(tmp_path / "m.npz"), ".tmp").match(seen[0])
    assert f".{os.getpid()}." in seen[0]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "m.npz").st_mode & 0o777 == 0o666 & ~umask
