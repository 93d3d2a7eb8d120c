"""The ``xpgrad`` command: dispatch, help, and the gradient checks it runs from an installed package."""
from __future__ import annotations

import dataclasses
import pathlib
import subprocess
import sys

import pytest

import autograd as ag
import autograd.function
from xpgrad import cli, gradcheck

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMMANDS = ("train", "bench", "gradcheck", "convert", "gpu-check")


def test_help_lists_every_subcommand(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: xpgrad <command>")
    for name in COMMANDS + ("torch-train", "profile", "bench-parallel"):
        assert f"\n  {name} " in out, name


def test_no_command_and_unknown_command_are_usage_errors(capsys):
    assert cli.main([]) == 2
    assert cli.main(["trian"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'trian'" in err and "gradcheck" in err


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("xpgrad ")


@pytest.mark.parametrize("name, marker", [("train", "--model"), ("bench", "--quick"), ("gradcheck", "--ops"),
                                          ("convert", "src"), ("gpu-check", "--budget"), ("profile", "--steps"),
                                          ("torch-train", "--init")])
def test_subcommand_help_reaches_its_module(name, marker, capsys):
    assert cli.main([name, "--help"]) == 0          # argparse's SystemExit(0) becomes a return value
    assert marker in capsys.readouterr().out


def test_bad_option_is_an_error_status_not_an_exception(capsys):
    assert cli.main(["train", "--epochs", "many"]) == 2
    assert "invalid int value" in capsys.readouterr().err


def test_gradcheck_quick_passes_on_real_ops(capsys):
    assert cli.main(["gradcheck", "--quick", "--ops", "exp,relu", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "\nexp " in out and "\nrelu " in out and "2 passed, 0 failed" in out


def _isolate_registry(monkeypatch):
    """Let ops defined by a test register into a copy of the registry, dropped when the test ends."""
    if isinstance(getattr(autograd.function, "_REGISTRY", None), dict):
        monkeypatch.setattr(autograd.function, "_REGISTRY", dict(autograd.function._REGISTRY))


@pytest.fixture
def wrong_op(monkeypatch):
    """A deliberately wrong op in the registry for this test (the registry is restored afterwards)."""
    _isolate_registry(monkeypatch)

    class WrongSquare(ag.Function):
        """f = x²; the backward says x instead of 2x."""
        def forward(self, x):
            return x * x

        def backward(self, gy):
            return gy * self.inputs[0]

        spec = ag.OpSpec(ref=lambda np, x: x * x, shapes="nonempty", domain=(1.0, 3.0))

    assert "WrongSquare" in ag.all_specs()
    return WrongSquare


def test_gradcheck_fails_on_a_wrong_backward(wrong_op, capsys):
    assert cli.main(["gradcheck", "--quick", "--ops", "WrongSquare,exp", "--device", "cpu"]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("WrongSquare "))
    assert "FAIL" in row
    assert "--- WrongSquare on cpu FAILED ---" in out and "GradcheckError" in out
    assert "1 passed, 1 failed" in out


def test_gradcheck_wrong_forward_is_caught_by_the_reference(monkeypatch):
    _isolate_registry(monkeypatch)

    class OffByOne(ag.Function):
        def forward(self, x):
            return x + 1.0

        def backward(self, gy):
            return gy

        spec = ag.OpSpec(ref=lambda np, x: x, name="OffByOne")

    r = gradcheck.check_op(dataclasses.replace(OffByOne.spec, call=OffByOne.apply), "cpu", 3, seed=0)
    assert r.status == "FAIL" and "OffByOne" in r.detail


def test_gradcheck_option_errors(capsys):
    assert cli.main(["gradcheck", "--ops", "nosuchop"]) == 2
    assert "unknown op(s) nosuchop" in capsys.readouterr().err
    assert cli.main(["gradcheck", "--quick", "--examples", "3"]) == 2          # one size option at a time
    if not ag.cuda_available():
        assert cli.main(["gradcheck", "--device", "cuda", "--quick"]) == 2


def test_gradcheck_list_names_every_spec(capsys):
    assert cli.main(["gradcheck", "--list"]) == 0
    assert set(capsys.readouterr().out.split()) == set(ag.all_specs())


def test_python_dash_m_forms_run_from_the_source_tree():
    for args in (["-m", "xpgrad", "--help"], ["-m", "benchmarks.train", "--help"]):
        p = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert "xpgrad" in p.stdout



_MALLOC_CYCLES = """
import resource, sys
import numpy as np
from xpgrad.bench.timing import steady_malloc
if sys.argv[1] == "steady" and not steady_malloc():
    print("not glibc"); sys.exit()
def cycles():      # a step's worth of activations of mixed sizes, allocated and freed five times
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        arrays = [np.ones(mib << 20, np.uint8) for mib in (1, 2, 4, 8, 16, 4, 2)]
        del arrays
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
cycles()
print(cycles())
"""


def test_steady_malloc_removes_the_page_faults_of_reallocation():
    """The benchmarks' setting for PyTorch (whose CPU tensors come straight from malloc): with glibc's defaults
    blocks of a few MiB are unmapped on free and faulted in again (~12,700 faults here); with it, none."""
    root = pathlib.Path(__file__).resolve().parents[1]

    def run(mode):
        out = subprocess.run([sys.executable, "-c", _MALLOC_CYCLES, mode], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        if out == "not glibc":
            pytest.skip("not glibc: nothing to tune")
        return int(out)

    steady, default = run("steady"), run("default")
    assert steady < 100, f"{steady} page faults with steady_malloc, {default} without"
