"""The cache of compiled C kernels (backends/cpu_kernels.py) against other users' folders, planted and damaged files.

Loading a shared library runs its constructors, and the cached library's name is predictable, so the cache
must only ever load a file this user compiled: folders of the wrong owner or mode, or symlinks, are refused
(a private folder is used instead), and a cached library is loaded only when its size and SHA-256 match its
sidecar. Each case runs in a subprocess: a library that is loaded runs in it (a planted one writes a marker
file), and a crash (SIGBUS on a truncated library) shows as a failed exit. Kernels are called through
``backends`` directly and compared with the NumPy formulas.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shlex
import shutil
import stat
import subprocess
import sys
from unittest import mock

import pytest

from backends import cpu_kernels

ROOT = pathlib.Path(__file__).resolve().parents[1]
_CC = shlex.split(os.environ.get("CC") or "cc")

pytestmark = [
    pytest.mark.skipif(os.name != "posix", reason="the cache's checks are POSIX ownership and modes"),
    pytest.mark.skipif(not _CC or shutil.which(_CC[0]) is None, reason="no C compiler"),
]

_PROBE = r"""
import json, os, sys
import numpy as np
from backends import cpu_kernels
from backends.fused import ArrayFused
status = cpu_kernels.status()
kernels, formulas = cpu_kernels.CpuFused(), ArrayFused(np)
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 8, 32, 32)).astype(np.float32)      # over MIN_SIZE: the kernels take it
g = rng.standard_normal(x.shape).astype(np.float32)
alloc = lambda shape, dtype, result=False: np.empty(shape, dtype)
y, where = kernels.max_pool_tiles(x, 2, 2, alloc)
y_ref, where_ref = formulas.max_pool_tiles(x, 2, 2, alloc)
print(json.dumps(dict(
    status=status,
    kernel=isinstance(where, cpu_kernels.TileCode),
    pool=bool(np.array_equal(y, y_ref) and np.array_equal(where.offsets(np), where_ref.offsets(np))),
    relu=bool(np.array_equal(kernels.leaky_relu_backward(x, g), formulas.leaky_relu_backward(x, g))))))
"""

_PLANTED = r"""
#include <stdio.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen(MARKER, "w");
    if (f) { fputs("planted code ran", f); fclose(f); }
}
"""


def _run(tmp_path, env=None, umask=None, script=_PROBE):
    """Run ``script`` in a fresh interpreter with its temporary directory in ``tmp_path/tmp``; (exit code,
    parsed JSON output or None, stderr)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    pre = "" if umask is None else f"import os; os.umask({umask:#o})\n"
    done = subprocess.run([sys.executable, "-c", pre + script], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TMPDIR": str(tmp), **(env or {})}, timeout=300)
    out = json.loads(done.stdout.splitlines()[-1]) if done.returncode == 0 and done.stdout.strip() else None
    return done.returncode, out, done.stderr


def _key(cc=None) -> str:
    """The cache key the code computes (with compiler command ``cc`` instead of $CC when given)."""
    with mock.patch.dict(os.environ, {} if cc is None else {"CC": cc}):
        return cpu_kernels._build_command()[2]


def _names(folder, key=None):
    key = key or _key()
    return folder / f"cpu_kernels_{key}.so", folder / f"cpu_kernels_{key}.sha256"


def _sidecar_for(data: bytes) -> str:
    return f"{hashlib.sha256(data).hexdigest()} {len(data)}\n"


def _plant(folder: pathlib.Path, marker: pathlib.Path, sidecar="valid") -> pathlib.Path:
    """A library whose constructor writes ``marker``, under the name the cache would load, with a sidecar that
    vouches for it ("valid"), none (None), one of the right size and another hash ("wrong"), or an unreadable
one ("garbage")."""
    so, side = _names(folder)
    src = marker.parent / "planted.c"
    src.write_text(_PLANTED.replace("MARKER", json.dumps(str(marker))))
    subprocess.run(_CC + ["-shared", "-fPIC", "-o", str(so), str(src)], check=True, capture_output=True)
    data = so.read_bytes()
    if sidecar == "valid":
        side.write_text(_sidecar_for(data))
    elif sidecar == "wrong":
        side.write_text(f"{hashlib.sha256(b'something else').hexdigest()} {len(data)}\n")
    elif sidecar == "garbage":
        side.write_text("not a sidecar\n")
    return so


def _assert_kernels_ran(out):
    assert out["kernel"] and out["pool"] and out["relu"], out


def _assert_cache_whole(folder: pathlib.Path):
    """The cached library matches its sidecar, both are 0600, and no temporary file is left."""
    so, side = _names(folder)
    assert side.read_text() == _sidecar_for(so.read_bytes())
    assert stat.S_IMODE(so.stat().st_mode) == 0o600 and stat.S_IMODE(side.stat().st_mode) == 0o600
    assert sorted(p.name for p in folder.iterdir()) == sorted([so.name, side.name])


def _assert_private_folder_gone(tmp_path):
    assert not list((tmp_path / "tmp").glob("xpgrad-*"))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A cache folder holding a good compiled library and its sidecar (compiled once for the module)."""
    base = tmp_path_factory.mktemp("pristine")
    rc, out, err = _run(base, {"XPGRAD_KERNEL_CACHE": str(base / "cache")})
    assert rc == 0, err
    assert out["status"].startswith(f"compiled: {base / 'cache'}"), out
    _assert_kernels_ran(out)
    _assert_cache_whole(base / "cache")
    return base / "cache"


def _copy_cache(pristine, folder):
    folder.mkdir(mode=0o700)
    for p in _names(pristine):
        shutil.copy2(p, folder / p.name)


def test_the_planted_library_runs_its_constructor_when_loaded(tmp_path):
    """The harness: loading the planted library does write the marker (so its absence below means something)."""
    folder = tmp_path / "plant"
    folder.mkdir()
    marker = tmp_path / "marker"
    so = _plant(folder, marker)
    rc, _, err = _run(tmp_path, script=f"import ctypes, json; ctypes.CDLL({str(so)!r}); print(json.dumps(1))")
    assert rc == 0, err
    assert marker.read_text() == "planted code ran"


@pytest.mark.parametrize("mode, reason", [(0o777, "group- and world-writable (mode 777)"),
                                          (0o770, "group-writable (mode 770)"),
                                          (0o703, "world-writable (mode 703)")])
def test_a_cache_folder_others_can_write_is_refused(tmp_path, mode, reason):
    folder, marker = tmp_path / "cache", tmp_path / "marker"
    folder.mkdir()
    so = _plant(folder, marker)
    os.chmod(folder, mode)
    rc, out, err = _run(tmp_path, {"XPGRAD_KERNEL_CACHE": str(folder)})
    assert rc == 0, err
    assert not marker.exists(), "the planted library was loaded"
    assert f"refused cache folder {folder}: {reason}" in out["status"], out
    assert out["status"].startswith(f"compiled: {tmp_path / 'tmp'}/xpgrad-") and "using private" in out["status"]
    _assert_kernels_ran(out)
    assert so.exists() and stat.S_IMODE(folder.stat().st_mode) == mode     # a refused folder is left alone
    _assert_private_folder_gone(tmp_path)


def test_a_cache_folder_that_is_a_symlink_is_refused(tmp_path):
    real, folder, marker = tmp_path / "real", tmp_path / "cache", tmp_path / "marker"
    real.mkdir(mode=0o700)
    _plant(real, marker)                        # owned by us, 0700, with a sidecar: only the symlink is wrong
    folder.symlink_to(real)
    rc, out, err = _run(tmp_path, {"XPGRAD_KERNEL_CACHE": str(folder)})
    assert rc == 0, err
    assert not marker.exists(), "the planted library was loaded"
    assert f"refused cache folder {folder}: a symlink;" in out["status"], out
    assert f"using private {tmp_path / 'tmp'}/xpgrad-" in out["status"]
    _assert_kernels_ran(out)
    _assert_private_folder_gone(tmp_path)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another uid needs root")


@needs_root
def test_a_cache_folder_of_another_uid_is_refused(tmp_path):
    folder, marker = tmp_path / "cache", tmp_path / "marker"
    folder.mkdir(mode=0o700)
    so = _plant(folder, marker)
    for p in (folder, *_names(folder)):
        os.chown(p, 12345, 12345)
    rc, out, err = _run(tmp_path, {"XPGRAD_KERNEL_CACHE": str(folder)})
    assert rc == 0, err
    assert not marker.exists(), "the planted library was loaded"
    assert f"refused cache folder {folder}: owned by uid 12345, not 0;" in out["status"], out
    _assert_kernels_ran(out)
    assert so.exists()                          # a refused folder is left alone
    _assert_private_folder_gone(tmp_path)


@needs_root
def test_an_unwritable_home_does_not_fall_back_to_a_temporary_folder_planted_by_another_uid(tmp_path):
    """Issue 22's attack: the cache folder cannot be made, and another user made <tmp>/xpgrad-<uid> first."""
    (tmp_path / "file").write_text("")
    wanted = tmp_path / "file" / "cache"                    # cannot be created: its parent is a file
    planted, marker = tmp_path / "tmp" / "xpgrad-0", tmp_path / "marker"
    planted.mkdir(parents=True, mode=0o755)
    _plant(planted, marker)
    for p in (planted, *_names(planted)):
        os.chown(p, 12345, 12345)
    rc, out, err = _run(tmp_path, {"XPGRAD_KERNEL_CACHE": str(wanted)})
    assert rc == 0, err
    assert not marker.exists(), "the planted library was loaded"
    assert f"cannot use cache folder {wanted}: Not a directory" in out["status"], out
    assert f"refused cache folder {planted}: owned by uid 12345, not 0;" in out["status"], out
    _assert_kernels_ran(out)
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == ["xpgrad-0"]     # private folder removed


def test_an_unwritable_home_falls_back_to_a_private_temporary_cache(tmp_path):
    (tmp_path / "file").write_text("")
    rc, out, err = _run(tmp_path, {"XPGRAD_KERNEL_CACHE": str(tmp_path / "file" / "cache")})
    assert rc == 0, err
    shared = tmp_path / "tmp" / f"xpgrad-{os.geteuid()}"
    assert out["status"].startswith(f"compiled: {shared}/cpu_kernels_"), out
    _assert_kernels_ran(out)
    assert stat.S_IMODE(os.lstat(shared).st_mode) == 0o700
    _assert_cache_whole(shared)


@pytest.mark.parametrize("sidecar, reason", [(None, "no sidecar"), ("wrong", "SHA-256 differs from the sidecar's"),
                                             ("garbage", "invalid sidecar")])
def test_a_cached_library_without_a_matching_sidecar_is_never_loaded(tmp_path, sidecar, reason):
    folder, marker = tmp_path / "cache", tmp_path / "marker"
    folder.mkdir(mode=0o700)
    so = _plant(folder, marker, sidecar)
    planted = so.read_bytes()
    rc, out, err = _run(tmp_path, {"XPGRAD_KERNEL_CACHE": str(folder)})
    assert rc == 0, err
    assert not marker.exists(), "the planted library was loaded"
    assert out["status"] == f"compiled: {so} (discarded cached {so.name}: {reason})", out
    _assert_kernels_ran(out)
    assert so.read_bytes() != planted
    _assert_cache_whole(folder)


@pytest.mark.parametrize("problem", ["symlink", "mode 0666"])
def test_a_cached_library_that_is_a_symlink_or_writable_by_others_is_never_loaded(tmp_path, problem):
    folder, marker = tmp_path / "cache", tmp_path / "marker"
    folder.mkdir(mode=0o700)
    so, side = _names(folder)
    if problem == "symlink":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        target = _plant(elsewhere, marker)
        so.symlink_to(target)
        side.write_text(_sidecar_for(target.read_bytes()))
        reason = "is a symlink"
    else:
        _plant(folder, marker)
        os.chmod(so, 0o666)
        reason = "is group- and world-writable (mode 666)"
    rc, out, err = _run(tmp_path, {"XPGRAD_KERNEL_CACHE": str(folder)})
    assert rc == 0, err
    assert not marker.exists(), "the planted library was loaded"
    assert out["status"] == f"compiled: {so} (discarded cached {so.name}: {so.name} {reason})", out
    _assert_kernels_ran(out)
    assert not so.is_symlink()
    _assert_cache_whole(folder)


@pytest.mark.parametrize("which, size", [("library", 0), ("library", 3), ("library", 4096), ("library", "half"),
                                         ("sidecar", 0), ("sidecar", 40)])
def test_a_truncated_cache_is_compiled_again(tmp_path, pristine, which, size):
    """A truncated library never reaches dlopen (at 4096 bytes and more it would die of SIGBUS there; under that
    dlopen rejects it and the formulas would run forever): it is deleted and compiled again."""
    folder = tmp_path / "cache"
    _copy_cache(pristine, folder)
    so, side = _names(folder)
    whole = so.stat().st_size
    target = so if which == "library" else side
    n = target.stat().st_size // 2 if size == "half" else size
    assert n < target.stat().st_size
    os.truncate(target, n)
    rc, out, err = _run(tmp_path, {"XPGRAD_KERNEL_CACHE": str(folder)})
    assert rc == 0, f"exit {rc}: {err[-2000:]}"
    reason = f"size {n}, sidecar says {whole}" if which == "library" else "invalid sidecar"
    assert out["status"] == f"compiled: {so} (discarded cached {so.name}: {reason})", out
    _assert_kernels_ran(out)
    assert so.stat().st_size == whole
    _assert_cache_whole(folder)
    rc, again, err = _run(tmp_path, {"XPGRAD_KERNEL_CACHE": str(folder)})           # and now it is reused
    assert rc == 0 and again["status"] == f"compiled: {so}", (again, err)


@pytest.mark.skipif(bool(os.environ.get("CC")), reason="uses the default compiler name")
def test_an_intact_cache_is_loaded_without_compiling(tmp_path, pristine):
    folder, empty = tmp_path / "cache", tmp_path / "empty"
    _copy_cache(pristine, folder)
    empty.mkdir()
    so, _ = _names(folder)
    stamp = so.stat().st_mtime_ns
    rc, out, err = _run(tmp_path, {"XPGRAD_KERNEL_CACHE": str(folder), "PATH": str(empty)})     # no cc to run
    assert rc == 0, err
    assert out["status"] == f"compiled: {so}", out
    _assert_kernels_ran(out)
    assert so.stat().st_mtime_ns == stamp
    _assert_cache_whole(folder)


_FAKE_CC = r"""
import subprocess, sys
out = sys.argv[sys.argv.index("-o") + 1]
if sys.argv[1] == "fails":
    sys.exit("fake compiler error")
elif sys.argv[1] == "garbage":
    open(out, "wb").write(b"\x7fELF" + bytes(5000))
else:                                   # a real library without the kernels' symbols
    subprocess.run(["cc", "-shared", "-fPIC", "-x", "c", "-", "-o", out], input=b"int nothing;", check=True)
"""


@pytest.mark.parametrize("kind, reason", [("fails", "failed: fake compiler error"),
                                          ("garbage", "the compiled library does not load: {so}: "),
                                          ("nosymbols", "the compiled library does not load: {so}: undefined symbol")])
def test_a_damaged_cache_that_cannot_be_rebuilt_leaves_the_formulas(tmp_path, kind, reason):
    """A damaged cached copy is deleted and compiled again once; when that compile fails or its library does
    not load either, the formulas run, the reason is in the status, and nothing is left to load next time."""
    fake = tmp_path / "fakecc.py"
    fake.write_text(_FAKE_CC)
    cc = f"{sys.executable} {fake} {kind}"
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    so, side = _names(folder, _key(cc))
    so.write_bytes(b"\x7fELF" + bytes(10))
    side.write_text(_sidecar_for(b"\x7fELF" + bytes(10) + b"more"))
    rc, out, err = _run(tmp_path, {"XPGRAD_KERNEL_CACHE": str(folder), "CC": cc})
    assert rc == 0, err
    status = out["status"]
    assert status.startswith("unavailable (RuntimeError: ") and reason.format(so=so) in status, status
    assert status.endswith(f"; NumPy formulas (discarded cached {so.name}: size 14, sidecar says 18)"), status
    assert not out["kernel"] and out["pool"] and out["relu"]
    assert not list(folder.iterdir())


def test_processes_compiling_at_once_each_get_a_whole_library(tmp_path):
    folder = tmp_path / "cache"
    env = {**os.environ, "TMPDIR": str(tmp_path), "XPGRAD_KERNEL_CACHE": str(folder)}
    procs = [subprocess.Popen([sys.executable, "-c", _PROBE], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    so, _ = _names(folder)
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
        out = json.loads(stdout.splitlines()[-1])
        assert out["status"].startswith(f"compiled: {so}"), out
        _assert_kernels_ran(out)
    _assert_cache_whole(folder)


_MODES = r"""
import json, os, stat
from backends import cpu_kernels
notes = []
private, is_private = cpu_kernels._folder(notes)
mode = stat.S_IMODE(os.lstat(private).st_mode)
os.rmdir(private)
print(json.dumps(dict(private=is_private, mode=mode, notes=notes)))
"""


@pytest.mark.parametrize("umask", [0, pytest.param(0o277, marks=needs_root)])     # root: cc writes 0400 files
def test_new_folders_and_files_are_private_whatever_the_umask(tmp_path, umask):
    """0700 folders and 0600 files, set explicitly: under umask 0 they would be 0777 and 0666 (0755 from the
    linker), under umask 277 folders 0500 and files 0400."""
    folder = tmp_path / "a" / "b" / "cache"
    rc, out, err = _run(tmp_path, {"XPGRAD_KERNEL_CACHE": str(folder)}, umask=umask)
    assert rc == 0, err
    assert out["status"] == f"compiled: {_names(folder)[0]}", out
    _assert_kernels_ran(out)
    for d in (tmp_path / "a", tmp_path / "a" / "b", folder):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    _assert_cache_whole(folder)                                 # 0600 files, no temporary ones left
    refused = tmp_path / "refused"
    refused.mkdir()
    os.chmod(refused, 0o777)
    rc, out, err = _run(tmp_path, {"XPGRAD_KERNEL_CACHE": str(refused)}, umask=umask, script=_MODES)
    assert rc == 0, err
    assert out["private"] and out["mode"] == 0o700, out
