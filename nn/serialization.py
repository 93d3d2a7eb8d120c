"""``nn.save`` / ``nn.load``: checkpoints in a format that cannot execute code when loaded.

A checkpoint is a ``.npz`` archive (a zip of ``.npy`` files) written without pickles: one entry per array
(Tensors and NumPy/CuPy arrays) plus ``__structure__``, a UTF-8 JSON document (stored as a uint8 array)
describing the nested dicts/lists/tuples of numbers, strings, booleans and None and where each array goes.
``nn.load`` reads it with ``numpy.load(allow_pickle=False)`` and refuses any pickled object array.

    nn.save({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 3}, "ckpt.npz")
    ckpt = nn.load("ckpt.npz")            # CPU tensors; nn.load(path, device="cuda") puts them on the GPU
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optim"])

The device is not saved. Saving writes a temporary file beside the target and renames it over the target,
so an interrupted save never leaves a half-written checkpoint.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from collections import OrderedDict

import backends
from autograd import Tensor

from .parameter import Parameter

__all__ = ["save", "load", "CheckpointError"]

_np = backends.cpu.xp          # host-side file format (nn/ never imports NumPy directly)
_FORMAT = "xpgrad-checkpoint"
_VERSION = 1
_STRUCT = "__structure__"
_SCALARS = (type(None), bool, int, float, str)


class CheckpointError(ValueError):
    """``nn.load`` found a file that is not a valid, safe xpgrad checkpoint (corrupt, truncated, pickled)."""


# --- saving -------------------------------------------------------------------------------------------
def _is_array(x) -> bool:
    return isinstance(x, _np.ndarray) or (type(x).__module__.startswith("cupy")
                                          and hasattr(x, "__cuda_array_interface__"))


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, object] = {}
        self.memo: dict[int, str] = {}        # id(tensor or array) -> entry name, so shared ones are stored once
        self.keep: list = []                  # keeps memoised objects alive while encoding
        self.active: set[int] = set()         # containers being encoded (cycle detection)

    def _store(self, x, host) -> str:
        key = self.memo.get(id(x))
        if key is None:
            if host.dtype.hasobject:
                raise TypeError(f"nn.save: cannot save an array of dtype {host.dtype} (Python objects would need "
                                "pickling)")
            key = f"a{len(self.arrays)}"
            self.arrays[key] = host
            self.memo[id(x)] = key
            self.keep.append(x)
        return key

    def encode(self, x, where: str):
        if isinstance(x, float):
            return x if math.isfinite(x) else {"__float__": repr(x)}
        if isinstance(x, _SCALARS):
            return x
        if isinstance(x, Tensor):
            key = self._store(x, x._backend.to_host(x.data))
            return {"__tensor__": key, "requires_grad": bool(x.requires_grad), "parameter": isinstance(x, Parameter)}
        if _is_array(x):
            return {"__ndarray__": self._store(x, backends.backend_of(x).to_host(x))}
        if isinstance(x, _np.generic):
            return {"__scalar__": self._store(x, _np.asarray(x))}
        if isinstance(x, (dict, list, tuple)):
            if id(x) in self.active:
                raise ValueError(f"nn.save: circular reference at {where}")
            self.active.add(id(x))
            try:
                if isinstance(x, dict):
                    items = []
                    for k, v in x.items():
                        if not isinstance(k, _SCALARS) or (isinstance(k, float) and not math.isfinite(k)):
                            raise TypeError(f"nn.save: dict key {k!r} at {where} is not a string, number, bool or "
                                            "None")
                        items.append([k, self.encode(v, f"{where}[{k!r}]")])
                    node = {"__dict__": items}
                    if isinstance(x, OrderedDict):
                        node["ordered"] = True
                    return node
                out = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(x)]
                return out if isinstance(x, list) else {"__tuple__": out}
            finally:
                self.active.discard(id(x))
        hint = "; save its state_dict() instead" if hasattr(x, "state_dict") else ""
        raise TypeError(f"nn.save: cannot save a {type(x).__name__} at {where} (supported: dicts, lists, tuples, "
                        f"Tensors, arrays, numbers, strings, bools, None){hint}")


def _write(fh, arrays: dict, meta: bytes) -> None:
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        entries = [(_STRUCT, _np.frombuffer(meta, dtype=_np.uint8))] + list(arrays.items())
        for name, arr in entries:
            with zf.open(name + ".npy", "w", force_zip64=True) as out:
                _np.lib.format.write_array(out, arr, allow_pickle=False)


def save(obj, f) -> None:
    """Save ``obj`` (nested dicts/lists/tuples of Tensors, arrays, numbers, strings, bools, None) to ``f``.

    Args:
        obj: e.g. ``{"model": model.state_dict(), "optimizer": opt.state_dict()}``.
        f: a path (written atomically: temporary file, then rename) or a binary file object.

    Raises:
        TypeError: for an object that cannot be stored without pickling (nothing is written).
    """
    enc = _Encoder()
    root = enc.encode(obj, "obj")
    meta = json.dumps({"format": _FORMAT, "version": _VERSION, "root": root}, allow_nan=False).encode("utf-8")
    if hasattr(f, "write"):
        _write(f, enc.arrays, meta)
        return
    path = os.fspath(f)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            _write(fh, enc.arrays, meta)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)         # mkstemp makes the file private; give it the usual mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --- loading ------------------------------------------------------------------------------------------
class _Decoder:
    def __init__(self, arrays: dict, backend, name: str) -> None:
        self.arrays = arrays
        self.backend = backend
        self.name = name
        self.memo: dict[str, object] = {}

    def bad(self, what: str) -> CheckpointError:
        return CheckpointError(f"nn.load: {self.name} is not a valid xpgrad checkpoint: {what}")

    def array(self, key):
        if not isinstance(key, str) or key not in self.arrays:
            raise self.bad(f"its structure refers to a missing array entry {key!r} (truncated or edited file?)")
        return self.arrays[key]

    def decode(self, node):
        if isinstance(node, _SCALARS):
            return node
        if isinstance(node, list):
            return [self.decode(n) for n in node]
        if not isinstance(node, dict):
            raise self.bad(f"unexpected JSON value {node!r}")
        if "__dict__" in node:
            items = node["__dict__"]
            if not isinstance(items, list):
                raise self.bad("malformed dict entry")
            out = OrderedDict() if node.get("ordered") else {}
            for item in items:
                if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], _SCALARS)):
                    raise self.bad(f"malformed dict item {item!r}")
                out[item[0]] = self.decode(item[1])
            return out
        if "__tuple__" in node:
            if not isinstance(node["__tuple__"], list):
                raise self.bad("malformed tuple entry")
            return tuple(self.decode(n) for n in node["__tuple__"])
        if "__float__" in node:
            s = node["__float__"]
            if s not in ("nan", "inf", "-inf"):
                raise self.bad(f"malformed float {s!r}")
            return float(s)
        if "__tensor__" in node:
            key = node["__tensor__"]
            t = self.memo.get(key)
            if t is None:
                arr = self.array(key)
                rg = bool(node.get("requires_grad")) and arr.dtype.kind == "f"
                with self.backend.activate():
                    data = self.backend.asarray(arr)
                t = Parameter(data, requires_grad=rg) if node.get("parameter") else Tensor(data, requires_grad=rg)
                self.memo[key] = t
            return t
        if "__ndarray__" in node:
            return self.array(node["__ndarray__"])
        if "__scalar__" in node:
            arr = self.array(node["__scalar__"])
            if arr.ndim != 0:
                raise self.bad("a scalar entry is not 0-d")
            return arr[()]
        raise self.bad(f"unknown entry with keys {sorted(node)}")


def _head(f, n: int = 6) -> bytes:
    """The first bytes of a path or a seekable file object (its position is restored)."""
    if hasattr(f, "read"):
        pos = f.tell()
        head = f.read(n)
        f.seek(pos)
        return bytes(head)
    with open(f, "rb") as fh:
        return fh.read(n)


def load(f, map_location=None, *, device=None):
    """Load an object saved by :func:`save`.

    Args:
        f: a path or a binary file object.
        map_location: device for the loaded Tensors (``"cpu"``, ``"cuda"``, ``"cuda:N"``); default CPU.
            Raw arrays are returned as NumPy arrays.
        device: the same as ``map_location``.

    Raises:
        CheckpointError: (a ValueError) for a corrupt, truncated or foreign file, or one holding pickled
            objects (which could run code when loaded; they are never unpickled).
        FileNotFoundError: when the path does not exist.
    """
    if device is not None and map_location is not None and \
            backends.parse_device(device) != backends.parse_device(map_location):
        raise ValueError(f"nn.load: map_location={map_location!r} and device={device!r} disagree")
    dev = device if device is not None else map_location
    be = backends.get_backend(dev) if dev is not None else backends.cpu
    name = repr(os.fspath(f)) if not hasattr(f, "read") else repr(getattr(f, "name", "<file object>"))
    if not hasattr(f, "read"):
        f = os.fspath(f)
        if not os.path.exists(f):
            raise FileNotFoundError(f"nn.load: no such file: {name}")
    head = _head(f)
    if head[:1] == b"\x80":
        raise CheckpointError(f"nn.load: refusing to load {name}: it is a Python pickle (e.g. written by "
                              "torch.save or pickle.dump), which could execute code when loaded; nn.load reads "
                              "only xpgrad's .npz checkpoints")
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
        raise CheckpointError(f"nn.load: {name} is not a valid xpgrad checkpoint: it is not an .npz archive "
                              f"(it starts with {head!r}); the file may be truncated or corrupt")
    try:
        npz = _np.load(f, allow_pickle=False)
    except Exception as e:  # noqa: BLE001  (anything numpy/zipfile raise on a damaged file)
        if "allow_pickle" in str(e):
            raise CheckpointError(f"nn.load: refusing to load {name}: it holds a pickled Python object, which "
                                  "could execute code when loaded") from e
        raise CheckpointError(f"nn.load: {name} is not a valid xpgrad checkpoint: it could not be read as an "
                              f".npz archive ({type(e).__name__}: {e}); the file may be truncated or corrupt") from e
    if not hasattr(npz, "files"):
        raise CheckpointError(f"nn.load: {name} is a plain .npy array, not an xpgrad checkpoint (use numpy.load)")
    arrays = {}
    with npz:
        for key in npz.files:
            try:
                arrays[key] = npz[key]
            except Exception as e:  # noqa: BLE001
                if "allow_pickle" in str(e):
                    raise CheckpointError(f"nn.load: refusing to load {name}: entry {key!r} is a pickled Python "
                                          "object array, which could execute code when loaded; xpgrad "
                                          "checkpoints hold only plain arrays") from e
                raise CheckpointError(f"nn.load: {name} is not a valid xpgrad checkpoint: entry {key!r} could not "
                                      f"be read ({type(e).__name__}: {e}); the file may be truncated or "
                                      "corrupt") from e
    raw = arrays.pop(_STRUCT, None)
    if raw is None:
        raise CheckpointError(f"nn.load: {name} is an .npz archive but not an xpgrad checkpoint (it has no "
                              f"'{_STRUCT}' entry); read plain .npz files with numpy.load")
    try:
        if raw.dtype != _np.uint8 or raw.ndim != 1:
            raise ValueError(f"structure entry has dtype {raw.dtype} and shape {raw.shape}")
        meta = json.loads(raw.tobytes().decode("utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise ValueError("unknown format tag")
        if not isinstance(meta.get("version"), int) or meta["version"] > _VERSION:
            raise ValueError(f"format version {meta.get('version')!r} is newer than this xpgrad reads "
                             f"({_VERSION})")
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise CheckpointError(f"nn.load: {name} is not a valid xpgrad checkpoint: bad structure entry ({e})") from e
    return _Decoder(arrays, be, name).decode(meta.get("root"))
