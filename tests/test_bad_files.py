"""Damaged and crafted files: checkpoints (nn.load, fit's resume) and IDX data files (read_idx, datasets).

One table, one test. Every case writes a small file into tmp_path, runs the reader on it and asserts the
exception type, a message naming the file and the entry or limit at fault, that the model's parameters and
optimizer state are unchanged, and that no file was changed, added or removed (hashes before and after).
Limits are proved with crafted headers that declare more than the limit (nothing large is ever allocated)
and with limits lowered by keyword or by monkeypatching the module default.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import pickle
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import autograd as ag
import nn
import nn.data.idx as idx
import nn.serialization as ser
from nn.data import DataLoader, TensorDataset, datasets
from nn.data.idx import IDXFormatError, read_idx, read_idx_images, read_idx_labels, write_idx
from nn.serialization import CheckpointError
from tests.test_serialization import _set_zip_size
from nn.training import History, fit

IMG_GZ = "train-images-idx3-ubyte.gz"
LBL_GZ = "train-labels-idx1-ubyte.gz"


# --- the model every case must leave alone ----------------------------------------------------------------
def _model():
    ag.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))
    opt = nn.optim.Adam(model.parameters(), lr=1e-2)
    x = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    y = np.arange(8) % 3
    fit(model, opt, nn.CrossEntropyLoss(), DataLoader(TensorDataset(x, y), 4), 1, progress=False)   # Adam state
    return model, opt


def _fingerprint(model, opt) -> str:
    h = hashlib.sha256()
    for k, t in model.state_dict().items():
        h.update(k.encode() + t.numpy().tobytes())
    for k, st in sorted(opt.state_dict()["state"].items()):
        for n, v in sorted(st.items()):
            h.update(f"{k}.{n}".encode() + (v.numpy().tobytes() if isinstance(v, ag.Tensor) else repr(v).encode()))
    h.update(repr(opt.param_groups[0]["lr"]).encode())
    return h.hexdigest()


def _hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- crafting helpers --------------------------------------------------------------------------------------
def _checkpoint_dict(model, opt) -> dict:
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 0, "history": History().to_dict(),
            "scheduler": None, "early_stopping": None, "rng": {}}


def _good_checkpoint_bytes(model, opt) -> bytes:
    buf = io.BytesIO()
    nn.save(_checkpoint_dict(model, opt), buf)
    return buf.getvalue()


def _npz(entries: dict, compression=zipfile.ZIP_DEFLATED, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, arr in entries.items():
            with zf.open(name + ".npy", "w") as fh:
                np.lib.format.write_array(fh, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def _meta(root, fmt="xpgrad-checkpoint", version=1) -> np.ndarray:
    text = root if isinstance(root, str) else json.dumps(root)
    return np.frombuffer(json.dumps({"format": fmt, "version": version}).encode()[:-1]
                         + b', "root": ' + text.encode() + b"}", np.uint8)


def _npy_bytes(arr) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr)
    return buf.getvalue()


class _Evil:
    def __reduce__(self):
        return (pytest.fail, ("unpickled!",))


def _idx_header(code: int, dims) -> bytes:
    return bytes([0, 0, code, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)


def _images(n=3, shape=(28, 28)) -> bytes:
    a = np.random.default_rng(1).integers(0, 256, (n, *shape), dtype=np.uint8)
    return _idx_header(8, a.shape) + a.tobytes()


def _labels(n=3, top=9) -> bytes:
    a = (np.arange(n) % (top + 1)).astype(np.uint8)
    return _idx_header(8, a.shape) + a.tobytes()


# --- what each case writes, and how it is read -----------------------------------------------------------
@dataclass
class Case:
    files: Callable           # (model, opt) -> {relative name: bytes}; the first one is "the" file
    action: str               # load | resume | idx | images | labels | mnist
    exc: type
    match: str                # regex the message must contain (besides the file name)
    kw: dict = field(default_factory=dict)
    patch: dict = field(default_factory=dict)    # {(module, name): value} for lowered module defaults


def _resume_files(mutate):
    def files(model, opt):
        ckpt = _checkpoint_dict(model, opt)
        mutate(ckpt)
        buf = io.BytesIO()
        nn.save(ckpt, buf)
        return {"checkpoint.npz": buf.getvalue()}
    return files


def _mnist(images: bytes, labels: bytes, gz=True):
    if gz:
        return lambda m, o: {IMG_GZ: gzip.compress(images), LBL_GZ: gzip.compress(labels)}
    return lambda m, o: {IMG_GZ[:-3]: images, LBL_GZ[:-3]: labels}


def _wrong_opt_shape(c):
    c["optimizer"]["state"][0]["exp_avg"] = ag.zeros(2, 2)


def _other_model(c):
    c["model"]["0.weight"] = ag.zeros(7, 4)
    c["model"]["0.bias"] = ag.zeros(7)


def _zip_bomb(model, opt):
    meta = _meta({"__ndarray__": "a0"})
    return {"bomb.npz": _npz({"__structure__": meta, "a0": np.zeros(2_000_000, np.uint8)})}   # ~2 KB on disk


def _lying_zip(model, opt):
    meta = _meta({"__ndarray__": "a0"})
    big = np.zeros(1_000_000)
    data = _npz({"__structure__": meta, "a0": big})
    return {"liar.npz": _set_zip_size(data, "a0.npy", 200, zlib.crc32(_npy_bytes(big)[:200]))}


def _declared_huge(model, opt):
    meta = _meta({"__ndarray__": "a0"})
    return {"huge.npz": _set_zip_size(_npz({"__structure__": meta, "a0": np.zeros(10)}), "a0.npy", 0xFFFFFF00)}


def _npy_header_bigger_than_data(model, opt):
    meta = _meta({"__ndarray__": "a0"})
    data = _npz({"__structure__": meta, "a0": np.arange(10.0)}, zipfile.ZIP_STORED)
    return {"shape.npz": data.replace(b"'shape': (10,)", b"'shape': (20,)")}


def _header_length_bomb(model, opt):
    """A version-2 .npy member whose header claims 2 GiB of header text (3 MB of zeros, ~3 KB deflated)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("__structure__.npy", "w") as fh:
            np.lib.format.write_array(fh, _meta({"__ndarray__": "a0"}))
        zf.writestr("a0.npy", b"\x93NUMPY\x02\x00" + (2 ** 31).to_bytes(4, "little") + bytes(3_000_000))
    return {"hdr.npz": buf.getvalue()}


def _bad_crc(model, opt):
    data = bytearray(_npz({"__structure__": _meta({"__ndarray__": "a0"}), "a0": np.arange(64.0)},
                          zipfile.ZIP_STORED))
    pos = bytes(data).find(np.arange(64.0).tobytes()) + 100
    data[pos] ^= 0xFF
    return {"crc.npz": bytes(data)}


def _with_pickled_entry(model, opt):
    good = _good_checkpoint_bytes(model, opt)
    buf = io.BytesIO(good)
    with zipfile.ZipFile(buf, "a") as zf, zf.open("evil.npy", "w") as fh:
        np.lib.format.write_array(fh, np.array([_Evil(), 1], dtype=object), allow_pickle=True)
    return {"evil.npz": buf.getvalue()}


def _deep_dicts(depth):
    node = "1"
    for i in range(depth):
        node = '{"__dict__": [["k%d", %s]]}' % (i, node)
    return node


CASES = {
    # --- nn.load on damaged, foreign and hostile files ---
    "ckpt empty file": Case(lambda m, o: {"empty.npz": b""}, "load", CheckpointError, "not an .npz archive"),
    "ckpt garbage text": Case(lambda m, o: {"text.npz": b"hello, world\n" * 10}, "load", CheckpointError,
                              "not an .npz archive"),
    "ckpt wrong magic": Case(lambda m, o: {"gif.npz": b"GIF89a" + bytes(100)}, "load", CheckpointError,
                             r"starts with b'GIF89a'"),
    "ckpt truncated": Case(lambda m, o: {"cut.npz": _good_checkpoint_bytes(m, o)[:700]}, "load", CheckpointError,
                           "truncated or corrupt"),
    "ckpt truncated tail": Case(lambda m, o: {"cut.npz": _good_checkpoint_bytes(m, o)[:-30]}, "load",
                                CheckpointError, "truncated or corrupt"),
    "ckpt plain pickle": Case(lambda m, o: {"model.pt": pickle.dumps({"w": _Evil()})}, "load", CheckpointError,
                              "Python pickle"),
    "ckpt plain .npy": Case(lambda m, o: {"arr.npy": _npy_bytes(np.ones(3))}, "load", CheckpointError,
                            r"plain \.npy array"),
    "ckpt pickled object array": Case(
        lambda m, o: {"obj.npz": _npz({"x": np.array([_Evil(), 1], dtype=object)}, allow_pickle=True)},
        "load", CheckpointError, r"entry 'x' is a pickled Python object array"),
    "ckpt pickled entry beside a valid checkpoint": Case(_with_pickled_entry, "load", CheckpointError,
                                                         r"entry 'evil' is a pickled"),
    "ckpt plain npz without structure": Case(lambda m, o: {"plain.npz": _npz({"a": np.ones(3)})}, "load",
                                             CheckpointError, "no '__structure__' entry"),
    "ckpt structure not json": Case(
        lambda m, o: {"junk.npz": _npz({"__structure__": np.frombuffer(b"{not json", np.uint8)})}, "load",
        CheckpointError, "bad structure entry"),
    "ckpt foreign format tag": Case(
        lambda m, o: {"tag.npz": _npz({"__structure__": _meta("null", fmt="something-else")})}, "load",
        CheckpointError, "unknown format tag"),
    "ckpt future version": Case(lambda m, o: {"v99.npz": _npz({"__structure__": _meta("null", version=99)})},
                                "load", CheckpointError, "version 99 is newer"),
    "ckpt dangling array reference": Case(
        lambda m, o: {"dangling.npz": _npz({"__structure__": _meta({"__tensor__": "a9"})})}, "load",
        CheckpointError, r"missing array entry 'a9'"),
    "ckpt 100000 nested lists": Case(
        lambda m, o: {"deep.npz": _npz({"__structure__": _meta("[" * 100000 + "]" * 100000)})}, "load",
        CheckpointError, r"'__structure__' nests 100001 JSON levels.*max_depth=64"),
    "ckpt 65 nested dicts": Case(lambda m, o: {"dicts.npz": _npz({"__structure__": _meta(_deep_dicts(65))})},
                                 "load", CheckpointError, r"'__structure__' nests 196 JSON levels.*max_depth=64"),
    "ckpt 65 nested lists": Case(lambda m, o: {"lists.npz": _npz({"__structure__": _meta("[" * 65 + "]" * 65)})},
                                 "load", CheckpointError, r"root\[0\]\[0\].*nested more than max_depth=64"),
    "ckpt depth over a lowered limit": Case(
        lambda m, o: {"three.npz": _npz({"__structure__": _meta([[[1]]])})}, "load", CheckpointError,
        r"root\[0\]\[0\] is nested more than max_depth=2", kw={"max_depth": 2}),
    "ckpt depth over a lowered module default": Case(
        lambda m, o: {"three.npz": _npz({"__structure__": _meta([[[1]]])})}, "load", CheckpointError,
        "max_depth=1", patch={(ser, "MAX_DEPTH"): 1}),
    "ckpt entry declaring 4 GB": Case(_declared_huge, "load", CheckpointError,
                                      r"entry 'a0' declares an uncompressed size of 4,294,967,040 bytes.*"
                                      r"max_bytes=1,073,741,824", kw={"max_bytes": 1 << 30}),
    "ckpt entry declaring 4 GB under the limit": Case(_declared_huge, "load", CheckpointError,
                                                      r"entry 'a0' could not be read.*\.npy header declares 208 "
                                                      r"bytes, the zip entry 4294967040"),
    "ckpt zip bomb over max_bytes=": Case(_zip_bomb, "load", CheckpointError,
                                          r"entry 'a0' declares an uncompressed size of 2,000,128 bytes.*"
                                          r"max_bytes=1,000,000", kw={"max_bytes": 1_000_000}),
    "ckpt zip bomb over a lowered MAX_BYTES": Case(_zip_bomb, "load", CheckpointError, r"'a0'.*max_bytes=1,500,000",
                                                   patch={(ser, "MAX_BYTES"): 1_500_000}),
    "ckpt lying zip header": Case(_lying_zip, "load", CheckpointError,
                                  r"entry 'a0' has a \.npy header declaring shape \(1000000,\).*max_bytes=100,000",
                                  kw={"max_bytes": 100_000}),
    "ckpt lying zip header under the limit": Case(_lying_zip, "load", CheckpointError,
                                                  r"entry 'a0' could not be read.*declares 8000128 bytes, the zip "
                                                  r"entry 200"),
    "ckpt npy header larger than its data": Case(_npy_header_bigger_than_data, "load", CheckpointError,
                                                 r"entry 'a0' could not be read.*truncated or corrupt"),
    "ckpt .npy header length bomb": Case(_header_length_bomb, "load", CheckpointError,
                                         r"entry 'a0' could not be read.*\.npy header is longer than 10016 bytes"),
    "ckpt bad CRC": Case(_bad_crc, "load", CheckpointError, r"entry 'a0' could not be read \(BadZipFile: Bad CRC"),
    # --- fit(..., checkpoint_dir=...) resuming from a checkpoint that does not fit ---
    "resume without optimizer": Case(_resume_files(lambda c: c.pop("optimizer")), "resume", CheckpointError,
                                     r"no 'optimizer' entry.*nothing was loaded|nothing was loaded.*no 'optimizer'"),
    "resume without model": Case(_resume_files(lambda c: c.pop("model")), "resume", CheckpointError,
                                 "no 'model' entry"),
    "resume without history and epoch": Case(_resume_files(lambda c: (c.pop("history"), c.pop("epoch"))), "resume",
                                             CheckpointError, "no 'epoch', 'history' entries"),
    "resume optimizer state of a wrong shape": Case(_resume_files(_wrong_opt_shape), "resume", CheckpointError,
                                                    r"'optimizer' does not fit Adam.*'exp_avg'.*shape \(2, 2\)"),
    "resume another model's weights": Case(_resume_files(_other_model), "resume", CheckpointError,
                                           r"'model\.0\.weight' has shape \(7, 4\), the model's \(5, 4\)"),
    "resume epoch not a number": Case(_resume_files(lambda c: c.update(epoch="three")), "resume", CheckpointError,
                                      r"'epoch' is 'three'"),
    # --- IDX files ---
    "idx bad magic": Case(lambda m, o: {"lbl": _labels()}, "images", IDXFormatError,
                          "magic number 0x00000801, expected 0x00000803"),
    "idx images read as labels": Case(lambda m, o: {"img": _images()}, "labels", IDXFormatError,
                                      "magic number 0x00000803, expected 0x00000801"),
    "idx not an idx file": Case(lambda m, o: {"junk": b"PK\x03\x04" + bytes(60)}, "idx", IDXFormatError,
                                "is not an IDX header"),
    "idx unknown type code": Case(lambda m, o: {"t": _idx_header(0x07, (2,)) + bytes(2)}, "idx", IDXFormatError,
                                  "not an IDX header"),
    "idx wrong dims": Case(lambda m, o: {"flat": _idx_header(8, (3, 784)) + bytes(3 * 784)}, "images",
                           IDXFormatError, "magic number 0x00000802, expected 0x00000803"),
    "idx wrong image size": Case(_mnist(_images(shape=(27, 28)), _labels()), "mnist", IDXFormatError,
                                 "images are 27x28, expected 28x28"),
    "idx header larger than data": Case(lambda m, o: {"cut": _images()[:-100]}, "images", IDXFormatError,
                                        r"header says shape \(3, 28, 28\).*the file is truncated"),
    "idx header cut inside the dimensions": Case(lambda m, o: {"hdr": _images()[:9]}, "images", IDXFormatError,
                                                 "announces 3 dimensions but the file has only 9 bytes"),
    "idx data longer than header": Case(lambda m, o: {"long": _images() + b"\x00"}, "images", IDXFormatError,
                                        "has trailing bytes"),
    "idx gzip truncated": Case(lambda m, o: {"cut.gz": gzip.compress(_images(50))[:3000]}, "images",
                               IDXFormatError, "corrupt or truncated gzip file"),
    "idx gzip bad CRC": Case(lambda m, o: {"crc.gz": (lambda b: b[:-8] + bytes([b[-8] ^ 0xFF]) + b[-7:])(
        gzip.compress(_images()))}, "images", IDXFormatError, "corrupt or truncated gzip file"),
    "idx gzip stream shorter than header": Case(
        lambda m, o: {"short.gz": gzip.compress(_idx_header(8, (100000, 28, 28)) + bytes(784))}, "images",
        IDXFormatError, r"shape \(100000, 28, 28\).*decompressed stream holds 800 bytes: the file is truncated"),
    "idx gzip stream longer than header": Case(lambda m, o: {"long.gz": gzip.compress(_images() + bytes(99))},
                                               "images", IDXFormatError, "stream holds more: the file has trailing"),
    "idx declared size over the cap": Case(
        lambda m, o: {"bomb.gz": gzip.compress(_idx_header(8, (10 ** 6, 1000, 1000)) + bytes(4096))}, "images",
        IDXFormatError, r"1,000,000,000,000 bytes\), more than the limit max_bytes=2,147,483,648"),
    "idx float64 declared over the cap": Case(
        lambda m, o: {"f8": _idx_header(0x0E, (2 ** 20, 2 ** 9)) + bytes(64)}, "idx", IDXFormatError,
        r"of float64 \(4,294,967,296 bytes\).*max_bytes=2,147,483,648"),
    "idx over max_bytes=": Case(lambda m, o: {"ok.gz": gzip.compress(_images())}, "images", IDXFormatError,
                                r"\(2,352 bytes\), more than the limit max_bytes=1,000", kw={"max_bytes": 1000}),
    "idx over a lowered MAX_BYTES via the dataset loader": Case(
        _mnist(_images(), _labels()), "mnist", IDXFormatError, "max_bytes=2,000", patch={(idx, "MAX_BYTES"): 2000}),
    "idx labels out of range": Case(_mnist(_images(13), _labels(13, top=12), gz=False), "mnist",
                                    IDXFormatError, r"train-labels-idx1-ubyte: label 12 out of range for 10 classes"),
    "idx image and label counts differ": Case(_mnist(_images(3), _labels(4)), "mnist", IDXFormatError,
                                              "holds 3 images but .* holds 4 labels"),
}


@pytest.fixture
def isolated_data(tmp_path, monkeypatch):
    monkeypatch.delenv("XPGRAD_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no-cache"))
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", (str(tmp_path / "no-system"),))
    monkeypatch.setattr(datasets, "_fetch", lambda *a: pytest.fail("network used"))


@pytest.mark.parametrize("name", list(CASES))
def test_bad_file(name, tmp_path, monkeypatch, isolated_data):
    case = CASES[name]
    model, opt = _model()
    folder = tmp_path / "files"
    folder.mkdir()
    files = case.files(model, opt)
    for rel, data in files.items():
        (folder / rel).write_bytes(data)
    path = folder / next(iter(files))
    for (module, attr), value in case.patch.items():
        monkeypatch.setattr(module, attr, value)
    before_files, before_state = _hashes(folder), _fingerprint(model, opt)

    with pytest.raises(case.exc) as info:
        if case.action == "load":
            ckpt = nn.load(path, **case.kw)
            model.load_state_dict(ckpt["model"])
        elif case.action == "resume":
            x = np.zeros((4, 4), np.float32)
            loader = DataLoader(TensorDataset(x, np.zeros(4, np.int64)), 2)
            fit(model, opt, nn.CrossEntropyLoss(), loader, 3, checkpoint_dir=folder, progress=False,
                on_epoch_end=lambda e, r: pytest.fail("trained on a refused checkpoint"))
        elif case.action == "idx":
            read_idx(path, **case.kw)
        elif case.action == "images":
            read_idx_images(path, **case.kw)
        elif case.action == "labels":
            read_idx_labels(path, **case.kw)
        elif case.action == "mnist":
            datasets.mnist("train", root=folder, download=False)
        else:
            raise AssertionError(case.action)

    msg = str(info.value)
    assert re.search(case.match, msg, re.S), f"{name}: {msg!r} does not match {case.match!r}"
    named = [rel for rel in files if rel in msg]
    assert named, f"{name}: the message does not name the file: {msg!r}"
    assert _fingerprint(model, opt) == before_state, f"{name}: model or optimizer changed"
    assert _hashes(folder) == before_files, f"{name}: files changed, added or removed"


def test_there_are_enough_cases():
    assert len(CASES) >= 25
    kinds = {c.action for c in CASES.values()}
    assert kinds >= {"load", "resume", "images", "idx", "mnist"}
