"""Fused CPU kernels: C compiled on first use with the system's C compiler, called through ctypes.

The CPU counterpart of ``kernels.py`` (CUDA). NumPy runs an op such as max pooling as a chain of array
passes, and on a CPU each pass streams its arrays through memory, so memory bandwidth, not arithmetic,
bounds it: the NumPy formulas of the textbook CNN's max pooling, ReLU backward, im2col/col2im and Adam were a
large share of its training step. A kernel here does such an op in one pass, which makes each of them
several times faster on the CNN's layers (figures in benchmarks/RESULTS.md).

How it is built: :data:`SOURCE` is compiled once per machine into a shared library in a cache folder
(``$XPGRAD_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/xpgrad`` or ``~/.cache/xpgrad``; ``<tmp>/xpgrad-<uid>`` when
that cannot be created or written), named by a hash of the source, the compiler command and the CPU
(``-march=native`` code runs only on the CPU it was made for). The compiler is ``$CC`` or ``cc``; without
one, when compiling fails, or with ``XPGRAD_CPU_KERNELS=0``, nothing is compiled and the NumPy formulas
(``backends.fused.ArrayFused``) run; :func:`status` says which. Flags keep IEEE arithmetic: no fast-math,
no contraction of a·b + c into one rounding (``-ffp-contract=off``).

The cache is trusted only as far as it is the user's own, since loading a library runs its code (its
constructors run at ``dlopen``) and the file name is predictable. Folders it creates get mode 0700 whatever
the umask; the cache folder must be a real directory (not a symlink), owned by this uid and writable by no
one else, or it is refused and the library is built in a fresh private ``mkdtemp`` folder, not kept between
processes (the folder's parents are trusted, as for ``~/.bashrc``). Files are compiled into a private
temporary file and moved into place with ``os.replace``, mode 0600 (``dlopen`` needs no execute bit), so
processes compiling at once each see whole files. A sidecar ``cpu_kernels_<key>.sha256`` records the
library's SHA-256 and size; a cached library is opened without following symlinks, must be a regular file of
ours that no one else can write, and must match its sidecar before it is loaded, through the descriptor that
was hashed: a truncated file never reaches ``dlopen`` (which would die of SIGBUS on one, or reject a stub
forever). A file that fails a check or does not load is deleted and compiled again, once; when that fails too
the NumPy formulas run. :func:`status` gives every refusal and its reason.

Each kernel gives bit for bit the result of the NumPy formula it replaces (tests/test_cpu_kernels.py holds
them to it): the same float operations in the same order, products with 0/1 where the formula multiplies by
a mask. Kernels take C-contiguous float32/float64 arrays; any other input goes to the formulas.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import re
import shlex
import shutil
import stat
import subprocess
import tempfile
import threading

import numpy

from .base import memory_order
from .fused import ArrayFused, col2im_order

__all__ = ["CpuFused", "status", "library"]

SOURCE = r"""
#include <stdint.h>
#include <math.h>

/* Max pooling over kh x kw windows that tile the input exactly. Arrays are seen as (A, H, W, B): A the axes
   stored before the image rows, B those after its columns (B = batch for batch-last images, 1 for NCHW).
   y, code: (A, OH, OW, B). Results are the NumPy formula's (ArrayFused.max_pool_tiles): each window row's
   maximum folded with NumPy's maximum() (the second operand on ties, NaN propagating) and the first column
   equal to it (the last column when the maximum is NaN), then the same over the row maxima; code =
   row·kw + column. "First column equal to the maximum" is tracked in the same pass as the last strict
   increase of the running maximum. B is taken in pieces of CH that stay in L1. */
#define CH 64
#define NPMAX(a, u) (((a) > (u) || (a) != (a)) ? (a) : (u))
#define POOL(T, S)                                                                                           \
void max_pool_tiles_##S(const T *x, T *y, int8_t *code, long A, long H, long W, long B, long kh, long kw) {  \
    long OH = H / kh, OW = W / kw;                                                                           \
    T m[CH]; int8_t c[CH], last[CH];                                                                         \
    for (long a = 0; a < A; a++) for (long oh = 0; oh < OH; oh++) for (long ow = 0; ow < OW; ow++) {        \
        const T *win = x + ((a * H + oh * kh) * W + ow * kw) * B;                                            \
        long o = ((a * OH + oh) * OW + ow) * B;                                                              \
        for (long b0 = 0; b0 < B; b0 += CH) {                                                                \
            long nb = B - b0 < CH ? B - b0 : CH;                                                             \
            T *ym = y + o + b0; int8_t *co = code + o + b0;                                                  \
            for (long i = 0; i < kh; i++) {                                                                  \
                const T *r = win + i * W * B + b0;                                                           \
                for (long b = 0; b < nb; b++) { m[b] = r[b]; c[b] = 0; }                                     \
                for (long j = 1; j < kw; j++) {                                                              \
                    const T *v = r + j * B;                                                                  \
                    for (long b = 0; b < nb; b++) {                                                          \
                        T p = m[b], u = v[b];                                                                \
                        c[b] = u > p ? (int8_t)j : c[b]; m[b] = NPMAX(p, u);                                 \
                    }                                                                                        \
                }                                                                                            \
                int8_t base = (int8_t)(i * kw);                                                              \
                for (long b = 0; b < nb; b++) c[b] = (int8_t)(base + (m[b] != m[b] ? kw - 1 : c[b]));        \
                if (i == 0) for (long b = 0; b < nb; b++) { ym[b] = m[b]; co[b] = c[b]; }                    \
                else for (long b = 0; b < nb; b++) {                                                         \
                    T p = ym[b], u = m[b];                                                                   \
                    co[b] = u > p ? c[b] : co[b]; ym[b] = NPMAX(p, u);                                       \
                }                                                                                            \
                if (i == kh - 1) for (long b = 0; b < nb; b++) last[b] = c[b];                               \
            }                                                                                                \
            for (long b = 0; b < nb; b++) co[b] = ym[b] != ym[b] ? last[b] : co[b];                          \
        }                                                                                                    \
    }                                                                                                        \
}                                                                                                            \
/* Its adjoint: every input element written once, g times (offset == code) as 0/1 (so -0 and NaN*0 come  \
   out as in the NumPy formula's products with masks). */                                                   \
void max_pool_tiles_backward_##S(const T *g, const int8_t *code, T *gx, long A, long H, long W, long B,       \
                                 long kh, long kw) {                                                         \
    long OH = H / kh, OW = W / kw;                                                                           \
    for (long a = 0; a < A; a++) for (long oh = 0; oh < OH; oh++) for (long ow = 0; ow < OW; ow++) {        \
        long o = ((a * OH + oh) * OW + ow) * B;                                                              \
        const T *go = g + o; const int8_t *c = code + o;                                                     \
        T *win = gx + ((a * H + oh * kh) * W + ow * kw) * B;                                                 \
        for (long i = 0; i < kh; i++) for (long j = 0; j < kw; j++) {                                       \
            T *d = win + (i * W + j) * B; int8_t k = (int8_t)(i * kw + j);                                   \
            for (long b = 0; b < B; b++) d[b] = go[b] * (T)(c[b] == k);                                      \
        }                                                                                                    \
    }                                                                                                        \
}                                                                                                            \
/* ReLU's backward, PyTorch's threshold_backward: x <= 0 ? +0 : g (g at NaN x, 0 even for an infinite or     \
   NaN g), over n elements stored alike. */                                                                  \
void relu_backward_##S(const T *x, const T *g, T *out, long n) {                                            \
    for (long i = 0; i < n; i++) out[i] = x[i] <= 0 ? (T)0 : g[i];                                           \
}

POOL(float, f32)
POOL(double, f64)
/* Convolution's column matrix of batch-last images img (C, H, W, n): mat (C*kh*kw, OH*OW*n), row (c, i, j)
   holding entry (i, j) of every window, zeros on the padding (ArrayFused.im2col). Input row of output row
   oh at offset i: oh*sh + i*dh - pt. */
#define GRID(T, S)                                                                                           \
void im2col_##S(const T *img, T *mat, long C, long H, long W, long n, long kh, long kw, long OH, long OW,   \
                long sh, long sw, long dh, long dw, long pt, long pl) {                                      \
    T *dst = mat;                                                                                            \
    for (long c = 0; c < C; c++) for (long i = 0; i < kh; i++) for (long j = 0; j < kw; j++)                \
        for (long oh = 0; oh < OH; oh++) {                                                                   \
            long h = oh * sh + i * dh - pt;                                                                  \
            for (long ow = 0; ow < OW; ow++, dst += n) {                                                     \
                long w = ow * sw + j * dw - pl;                                                              \
                if (h < 0 || h >= H || w < 0 || w >= W) { for (long b = 0; b < n; b++) dst[b] = 0; continue; } \
                const T *src = img + ((c * H + h) * W + w) * n;                                              \
                for (long b = 0; b < n; b++) dst[b] = src[b];                                                \
            }                                                                                                \
        }                                                                                                    \
}                                                                                                            \
/* Its adjoint (ArrayFused.col2im): out (C, H, W, n) = the entries of cols read from each image position,   \
   summed in the formula's order: offset `full` (covering the whole image) assigned first, else 0, then     \
   the other offsets in row-major order. ohof[i*H + h] = the output row that reads row h at offset i, or    \
   -1 (likewise owof for columns); they come from the caller. */                                            \
void col2im_##S(const T *cols, T *out, long C, long H, long W, long n, long kh, long kw, long OH, long OW,   \
                const int64_t *ohof, const int64_t *owof, long full) {                                             \
    for (long c = 0; c < C; c++) for (long h = 0; h < H; h++) for (long w = 0; w < W; w++) {                \
        T *dst = out + ((c * H + h) * W + w) * n;                                                            \
        if (full >= 0) {                                                                                     \
            long i = full / kw, j = full % kw;                                                               \
            const T *src = cols + ((((c * kh + i) * kw + j) * OH + ohof[i * H + h]) * OW + owof[j * W + w]) * n; \
            for (long b = 0; b < n; b++) dst[b] = src[b];                                                    \
        } else {                                                                                             \
            for (long b = 0; b < n; b++) dst[b] = 0;                                                         \
        }                                                                                                    \
        for (long k = 0; k < kh * kw; k++) {                                                                 \
            long i = k / kw, j = k % kw;                                                                     \
            long oh = ohof[i * H + h], ow = owof[j * W + w];                                                 \
            if (k == full || oh < 0 || ow < 0) continue;                                                     \
            const T *src = cols + ((((c * kh + i) * kw + j) * OH + oh) * OW + ow) * n;                       \
            for (long b = 0; b < n; b++) dst[b] += src[b];                                                   \
        }                                                                                                    \
    }                                                                                                        \
}

GRID(float, f32)
GRID(double, f64)

/* One Adam (AdamW when decoupled, AMSGrad when vmax) step per element, the formula's operations in its order
   (backends.fused._adam with _adam_scalars): each rounded to T as NumPy's array passes round them. */
#define ADAM_LOOP(T, SQRT, DECOUPLED, HAS_WD, AMSGRAD)                                                      \
    for (long i = 0; i < n; i++) {                                                                           \
        T gi = g[i], pi = p[i];                                                                              \
        if (DECOUPLED) { if (HAS_WD) pi = pi * decay; }                                                      \
        else if (HAS_WD) { T d = pi * wd; gi = d + gi; }                                                     \
        T mi = m[i] * b1, t = gi * one_b1; mi = mi + t; m[i] = mi;                                           \
        T vi = v[i] * b2; t = gi * gi; t = t * one_b2; vi = vi + t; v[i] = vi;                              \
        if (AMSGRAD) { T w = vmax[i]; w = NPMAX(w, vi); vmax[i] = w; vi = w; }                               \
        t = SQRT(vi); t = t + eps; t = mi / t; t = t * step_size; p[i] = pi - t;                             \
    }
/* the flags as constants in each loop, so every loop vectorises */
#define ADAM(T, S, SQRT)                                                                                     \
void adam_##S(T *restrict p, const T *restrict g, T *restrict m, T *restrict v, T *restrict vmax, long n,   \
              T b1, T one_b1, T b2, T one_b2, T eps, T step_size, T wd, T decay, long decoupled, long has_wd) { \
    int ams = vmax != 0;                                                                                     \
    if (decoupled && has_wd) { if (ams) ADAM_LOOP(T, SQRT, 1, 1, 1) else ADAM_LOOP(T, SQRT, 1, 1, 0) }       \
    else if (has_wd && !decoupled) { if (ams) ADAM_LOOP(T, SQRT, 0, 1, 1) else ADAM_LOOP(T, SQRT, 0, 1, 0) } \
    else { if (ams) ADAM_LOOP(T, SQRT, 0, 0, 1) else ADAM_LOOP(T, SQRT, 0, 0, 0) }                           \
}

ADAM(float, f32, sqrtf)
ADAM(double, f64, sqrt)
"""

_SIGNATURES = {
    "max_pool_tiles": [ctypes.c_void_p] * 3 + [ctypes.c_long] * 6,
    "max_pool_tiles_backward": [ctypes.c_void_p] * 3 + [ctypes.c_long] * 6,
    "relu_backward": [ctypes.c_void_p] * 3 + [ctypes.c_long],
    "im2col": [ctypes.c_void_p] * 2 + [ctypes.c_long] * 14,
    "col2im": [ctypes.c_void_p] * 2 + [ctypes.c_long] * 8 + [ctypes.c_void_p] * 2 + [ctypes.c_long],
    "adam": [ctypes.c_void_p] * 5 + [ctypes.c_long],      # + 8 scalars of the array's type + 2 flags
}
_SUFFIX = {numpy.dtype(numpy.float32): "f32", numpy.dtype(numpy.float64): "f64"}
MIN_SIZE = 4096
"""Elements below which an op keeps the NumPy formula: there the call's checks cost more than the passes."""

_lock = threading.Lock()
_state: dict = {}


def _cpu_id() -> str:
    """What ``-march=native`` depends on: the CPU's model and feature flags."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags", "Features", "CPU part"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor() or platform.machine()


def _cache_dir() -> str:
    root = os.environ.get("XPGRAD_KERNEL_CACHE")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "xpgrad")
    return root


_FORMAT = "2"           # in the key: the library is built from stdin (reproducibly) and has a sidecar
_DIR_MODE = 0o700
_FILE_MODE = 0o600      # dlopen maps the file for reading; it needs no execute bit
_OPEN = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class _Untrusted(Exception):
    """A cached file that must not be loaded (and is deleted)."""


def _build_command():
    """(compiler, flags, key): the library's name in the cache is ``cpu_kernels_<key>.so``."""
    cc = shlex.split(os.environ.get("CC") or "cc")
    flags = ["-O3", "-march=native", "-shared", "-fPIC", "-std=c99", "-ffp-contract=off", "-fno-math-errno"]
    key = hashlib.sha256("\0".join([_FORMAT, SOURCE, " ".join(cc + flags), _cpu_id()]).encode()).hexdigest()[:16]
    return cc, flags, key


def _unsafe(st, kind: str, check_mode: bool = True):
    """Why the object that ``os.lstat`` result ``st`` describes is not this user's alone, or None."""
    if stat.S_ISLNK(st.st_mode):
        return "a symlink"
    if kind == "folder" and not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if kind == "file" and not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if os.name != "posix":
        return None
    if st.st_uid != os.geteuid():
        return f"owned by uid {st.st_uid}, not {os.geteuid()}"
    writable = st.st_mode & 0o022 if check_mode else 0
    if writable:
        who = {0o020: "group", 0o002: "world", 0o022: "group- and world"}[writable]
        return f"{who}-writable (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def _make_private_dirs(path: str) -> None:
    """Create the missing folders of ``path``, each 0700 whatever the umask. Folders that exist are left as
    they are: :func:`_folder` judges the last one."""
    missing, p = [], os.path.abspath(path)
    while not os.path.lexists(p):
        missing.append(p)
        if os.path.dirname(p) == p:
            break
        p = os.path.dirname(p)
    for d in reversed(missing):
        try:
            os.mkdir(d, _DIR_MODE)
        except FileExistsError:         # made by another process meanwhile: judged like any other folder
            continue
        os.chmod(d, _DIR_MODE)


def _folder(notes: list):
    """(folder, private): the checked cache folder, or a fresh private one (``private``: to be removed after
    loading) when the cache folder is refused. Each folder passed over is noted with the reason."""
    uid = os.geteuid() if hasattr(os, "geteuid") else 0
    for folder in dict.fromkeys([_cache_dir(), os.path.join(tempfile.gettempdir(), f"xpgrad-{uid}")]):
        try:
            _make_private_dirs(folder)
            problem = _unsafe(os.lstat(folder), "folder")
        except OSError as e:            # e.g. an unwritable home: try the next folder
            notes.append(f"cannot use cache folder {folder}: {e.strerror or e}")
            continue
        if problem:                     # someone else's or tampered with: no shared folder at all
            notes.append(f"refused cache folder {folder}: {problem}")
            break
        if not os.access(folder, os.W_OK | os.X_OK):
            notes.append(f"cannot use cache folder {folder}: not writable")
            continue
        return folder, False
    try:
        private = tempfile.mkdtemp(prefix="xpgrad-")
        os.chmod(private, _DIR_MODE)    # mkdtemp's 0700 less the umask's bits
    except OSError as e:
        raise RuntimeError(f"no private folder either: {e}") from e
    notes.append(f"using private {private}, not kept between processes")
    return private, True


def _open_checked(path: str, fix_mode=None):
    """(fd, fstat) of ``path`` opened without following a symlink, once it is a regular file of ours that no
    one else can write (``fix_mode``: set that mode on the open file instead of judging the mode)."""
    st = os.lstat(path)
    problem = _unsafe(st, "file", check_mode=fix_mode is None)
    if problem:
        raise _Untrusted(f"{os.path.basename(path)} is {problem}")
    fd = os.open(path, _OPEN)
    try:
        fst = os.fstat(fd)
        if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
            raise _Untrusted(f"{os.path.basename(path)} was replaced while being opened")
        if fix_mode is not None:
            os.fchmod(fd, fix_mode)
        return fd, fst
    except BaseException:
        os.close(fd)
        raise


def _digest(fd: int):
    """(size, SHA-256 hex) of the open file's contents."""
    h, n = hashlib.sha256(), 0
    os.lseek(fd, 0, os.SEEK_SET)
    while chunk := os.read(fd, 1 << 20):
        h.update(chunk)
        n += len(chunk)
    return n, h.hexdigest()


def _read_sidecar(path: str):
    """(size, SHA-256 hex) recorded in sidecar ``path`` ("<sha256 hex> <size>")."""
    try:
        fd, _ = _open_checked(path)
    except FileNotFoundError:
        raise _Untrusted("no sidecar") from None
    try:
        text = os.read(fd, 256).decode("ascii", "replace")
    finally:
        os.close(fd)
    m = re.fullmatch(r"([0-9a-f]{64}) (\d{1,12})\n?", text)
    if not m:
        raise _Untrusted("invalid sidecar")
    return int(m[2]), m[1]


def _write_atomic(folder: str, path: str, data: bytes) -> None:
    """Write ``path`` through a private temporary file in ``folder`` (0600) moved into place."""
    fd, tmp = tempfile.mkstemp(prefix=".cpu_kernels_", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _FILE_MODE)
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _remove(*paths) -> None:
    for p in paths:
        try:
            os.unlink(p)                # a symlink itself, never its target
        except OSError:
            pass


def _load(fd: int, path: str):
    """``ctypes.CDLL`` of the checked open file: through /proc/self/fd where there is one, so that the inode
    loaded is the one hashed even if the name is replaced meanwhile; else through ``path``."""
    proc = f"/proc/self/fd/{fd}"
    proc = proc if os.path.exists(proc) else path
    try:
        lib = ctypes.CDLL(proc)         # ctypes releases the GIL during each call
        for name, args in _SIGNATURES.items():
            for suffix, scalar in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
                fn = getattr(lib, f"{name}_{suffix}")
                fn.argtypes = args + ([scalar] * 8 + [ctypes.c_long] * 2 if name == "adam" else [])
                fn.restype = None
    except (OSError, AttributeError) as e:
        raise type(e)(str(e).replace(proc, path)) from None     # the file's name, not its descriptor's
    return lib


def _cached(so: str, side: str):
    """The cached library ``so`` when its sidecar ``side`` vouches for it, None when there is none; raises
    _Untrusted (fails a check) or OSError/AttributeError (does not load) otherwise."""
    try:
        fd, st = _open_checked(so)
    except FileNotFoundError:
        return None
    try:
        size, digest = _read_sidecar(side)
        if st.st_size != size:
            raise _Untrusted(f"size {st.st_size}, sidecar says {size}")
        if _digest(fd) != (size, digest):
            raise _Untrusted("SHA-256 differs from the sidecar's")
        return _load(fd, so)                # only now: a file that does not match never reaches dlopen
    finally:
        os.close(fd)


def _build(cc, flags, folder: str, so: str, side: str) -> int:
    """Compile into a private temporary file in ``folder``, write the sidecar, move both into place (sidecar
    first; each atomically); returns an open descriptor of the new library for :func:`_load`."""
    fd, tmp = tempfile.mkstemp(prefix=".cpu_kernels_", suffix=".tmp", dir=folder)    # 0600, reserves the name
    os.close(fd)
    fd = None
    try:
        # the source from stdin: no temporary file name in the symbols, so every compile gives the same bytes
        done = subprocess.run(cc + flags + ["-x", "c", "-", "-o", tmp], input=SOURCE, capture_output=True,
                              text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cc)} failed: {done.stderr.strip()[:500]}")
        # the linker may have made the file anew with the umask's mode (the folder keeps it private meanwhile)
        fd, _ = _open_checked(tmp, fix_mode=_FILE_MODE)
        size, digest = _digest(fd)
        _write_atomic(folder, side, f"{digest} {size}\n".encode())
        os.replace(tmp, so)
        return fd
    except BaseException:
        if fd is not None:
            os.close(fd)
        _remove(tmp)
        raise


def _compile(notes: list):
    """(library, path): the checked cached library, else a new one compiled into the cache folder. ``notes``
    gets every folder or file refused, with the reason."""
    cc, flags, key = _build_command()
    folder, private = _folder(notes)
    so = os.path.join(folder, f"cpu_kernels_{key}.so")
    side = so[:-3] + ".sha256"
    try:
        try:
            lib = _cached(so, side)
        except (_Untrusted, OSError, AttributeError) as e:
            notes.append(f"discarded cached {os.path.basename(so)}: {e}")
            _remove(so, side)
            lib = None
        if lib is None:
            fd = _build(cc, flags, folder, so, side)
            try:
                lib = _load(fd, so)
            except (OSError, AttributeError) as e:
                _remove(so, side)
                raise RuntimeError(f"the compiled library does not load: {e}") from e
            finally:
                os.close(fd)
    finally:
        if private:                     # loaded (or failed): nothing of it is kept
            shutil.rmtree(folder, ignore_errors=True)
    return lib, so


def library():
    """The compiled kernels (a ``ctypes.CDLL``), or None when they are off or cannot be built (see
    :func:`status`). Compiled on the first call in a process; later calls return the same object."""
    if "lib" not in _state:
        with _lock:
            if "lib" not in _state:
                if os.environ.get("XPGRAD_CPU_KERNELS", "1").strip().lower() in ("0", "false", "no", "off"):
                    _state.update(lib=None, status="off (XPGRAD_CPU_KERNELS=0): NumPy formulas")
                else:
                    notes = []
                    try:
                        lib, path = _compile(notes)
                        _state.update(lib=lib, status=f"compiled: {path}")
                    except (OSError, RuntimeError, subprocess.SubprocessError, AttributeError, _Untrusted) as e:
                        _state.update(lib=None, status=f"unavailable ({type(e).__name__}: {e}); NumPy formulas")
                    if notes:
                        _state["status"] += f" ({'; '.join(notes)})"
    return _state["lib"]


def status() -> str:
    """Whether the CPU kernels are in use, and where they are or why not."""
    library()
    return _state["status"]


def _kernel(name: str, dtype):
    lib = library()
    suffix = _SUFFIX.get(numpy.dtype(dtype))
    return None if lib is None or suffix is None else getattr(lib, f"{name}_{suffix}")


def _contiguous_kernel(name: str, *arrays):
    """Kernel ``name`` for ``arrays`` when they are non-empty, C-contiguous and of one float type, else None."""
    dt = arrays[0].dtype
    if not arrays[0].size or any(a.dtype != dt or not a.flags.c_contiguous for a in arrays):
        return None
    return _kernel(name, dt)


def _block_order(a) -> tuple:
    """An axis order (outermost first) that shows (N, C, H, W) ``a`` as (A…, H, W, B…): the axes N and C of
    length > 1 stored inside the image's innermost step go after W, the others before H (axes of length 1
    may sit anywhere: they do not move memory)."""
    steps = [abs(a.strides[k]) for k in (2, 3) if a.shape[k] > 1]
    limit = min(steps) if steps else 0
    inner = sorted((k for k in (0, 1) if a.shape[k] > 1 and abs(a.strides[k]) < limit), key=lambda k: -a.strides[k])
    outer = sorted((k for k in (0, 1) if k not in inner), key=lambda k: -a.strides[k] if a.shape[k] > 1 else 0)
    return tuple(outer) + (2, 3) + tuple(inner)


def _image_block(a, order):
    """(A, H, W, B) of (N, C, H, W) ``a`` when it is stored C-contiguously in axis ``order`` (from
    :func:`_block_order`): A counts the elements of the axes before H, B of those after W; else None."""
    if not numpy.transpose(a, order).flags.c_contiguous:
        return None
    pos = order.index(2)
    A = 1
    for k in order[:pos]:
        A *= a.shape[k]
    B = 1
    for k in order[pos + 2:]:
        B *= a.shape[k]
    return A, a.shape[2], a.shape[3], B


class TileCode:
    """:meth:`CpuFused.max_pool_tiles`'s record: ``code`` (N, C, OH, OW) int8, the row-major offset of each
    window's first maximum, stored in axis ``order`` like the input."""

    def __init__(self, code, order):
        self.code, self.order = code, order

    def offsets(self, xp):
        return self.code


class CpuFused(ArrayFused):
    """The NumPy backend's fused operations: the C kernels above where they apply, else the NumPy formulas."""

    def __init__(self):
        super().__init__(numpy)

    def leaky_relu_backward(self, x, gy, negative_slope: float = 0.0):
        kern = _kernel("relu_backward", gy.dtype) if negative_slope == 0 and gy.size >= MIN_SIZE else None
        if kern is None or x.dtype != gy.dtype or x.shape != gy.shape or x.strides != gy.strides or \
                not _dense(gy):
            return super().leaky_relu_backward(x, gy, negative_slope)
        out = numpy.empty_like(gy)          # same memory order as gy (and x)
        kern(x.ctypes.data, gy.ctypes.data, out.ctypes.data, gy.size)
        return out

    def im2col(self, img, mat, grid) -> None:
        kern = _contiguous_kernel("im2col", img, mat)
        if kern is None:
            return super().im2col(img, mat, grid)
        g = grid
        kern(img.ctypes.data, mat.ctypes.data, g.C, g.H, g.W, img.shape[-1], g.kh, g.kw, g.OH, g.OW, g.sh, g.sw,
             g.dh, g.dw, g.pt, g.pl)

    def col2im(self, cols, out, grid) -> None:
        kern = _contiguous_kernel("col2im", cols, out)
        if kern is None:
            return super().col2im(cols, out, grid)
        g = grid
        full, _ = col2im_order(g)
        ohof, owof = _reader_table(g.kh, g.H, g.OH, g.sh, g.dh, g.pt), _reader_table(g.kw, g.W, g.OW, g.sw, g.dw, g.pl)
        kern(cols.ctypes.data, out.ctypes.data, g.C, g.H, g.W, out.shape[-1], g.kh, g.kw, g.OH, g.OW,
             ohof.ctypes.data, owof.ctypes.data, -1 if full is None else full[0] * g.kw + full[1])

    def _adam_one(self, p, grad, m, v, vmax, tmps, scalars, decoupled: bool, has_wd: bool) -> None:
        kern = _kernel("adam", p.dtype)
        arrays = (p, grad, m, v) + (() if vmax is None else (vmax,))
        if kern is None or any(a.dtype != p.dtype or a.shape != p.shape or not a.flags.c_contiguous for a in arrays):
            return super()._adam_one(p, grad, m, v, vmax, tmps, scalars, decoupled, has_wd)
        kern(p.ctypes.data, grad.ctypes.data, m.ctypes.data, v.ctypes.data, None if vmax is None else vmax.ctypes.data,
             p.size, *(float(c) for c in scalars), int(decoupled), int(has_wd))

    def max_pool_tiles(self, x, kh: int, kw: int, alloc):
        kern = _kernel("max_pool_tiles", x.dtype) if x.size >= MIN_SIZE and kh * kw <= 127 else None
        order = _block_order(x)
        block = _image_block(x, order) if kern is not None else None
        if block is None:
            return super().max_pool_tiles(x, kh, kw, alloc)
        N, C, H, W = x.shape
        y = alloc((N, C, H // kh, W // kw), x.dtype, True)
        code = alloc((N, C, H // kh, W // kw), "int8")
        if _image_block(y, order) is None or _image_block(code, order) is None:     # not laid out like x
            return super().max_pool_tiles(x, kh, kw, alloc)
        kern(x.ctypes.data, y.ctypes.data, code.ctypes.data, *block, kh, kw)
        return y, TileCode(code, order)

    def max_pool_tiles_backward(self, g, where, kh: int, kw: int, alloc):
        if not isinstance(where, TileCode):
            return super().max_pool_tiles_backward(g, where, kh, kw, alloc)
        N, C, OH, OW = g.shape
        out = alloc((N, C, OH * kh, OW * kw), g.dtype, True)
        kern = _kernel("max_pool_tiles_backward", g.dtype)
        block = _image_block(out, where.order)
        if kern is None or block is None or g.dtype != out.dtype or _image_block(g, where.order) is None:
            # the formula on the offsets: each offset's view of the output, written once
            o6 = out.reshape(N, C, OH, kh, OW, kw)
            for k in range(kh * kw):
                numpy.multiply(g, (where.code == k).view(numpy.uint8), out=o6[:, :, :, k // kw, :, k % kw])
            return out
        kern(g.ctypes.data, where.code.ctypes.data, out.ctypes.data, *block, kh, kw)
        return out


def _dense(a) -> bool:
    """Whether ``a`` fills one contiguous block of memory, in some axis order."""
    return numpy.transpose(a, memory_order(a)).flags.c_contiguous


@functools.lru_cache(maxsize=64)
def _reader_table(k: int, size: int, out: int, s: int, d: int, p: int):
    """(k, size) int64: at [i, h] the output index o with o·s + i·d − p = h, or −1 when there is none (cached:
    the same few geometries come back every step; read only)."""
    table = numpy.full((k, size), -1, numpy.int64)
    for i in range(k):
        o = numpy.arange(out)
        h = o * s + i * d - p
        ok = (h >= 0) & (h < size)
        table[i, h[ok]] = o[ok]
    table.flags.writeable = False
    return table
