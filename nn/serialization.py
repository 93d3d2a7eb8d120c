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
so an interrupted save never leaves a half-written checkpoint. The temporary file is named
``.<target name>.<host>.<pid>.<random>.tmp``; the next save to the same target removes those left behind by a
killed process (its pid no longer runs on this host) and any older than :data:`STALE_TEMP_SECONDS`, never a
live writer's.

Loading an untrusted file is bounded: the structure may nest at most :data:`MAX_DEPTH` containers deep and
the arrays it uses may take at most :data:`MAX_BYTES` bytes in all once decompressed (both module defaults,
read at call time, and keyword arguments of :func:`load`). Each zip member's declared size and ``.npy``
header are checked against the budget before reading, the data is read in bounded chunks while the bytes
actually produced are counted, and only the entries the structure refers to are read. Anything over a limit
raises :class:`CheckpointError` naming the file, the entry and the limit.
"""
from __future__ import annotations

import json
import math
import operator
import os
import re
import secrets
import socket
import time
import zipfile
from collections import OrderedDict

import backends
from autograd import Tensor

from .parameter import Parameter

__all__ = ["save", "load", "CheckpointError", "MAX_DEPTH", "MAX_BYTES", "STALE_TEMP_SECONDS"]

_np = backends.host          # host-side file format (nn/ never imports NumPy directly)
_FORMAT = "xpgrad-checkpoint"
_VERSION = 1
_STRUCT = "__structure__"
_SCALARS = (type(None), bool, int, float, str)

MAX_DEPTH = 64                 # containers (dicts, lists, tuples) nested in a checkpoint's structure
MAX_BYTES = 4 << 30            # bytes a checkpoint may produce when read (structure + arrays used), 4 GiB
STALE_TEMP_SECONDS = 3600.0    # a save's temporary file untouched this long is abandoned, whatever its pid
_CHUNK = 1 << 22               # bytes read from a zip member at a time
_NPY_HEADER_MAX = 10000        # numpy's own limit on a .npy header


class CheckpointError(ValueError):
    """``nn.load`` found a file that is not a valid, safe xpgrad checkpoint (corrupt, truncated, pickled,
    nested too deep or larger than the configured limits)."""


# --- temporary files --------------------------------------------------------------------------------------
# A temporary file is ".<target>.<host>.<pid>.<token><suffix>" beside its target, so that a later writer of
# the same target can tell whose it is: one whose process is gone (same host) or that nobody has touched for
# STALE_TEMP_SECONDS is removed; a live writer's file (same pid alive, or recent) is left alone.
_HOST = re.sub(r"[^A-Za-z0-9-]", "_", socket.gethostname() or "host")[:64]


def _temp_pattern(target: str, suffix: str):
    base = re.escape("." + os.path.basename(target) + ".")
    return re.compile(base + r"(?:(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>[0-9]+)\.[0-9a-f]{16}|"
                      r"(?P<legacy>[A-Za-z0-9_]{8}))" + re.escape(suffix) + r"\Z")


def _pid_alive(pid: int) -> bool | None:
    """Whether process ``pid`` runs on this host (None: cannot tell on this platform)."""
    if os.name != "posix":
        return None                # os.kill(pid, 0) would terminate the process on Windows
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                # PermissionError: it exists, under another user
        return True
    return True


def remove_stale_temps(target, suffix: str = ".tmp", max_age: float | None = None) -> list[str]:
    """Remove the temporary files that interrupted writers of ``target`` left beside it; returns their paths.

    A file is stale when its writer's pid (same host) no longer runs, or it has not been modified for
    ``max_age`` seconds (default :data:`STALE_TEMP_SECONDS`; the only test for other hosts' files and for the
    random-named ``.<target>.XXXXXXXX<suffix>`` files of older xpgrad versions). Errors are ignored.
    """
    target = os.path.abspath(os.fspath(target))
    folder = os.path.dirname(target)
    max_age = STALE_TEMP_SECONDS if max_age is None else max_age
    pattern = _temp_pattern(target, suffix)
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    now = time.time()
    for name in names:
        m = pattern.match(name)
        if m is None:
            continue
        path = os.path.join(folder, name)
        stale = False
        if m.group("pid") is not None and m.group("host") == _HOST and int(m.group("pid")) != os.getpid():
            stale = _pid_alive(int(m.group("pid"))) is False
        if not stale:
            try:
                stale = now - os.lstat(path).st_mtime > max_age
            except OSError:
                continue
        if stale:
            try:
                os.unlink(path)
                removed.append(path)
            except OSError:
                pass
    return removed


def create_temp(target, suffix: str = ".tmp") -> tuple[int, str]:
    """Remove stale temporaries of ``target``, then create a new one beside it: ``(fd, path)``.

    The file is opened for writing with the usual permissions (``0o666`` less the umask).
    """
    target = os.path.abspath(os.fspath(target))
    remove_stale_temps(target, suffix)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        path = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.{_HOST}.{os.getpid()}."
                                                     f"{secrets.token_hex(8)}{suffix}")
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue


# --- saving -------------------------------------------------------------------------------------------
class _Encoder:
    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.depth = 0
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
            key = self._store(x, x.device.to_host(x.array))
            return {"__tensor__": key, "requires_grad": bool(x.requires_grad), "parameter": isinstance(x, Parameter)}
        if backends.is_array(x):
            return {"__ndarray__": self._store(x, backends.backend_of(x).to_host(x))}
        if isinstance(x, _np.generic):
            return {"__scalar__": self._store(x, _np.asarray(x))}
        if isinstance(x, (dict, list, tuple)):
            if id(x) in self.active:
                raise ValueError(f"nn.save: circular reference at {where}")
            if self.depth >= self.max_depth:
                raise ValueError(f"nn.save: {_short(where)} is nested more than max_depth={self.max_depth} "
                                 "containers deep (nn.load would refuse it; pass max_depth= to both, or raise "
                                 "nn.serialization.MAX_DEPTH)")
            self.active.add(id(x))
            self.depth += 1
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
                self.depth -= 1
        hint = "; save its state_dict() instead" if hasattr(x, "state_dict") else ""
        raise TypeError(f"nn.save: cannot save a {type(x).__name__} at {where} (supported: dicts, lists, tuples, "
                        f"Tensors, arrays, numbers, strings, bools, None){hint}")


def _write(fh, arrays: dict, meta: bytes) -> None:
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        entries = [(_STRUCT, _np.frombuffer(meta, dtype=_np.uint8))] + list(arrays.items())
        for name, arr in entries:
            with zf.open(name + ".npy", "w", force_zip64=True) as out:
                _np.lib.format.write_array(out, arr, allow_pickle=False)


def save(obj, f, *, max_depth: int | None = None) -> None:
    """Save ``obj`` (nested dicts/lists/tuples of Tensors, arrays, numbers, strings, bools, None) to ``f``.

    Args:
        obj: e.g. ``{"model": model.state_dict(), "optimizer": opt.state_dict()}``.
        f: a path (written atomically: a temporary file beside it, then a rename; stale temporaries of the same
            target left by killed processes are removed first) or a binary file object.
        max_depth: most containers nested in ``obj`` (default :data:`MAX_DEPTH`, what :func:`load` accepts).

    Raises:
        TypeError: for an object that cannot be stored without pickling (nothing is written).
        ValueError: for a circular or too deeply nested structure (nothing is written).
    """
    enc = _Encoder(_limit("max_depth", MAX_DEPTH if max_depth is None else max_depth))
    root = enc.encode(obj, "obj")
    meta = json.dumps({"format": _FORMAT, "version": _VERSION, "root": root}, allow_nan=False).encode("utf-8")
    if hasattr(f, "write"):
        _write(f, enc.arrays, meta)
        return
    path = os.fspath(f)
    fd, tmp = create_temp(path, ".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            _write(fh, enc.arrays, meta)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _short(where: str, n: int = 80) -> str:
    """A long path inside a structure, middle elided (deep nesting makes it long)."""
    return where if len(where) <= n else where[:n // 2] + " ... " + where[-n // 2:]


def _limit(name: str, value) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        v = -1
    if isinstance(value, bool) or v < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return v


# --- loading ------------------------------------------------------------------------------------------
class _Bounded:
    """A read-only view of the start of a stream that refuses to read past ``limit`` bytes."""

    def __init__(self, fh, limit: int) -> None:
        self.fh, self.limit, self.pos = fh, limit, 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or self.pos + n > self.limit:
            raise ValueError(f"the .npy header is longer than {self.limit} bytes")
        data = self.fh.read(n)
        self.pos += len(data)
        return data


class _Archive:
    """The members of an open checkpoint zip, read on demand within one byte budget."""

    def __init__(self, zf: zipfile.ZipFile, name: str, max_bytes: int) -> None:
        self.zf = zf
        self.name = name
        self.max_bytes = max_bytes
        self.used = 0                                         # bytes produced by reading so far
        self.members = {i.filename[:-4]: i for i in zf.infolist() if i.filename.endswith(".npy")}

    def bad(self, what: str) -> CheckpointError:
        return CheckpointError(f"nn.load: {self.name} is not a valid xpgrad checkpoint: {what}")

    def _over(self, key: str, what: str, size: int) -> CheckpointError:
        return CheckpointError(
            f"nn.load: refusing to load {self.name}: entry {key!r} {what} {size:,} bytes, which exceeds the limit "
            f"max_bytes={self.max_bytes:,} ({self.used:,} bytes already read); if the file is trusted, pass a "
            "larger max_bytes= to nn.load or raise nn.serialization.MAX_BYTES")

    def _header(self, key: str, fh):
        """``(shape, fortran_order, dtype, header_bytes)`` of the .npy stream ``fh``; refuses object arrays."""
        head = _Bounded(fh, _NPY_HEADER_MAX + 16)    # a version-2 header may declare 4 GiB of header text
        version = _np.lib.format.read_magic(head)
        if version == (1, 0):
            shape, fortran, dtype = _np.lib.format.read_array_header_1_0(head, max_header_size=_NPY_HEADER_MAX)
        elif version == (2, 0):
            shape, fortran, dtype = _np.lib.format.read_array_header_2_0(head, max_header_size=_NPY_HEADER_MAX)
        else:
            raise ValueError(f".npy format version {version} is not supported")
        if dtype.hasobject:
            raise CheckpointError(f"nn.load: refusing to load {self.name}: entry {key!r} is a pickled Python "
                                  "object array, which could execute code when loaded; xpgrad checkpoints hold "
                                  "only plain arrays")
        return tuple(int(d) for d in shape), bool(fortran), dtype, head.pos

    def check_headers(self) -> None:
        """Refuse the file when any .npy member is a pickled object array (reads only the headers)."""
        for key in self.members:
            try:
                with self.zf.open(self.members[key]) as fh:
                    self._header(key, fh)
            except CheckpointError:
                raise
            except Exception:  # noqa: BLE001  (damaged members are reported when, and only if, they are used)
                pass

    def read(self, key: str):
        """The array stored as ``key``: declared sizes checked first, then read in chunks, bytes counted."""
        info = self.members.get(key)
        if info is None:
            raise self.bad(f"its structure refers to a missing array entry {key!r} (truncated or edited file?)")
        left = self.max_bytes - self.used
        if info.file_size > left:
            raise self._over(key, "declares an uncompressed size of", info.file_size)
        try:
            with self.zf.open(info) as fh:
                shape, fortran, dtype, header = self._header(key, fh)
                count = math.prod(shape)
                nbytes = count * dtype.itemsize
                if header + nbytes > left:
                    raise self._over(key, f"has a .npy header declaring shape {shape} of {dtype} =",
                                     header + nbytes)
                if header + nbytes != info.file_size:
                    raise ValueError(f"its .npy header declares {header + nbytes} bytes, the zip entry "
                                     f"{info.file_size}")
                self.used += header
                buf = _np.empty(nbytes, dtype=_np.uint8)
                view = memoryview(buf)
                pos = 0
                while pos < nbytes:                  # the zip header may lie: count what is really produced
                    got = fh.readinto(view[pos:pos + _CHUNK])
                    if not got:
                        raise ValueError(f"its data ends after {pos} of {nbytes} bytes")
                    pos += got
                    self.used += got
                if fh.read(1):
                    raise ValueError(f"it holds more than the {nbytes} data bytes its header declares")
        except CheckpointError:
            raise
        except Exception as e:  # noqa: BLE001  (anything zipfile/numpy raise on a damaged member)
            raise self.bad(f"entry {key!r} could not be read ({type(e).__name__}: {e}); the file may be truncated "
                           "or corrupt") from e
        if count == 0 or dtype.itemsize == 0:
            return _np.zeros(shape, dtype=dtype)
        if fortran:
            return buf.view(dtype).reshape(shape[::-1]).transpose()
        return buf.view(dtype).reshape(shape)


def _json_depth(raw: bytes) -> int:
    """The deepest nesting of ``[``/``{`` in the JSON text ``raw`` (brackets inside strings ignored)."""
    text = re.sub(rb'"(?:[^"\\]|\\.)*"', b'""', raw)
    b = _np.frombuffer(text, dtype=_np.uint8)
    step = (b == ord("[")).astype(_np.int64) + (b == ord("{")) - (b == ord("]")) - (b == ord("}"))
    return int(step.cumsum().max()) if step.size else 0


class _Decoder:
    def __init__(self, archive: _Archive, backend, name: str, max_depth: int) -> None:
        self.archive = archive
        self.backend = backend
        self.name = name
        self.max_depth = max_depth
        self.memo: dict[str, object] = {}
        self.arrays: dict[str, object] = {}

    def bad(self, what: str) -> CheckpointError:
        return CheckpointError(f"nn.load: {self.name} is not a valid xpgrad checkpoint: {what}")

    def array(self, key):
        if not isinstance(key, str):
            raise self.bad(f"its structure refers to an array entry by {key!r}, not by name")
        if key not in self.arrays:
            self.arrays[key] = self.archive.read(key)
        return self.arrays[key]

    def decode(self, node, where: str = "root", depth: int = 0):
        if isinstance(node, _SCALARS):
            return node
        if isinstance(node, list) or (isinstance(node, dict) and ("__dict__" in node or "__tuple__" in node)):
            if depth >= self.max_depth:
                raise CheckpointError(f"nn.load: refusing to load {self.name}: its structure at {_short(where)} "
                                      f"is nested more than max_depth={self.max_depth} containers deep; if the file is "
                                      "trusted, pass a larger max_depth= to nn.load or raise "
                                      "nn.serialization.MAX_DEPTH")
        if isinstance(node, list):
            return [self.decode(n, f"{where}[{i}]", depth + 1) for i, n in enumerate(node)]
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
                out[item[0]] = self.decode(item[1], f"{where}[{item[0]!r}]", depth + 1)
            return out
        if "__tuple__" in node:
            if not isinstance(node["__tuple__"], list):
                raise self.bad("malformed tuple entry")
            return tuple(self.decode(n, f"{where}[{i}]", depth + 1) for i, n in enumerate(node["__tuple__"]))
        if "__float__" in node:
            s = node["__float__"]
            if s not in ("nan", "inf", "-inf"):
                raise self.bad(f"malformed float {s!r}")
            return float(s)
        if "__tensor__" in node:
            key = node["__tensor__"]
            t = self.memo.get(key) if isinstance(key, str) else None
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


def load(f, map_location=None, *, device=None, max_bytes: int | None = None, max_depth: int | None = None):
    """Load an object saved by :func:`save`, safely even from an untrusted file.

    Args:
        f: a path or a binary file object.
        map_location: device for the loaded Tensors (``"cpu"``, ``"cuda"``, ``"cuda:N"``); default CPU.
            Raw arrays are returned as NumPy arrays.
        device: the same as ``map_location``.
        max_bytes: most bytes the structure and the arrays it uses may take once decompressed (default
            :data:`MAX_BYTES`, 4 GiB). Declared sizes are checked before reading, produced bytes while reading.
        max_depth: most containers nested in the structure (default :data:`MAX_DEPTH`, 64).

    Raises:
        CheckpointError: (a ValueError) for a corrupt, truncated or foreign file, one holding pickled objects
            (which could run code when loaded; they are never unpickled), or one over ``max_bytes`` or
            ``max_depth``; the message names the file, the entry and the limit.
        FileNotFoundError: when the path does not exist.
    """
    max_bytes = _limit("max_bytes", MAX_BYTES if max_bytes is None else max_bytes)
    max_depth = _limit("max_depth", MAX_DEPTH if max_depth is None else max_depth)
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
    if head.startswith(b"\x93NUMPY"):
        raise CheckpointError(f"nn.load: {name} is a plain .npy array, not an xpgrad checkpoint (use numpy.load)")
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise CheckpointError(f"nn.load: {name} is not a valid xpgrad checkpoint: it is not an .npz archive "
                              f"(it starts with {head!r}); the file may be truncated or corrupt")
    try:
        zf = zipfile.ZipFile(f)
    except Exception as e:  # noqa: BLE001  (anything zipfile raises on a damaged file)
        raise CheckpointError(f"nn.load: {name} is not a valid xpgrad checkpoint: it could not be read as an "
                              f".npz archive ({type(e).__name__}: {e}); the file may be truncated or corrupt") from e
    with zf:
        archive = _Archive(zf, name, max_bytes)
        archive.check_headers()
        if _STRUCT not in archive.members:
            raise CheckpointError(f"nn.load: {name} is an .npz archive but not an xpgrad checkpoint (it has no "
                                  f"'{_STRUCT}' entry); read plain .npz files with numpy.load")
        raw = archive.read(_STRUCT)
        try:
            if raw.dtype != _np.uint8 or raw.ndim != 1:
                raise ValueError(f"structure entry has dtype {raw.dtype} and shape {raw.shape}")
            text = raw.tobytes()
            depth = _json_depth(text)
            if depth > 3 * max_depth + 2:        # a container costs at most 3 JSON levels ({"__dict__": [[k, v]]})
                raise CheckpointError(f"nn.load: refusing to load {name}: entry '{_STRUCT}' nests {depth} JSON "
                                      f"levels, more than max_depth={max_depth} containers can need; if the file "
                                      "is trusted, pass a larger max_depth= to nn.load or raise "
                                      "nn.serialization.MAX_DEPTH")
            meta = json.loads(text.decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise ValueError("unknown format tag")
            if not isinstance(meta.get("version"), int) or meta["version"] > _VERSION:
                raise ValueError(f"format version {meta.get('version')!r} is newer than this xpgrad reads "
                                 f"({_VERSION})")
        except CheckpointError:
            raise
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise CheckpointError(f"nn.load: {name} is not a valid xpgrad checkpoint: bad structure entry "
                                  f"({type(e).__name__}: {e})") from e
        try:
            return _Decoder(archive, be, name, max_depth).decode(meta.get("root"))
        except RecursionError as e:
            raise CheckpointError(f"nn.load: refusing to load {name}: its structure nests too deep for Python's "
                                  f"recursion limit (max_depth={max_depth})") from e
