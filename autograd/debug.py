"""Anomaly mode and the op profiler: two views of every op, installed only while someone uses them.

    with ag.detect_anomaly():         # the first NaN/inf from a forward or a backward raises AnomalyError,
        loss = model(x).sum()         # naming the op, its inputs and the source line that created it
        loss.backward()

    with ag.profile() as prof:        # per-op forward/backward time, calls and bytes
        train_step()
    print(prof.table(sort_by="total"))
    prof.to_chrome_trace("trace.json")   # chrome://tracing or ui.perfetto.dev

Zero cost when off: ``Function.apply`` and the engine's backward call are swapped for instrumented versions
only while at least one thread has a tool on, and swapped back after. The switches are per thread (like grad
mode); a thread with both off pays one thread-local read per op while another thread has them on. Ops that a
backward pass runs internally are charged to that backward, not listed on their own.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import defaultdict

from . import engine
from .function import Function, _describe
from .tensor import Tensor

__all__ = ["AnomalyError", "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled", "profile", "Profile"]

_PACKAGES = tuple(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), p) + os.sep
                  for p in ("autograd", "nn", "backends"))


class AnomalyError(RuntimeError):
    """An op produced NaN or inf from finite inputs (forward) or finite upstream gradients (backward)."""


class _ToolState(threading.local):
    anomaly = False
    profiler = None         # the innermost active Profile of this thread
    depth = 0               # > 0 inside an instrumented op: nested ops are charged to it


_state = _ToolState()
_lock = threading.Lock()
_users = 0
_fast_apply = Function.__dict__["apply"]


def _acquire() -> None:
    global _users
    with _lock:
        _users += 1
        if _users == 1:
            Function.apply = classmethod(_tool_apply)
            engine._backward_hook = _tool_backward


def _release() -> None:
    global _users
    with _lock:
        _users -= 1
        if _users == 0:
            Function.apply = _fast_apply
            engine._backward_hook = None


# --- where an op was created -----------------------------------------------------------------------------------
def _user_frame() -> str:
    """``file:line in function`` of the innermost caller outside this library (the user's line)."""
    f = sys._getframe(2)
    while f is not None and f.f_code.co_filename.startswith(_PACKAGES):
        f = f.f_back
    if f is None:
        return "<unknown>"
    line = ""
    try:
        import linecache
        line = linecache.getline(f.f_code.co_filename, f.f_lineno).strip()
    except Exception:  # noqa: BLE001  (the location alone is enough)
        pass
    return f"{f.f_code.co_filename}:{f.f_lineno} in {f.f_code.co_name}" + (f": {line}" if line else "")


def _finite(t: Tensor) -> bool:
    arr = t.array
    return arr.dtype.kind not in "fc" or bool(t._backend.xp.isfinite(arr).all())


def _bad_kind(t: Tensor) -> str:
    return "nan" if bool(t._backend.xp.isnan(t.array).any()) else "inf"


# --- the instrumented paths -----------------------------------------------------------------------------------
def _tool_apply(cls, *inputs, **attrs):
    st = _state
    if st.depth or not (st.anomaly or st.profiler is not None):
        return _fast_apply.__func__(cls, *inputs, **attrs)
    prof = st.profiler
    where = _user_frame() if st.anomaly else None
    st.depth += 1
    try:
        t0 = time.perf_counter()
        out = _fast_apply.__func__(cls, *inputs, **attrs)
        outs = out if type(out) is tuple else (out,)
        if prof is not None:
            outs[0]._backend.synchronize()
            prof._record(cls.__name__, "forward", t0, time.perf_counter(), sum(o.array.nbytes for o in outs), inputs)
    finally:
        st.depth -= 1
    if where is not None:
        node = outs[0].creator
        if node is not None:
            node.created_at = where
        if all(_finite(t) for t in inputs if isinstance(t, Tensor)):
            for k, o in enumerate(outs):
                if not _finite(o):
                    raise AnomalyError(f"{cls.__name__} produced {_bad_kind(o)} in output {k} (shape "
                                       f"{tuple(o.shape)}) from finite inputs; {_describe(inputs)}; created at {where}")
    return out


def _tool_backward(fn, gys):
    st = _state
    if st.depth or not (st.anomaly or st.profiler is not None):
        return fn.backward(*gys)
    prof = st.profiler
    st.depth += 1
    try:
        t0 = time.perf_counter()
        gxs = fn.backward(*gys)
        gxs = gxs if type(gxs) is tuple else (gxs,)
        if prof is not None:
            live = [g for g in gxs if g is not None]
            if live:
                live[0]._backend.synchronize()
            prof._record(type(fn).__name__, "backward", t0, time.perf_counter(), sum(g.array.nbytes for g in live),
                         fn.inputs or ())
    finally:
        st.depth -= 1
    if st.anomaly and all(g is None or _finite(g) for g in gys):
        for k, g in enumerate(gxs):
            if g is not None and not _finite(g):
                where = getattr(fn, "created_at", "<created before anomaly mode was on>")
                raise AnomalyError(f"{type(fn).__name__} backward produced {_bad_kind(g)} in the gradient of "
                                   f"input {k} (shape {tuple(g.shape)}) from finite upstream gradients; "
                                   f"{_describe(fn.inputs or ())}; the op was created at {where}")
    return gxs


# --- anomaly mode ----------------------------------------------------------------------------------------------
def is_anomaly_enabled() -> bool:
    """Whether anomaly mode is on in the calling thread."""
    return _state.anomaly


def set_detect_anomaly(mode: bool) -> None:
    """Switch anomaly mode on or off for the calling thread (see :class:`detect_anomaly`)."""
    mode = bool(mode)
    if mode == _state.anomaly:
        return
    _state.anomaly = mode
    (_acquire if mode else _release)()


class detect_anomaly:
    """Context manager (and decorator): inside it, the first op whose forward produces NaN/inf from finite
    inputs, or whose backward produces NaN/inf from finite upstream gradients, raises :class:`AnomalyError`
    naming the op, its inputs' shapes/dtypes/devices, the bad output or gradient, and the source line that
    created the op. Costs a stack walk and a finiteness check per op while on; nothing while off."""

    def __enter__(self):
        self._prev = _state.anomaly
        set_detect_anomaly(True)
        return self

    def __exit__(self, *exc):
        set_detect_anomaly(self._prev)

    def __call__(self, func):
        import functools

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with detect_anomaly():
                return func(*args, **kwargs)
        return wrapper


# --- profiler ----------------------------------------------------------------------------------------------------
class Profile:
    """Per-op statistics of the ops run in its ``with`` block (see :func:`profile`)."""

    SORT_KEYS = ("total", "forward", "backward", "calls", "bytes", "name")

    def __init__(self):
        self.events: list[dict] = []
        self.stats = defaultdict(lambda: {"calls": 0, "forward_s": 0.0, "backward_s": 0.0, "backward_calls": 0,
                                          "bytes": 0})
        self._t0 = None
        self._prev = None

    def __enter__(self):
        self._t0 = time.perf_counter()
        self._prev = _state.profiler
        _state.profiler = self
        _acquire()
        return self

    def __exit__(self, *exc):
        _state.profiler = self._prev
        _release()

    def _record(self, name: str, phase: str, t0: float, t1: float, nbytes: int, inputs) -> None:
        s = self.stats[name]
        if phase == "forward":
            s["calls"] += 1
            s["forward_s"] += t1 - t0
        else:
            s["backward_calls"] += 1
            s["backward_s"] += t1 - t0
        s["bytes"] += int(nbytes)
        self.events.append({"name": f"{name} {phase}", "op": name, "phase": phase, "start_s": t0 - self._t0,
                            "duration_s": t1 - t0, "bytes": int(nbytes), "tid": threading.get_ident(),
                            "shapes": [list(t.shape) for t in inputs if isinstance(t, Tensor)]})

    def rows(self, sort_by: str = "total") -> list[dict]:
        """One dict per op: name, calls, forward/backward/total seconds, bytes allocated by its outputs."""
        if sort_by not in self.SORT_KEYS:
            raise ValueError(f"Profile.table: sort_by must be one of {self.SORT_KEYS}, got {sort_by!r}")
        rows = [{"name": n, "calls": s["calls"], "backward_calls": s["backward_calls"], "forward_s": s["forward_s"],
                 "backward_s": s["backward_s"], "total_s": s["forward_s"] + s["backward_s"], "bytes": s["bytes"]}
                for n, s in self.stats.items()]
        key = {"total": "total_s", "forward": "forward_s", "backward": "backward_s", "calls": "calls",
               "bytes": "bytes", "name": "name"}[sort_by]
        return sorted(rows, key=lambda r: r[key], reverse=sort_by != "name")

    def table(self, sort_by: str = "total", top: int | None = 20) -> str:
        """A text table of the ``top`` ops by ``sort_by`` (total, forward, backward, calls, bytes, name)."""
        rows = self.rows(sort_by)
        total = sum(r["total_s"] for r in rows) or 1.0
        out = [f"{'op':<24} {'calls':>7} {'forward':>10} {'backward':>10} {'total':>10} {'%':>6} {'MB out':>9}"]
        for r in rows[:top]:
            out.append(f"{r['name']:<24} {r['calls']:>7} {r['forward_s'] * 1e3:>8.2f}ms {r['backward_s'] * 1e3:>8.2f}ms "
                       f"{r['total_s'] * 1e3:>8.2f}ms {100 * r['total_s'] / total:>5.1f}% {r['bytes'] / 1e6:>9.2f}")
        return "\n".join(out)

    def to_json(self, path: str | None = None) -> str:
        """The per-op rows and every event as JSON text (also written to ``path`` when given)."""
        text = json.dumps({"ops": self.rows(), "events": self.events}, indent=1)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    def to_chrome_trace(self, path: str) -> str:
        """Write the events in Chrome's trace-event format (open in chrome://tracing or ui.perfetto.dev)."""
        trace = [{"name": e["name"], "cat": e["phase"], "ph": "X", "ts": e["start_s"] * 1e6,
                  "dur": e["duration_s"] * 1e6, "pid": os.getpid(), "tid": e["tid"],
                  "args": {"shapes": e["shapes"], "bytes": e["bytes"]}} for e in self.events]
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"traceEvents": trace, "displayTimeUnit": "ms"}, f)
        return path


def profile() -> Profile:
    """``with ag.profile() as prof:`` records per-op forward and backward time (the device synchronised after
    each op on CuPy, so times are the op's own), call counts and bytes of the results, for the calling thread."""
    return Profile()
