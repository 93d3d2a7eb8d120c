"""Anomaly mode and the op profiler: what they report, that they are per thread, and that they leave nothing
installed once off."""
from __future__ import annotations

import json
import threading
import warnings

import numpy as np
import pytest

import autograd as ag
from autograd import engine
from autograd.function import Function

ORIGINAL_APPLY = Function.__dict__["apply"]


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # NumPy's divide-by-zero notes
        yield
    assert Function.__dict__["apply"] is ORIGINAL_APPLY and engine._backward_hook is None


def test_forward_anomaly_names_op_inputs_and_the_users_line():
    x = ag.tensor([1.0, 0.0, 2.0], requires_grad=True)
    with ag.detect_anomaly():
        with pytest.raises(ag.AnomalyError) as err:
            x.log()                                                    # the line the error must point at
    msg = str(err.value)
    assert msg.startswith("Log produced inf in output 0 (shape (3,)) from finite inputs")
    assert "dtypes [float32]" in msg and "device cpu" in msg
    assert "test_debug.py" in msg and "x.log()" in msg


def test_backward_anomaly_names_the_op_and_where_it_was_created():
    x = ag.tensor([4.0, 0.0], requires_grad=True)
    with ag.detect_anomaly():
        y = x.sqrt()                                                   # finite forward, inf gradient at 0
        with pytest.raises(ag.AnomalyError, match=r"Sqrt backward produced inf in the gradient of input 0") as err:
            y.sum().backward()
    assert "y = x.sqrt()" in str(err.value)


def test_only_the_first_bad_op_is_blamed_and_off_means_off():
    x = ag.tensor([np.inf, 1.0], requires_grad=True)
    with ag.detect_anomaly():
        (x.exp() * 2).sum()                                            # inputs already non-finite: not these ops
    y = ag.tensor([0.0]).log()                                         # anomaly mode off: no error
    assert np.isinf(y.numpy()).all()


def test_anomaly_mode_is_per_thread():
    started, done = threading.Event(), threading.Event()
    errors = []

    def other():
        started.wait()
        try:
            ag.tensor([0.0]).log()
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with ag.detect_anomaly():
        assert ag.is_anomaly_enabled()
        started.set()
        done.wait(10)
    t.join()
    assert errors == [] and not ag.is_anomaly_enabled()


def test_set_detect_anomaly_and_decorator():
    ag.set_detect_anomaly(True)
    ag.set_detect_anomaly(True)                                        # idempotent: one release below suffices
    try:
        with pytest.raises(ag.AnomalyError):
            ag.tensor([-1.0]).sqrt()
    finally:
        ag.set_detect_anomaly(False)

    @ag.detect_anomaly()
    def bad():
        return ag.tensor([0.0]).log()
    with pytest.raises(ag.AnomalyError):
        bad()


def test_profiler_counts_ops_once_and_charges_backward_internals_to_backward(tmp_path):
    x = ag.randn(8, 4, requires_grad=True)
    w = ag.randn(4, 3, requires_grad=True)
    with ag.profile() as prof:
        for _ in range(3):
            ((x @ w).tanh()).sum().backward()
    rows = {r["name"]: r for r in prof.rows()}
    for op in ("Tanh", "Sum"):
        assert rows[op]["calls"] == 3 and rows[op]["backward_calls"] == 3, op
    assert rows["Tanh"]["bytes"] > 0 and rows["Tanh"]["forward_s"] > 0
    assert [r["name"] for r in prof.rows("name")] == sorted(rows)
    table = prof.table(sort_by="calls", top=2)
    assert len(table.splitlines()) == 3 and "calls" in table.splitlines()[0]
    data = json.loads(prof.to_json(str(tmp_path / "p.json")))
    assert {r["name"] for r in data["ops"]} == set(rows) and len(data["events"]) == len(prof.events)
    trace = json.load(open(prof.to_chrome_trace(str(tmp_path / "t.json"))))
    ev = trace["traceEvents"]
    assert ev and all(e["ph"] == "X" and e["dur"] >= 0 for e in ev)
    assert {e["cat"] for e in ev} == {"forward", "backward"}
    with pytest.raises(ValueError, match="sort_by must be one of"):
        prof.table(sort_by="speed")


def test_profiler_inside_anomaly_mode_and_nesting():
    x = ag.randn(5, requires_grad=True)
    with ag.detect_anomaly():
        with ag.profile() as outer:
            with ag.profile() as inner:
                (x * 2).sum()
            (x + 1).sum()
    assert set(inner.stats) == {"Mul", "Sum"} and set(outer.stats) == {"Add", "Sum"}


def test_benchmark_profile_step_explains_a_training_step():
    from xpgrad.bench.profile_step import profile_step
    prof, wall = profile_step("mlp", batch=8, steps=2)
    rows = {r["name"]: r for r in prof.rows()}
    assert rows["Linear"]["calls"] == 4 and rows["Linear"]["backward_calls"] == 4
    assert wall > 0 and sum(r["total_s"] for r in rows.values()) > 0
