"""A pytest plugin: one JSON line per test outcome, appended to ``$XPGRAD_TEST_LOG`` as each test ends.

``xpgrad.bench.gpu_check`` loads it (``-p xpgrad.bench.pytest_log``) so that a test run cut short by the
check's time limit still reports every outcome it reached, with the reason of each skip and failure.
"""
from __future__ import annotations

import json
import os


def _reason(report) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])          # (file, line, "Skipped: why")
    if report.failed:
        return report.longreprtext[-3000:]
    return ""


def pytest_runtest_logreport(report) -> None:
    path = os.environ.get("XPGRAD_TEST_LOG")
    # one line per test: its call, or the setup/teardown phase that decided it instead
    if not path or not (report.when == "call" or report.outcome != "passed"):
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome,
                            "reason": _reason(report), "duration": round(report.duration, 4)}) + "\n")
