"""The ``xpgrad`` command's one error path (xpgrad.cli.run, xpgrad.args): ordinary mistakes give one line.

One table of command lines, one test: each case runs ``xpgrad.cli.main`` in-process and asserts the exit
status (2: a bad argument, refused while parsing; 1: a failure while running, such as a damaged checkpoint or
an unreadable convert source), exactly one non-empty line on stderr starting ``xpgrad <command>: error:``,
and no traceback. Cases with status 2 run with every command's work replaced by a tripwire, so a check that
came too late (after the benchmark or the training started) fails the case instead of running it. Then:
``--debug`` and ``XPGRAD_DEBUG`` show the traceback, Ctrl-C and bugs, the ``python -m`` forms, and
``nn.convert``'s refusals of tensors NumPy cannot hold.
"""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import backends
from nn.data.idx import write_idx
from nn.serialization import CheckpointError
from xpgrad import cli

# torch warns while building and loading the odd tensors below (beta sparse CSR, deprecated quantization, ...)
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]
NO_GPU = not backends.cuda_available()


def _sys_is_read_only() -> bool:
    try:
        fd, path = tempfile.mkstemp(dir="/sys")
    except OSError:
        return True
    os.close(fd)
    os.unlink(path)
    return False


READ_ONLY = os.path.isdir("/sys") and _sys_is_read_only()

# Placeholders in the table: {file} a regular file; {dir} an existing folder; {missing} a path that does not
# exist; {data} tiny IDX files; {damaged} a run folder whose checkpoint.npz is corrupt; {corrupt} a .pth of
# random bytes; {evil} a pickle whose __reduce__ would create {marker}; {npz} where convert may write.
def case(name, argv, status, skip_unless=True, reason=""):
    return pytest.param(name, argv, status, id=name, marks=pytest.mark.skipif(not skip_unless, reason=reason))


TRAIN_RESUME = ["--model", "mlp", "--epochs", "1", "--limit", "16", "--test-limit", "16", "--data-root", "{data}",
                "--no-download", "--progress", "off", "--resume", "--out"]
CASES = [
    # train: numbers, devices, paths
    case("train-lr-nan", ["train", "--lr", "nan"], 2),
    case("train-lr-negative", ["train", "--lr", "-1"], 2),
    case("train-lr-inf", ["train", "--lr", "inf"], 2),
    case("train-lr-word", ["train", "--lr", "fast"], 2),
    case("train-weight-decay-nan", ["train", "--weight-decay", "nan"], 2),
    case("train-weight-decay-negative", ["train", "--weight-decay", "-0.1"], 2),
    case("train-epochs-negative", ["train", "--epochs", "-1"], 2),
    case("train-batch-size-zero", ["train", "--batch-size", "0"], 2),
    case("train-limit-zero", ["train", "--limit", "0"], 2),
    case("train-val-fraction-nan", ["train", "--val-fraction", "nan"], 2),
    case("train-device-unknown", ["train", "--device", "banana"], 2),
    case("train-device-no-such-gpu", ["train", "--device", "cuda:99"], 2),
    case("train-device-cuda-without-gpu", ["train", "--device", "cuda"], 2, NO_GPU, "a GPU is present"),
    case("train-out-is-a-file", ["train", "--out", "{file}"], 2),
    case("train-out-below-a-file", ["train", "--out", "{file}/run"], 2),
    case("train-out-read-only", ["train", "--out", "/sys/xpgrad-run"], 2, READ_ONLY, "/sys is writable here"),
    case("train-data-root-missing", ["train", "--data-root", "{missing}"], 2),
    case("train-data-root-is-a-file", ["train", "--data-root", "{file}"], 2),
    case("train-unknown-option", ["train", "--lr-max", "1"], 2),
    case("train-resume-damaged-checkpoint", ["train", *TRAIN_RESUME, "{damaged}"], 1),
    # torch-train: the same checks
    case("torch-train-lr-nan", ["torch-train", "--lr", "nan"], 2),
    case("torch-train-device-unknown", ["torch-train", "--device", "banana"], 2),
    case("torch-train-data-root-missing", ["torch-train", "--data-root", "{missing}"], 2),
    case("torch-train-out-below-a-file", ["torch-train", "--out", "{file}/run"], 2),
    # profile
    case("profile-steps-zero", ["profile", "--steps", "0"], 2),
    case("profile-steps-negative", ["profile", "--steps", "-2"], 2),
    case("profile-batch-zero", ["profile", "--batch", "0"], 2),
    case("profile-batch-negative", ["profile", "--batch", "-1"], 2),
    case("profile-device-unknown", ["profile", "--device", "banana"], 2),
    case("profile-trace-below-a-file", ["profile", "--trace", "{file}/trace.json"], 2),
    case("profile-trace-folder-missing", ["profile", "--trace", "{missing}/trace.json"], 2),
    case("profile-trace-is-a-folder", ["profile", "--trace", "{dir}"], 2),
    # bench and bench-parallel: the output folder is checked before the suites run
    case("bench-out-below-a-file", ["bench", "--quick", "--out", "{file}/results"], 2),
    case("bench-out-is-a-file", ["bench", "--quick", "--out", "{file}"], 2),
    case("bench-parallel-ranks-zero", ["bench-parallel", "--ranks", "0"], 2),
    case("bench-parallel-out-below-a-file", ["bench-parallel", "--out", "{file}/results"], 2),
    case("bench-parallel-device-unknown", ["bench-parallel", "--device", "banana"], 2),
    # gradcheck and gpu-check
    case("gradcheck-examples-zero", ["gradcheck", "--examples", "0"], 2),
    case("gradcheck-unknown-op", ["gradcheck", "--ops", "nosuchop"], 2),
    case("gradcheck-cuda-without-gpu", ["gradcheck", "--device", "cuda", "--quick"], 2, NO_GPU, "a GPU is present"),
    case("gpu-check-budget-nan", ["gpu-check", "--budget", "nan"], 2),
    case("gpu-check-device-unknown", ["gpu-check", "--device", "banana"], 2),
    case("gpu-check-data-missing", ["gpu-check", "--data", "{missing}"], 2),
    case("gpu-check-out-below-a-file", ["gpu-check", "--out", "{file}/report"], 2),
    # convert: arguments, then the source file (status 1 with or without torch installed)
    case("convert-no-arguments", ["convert"], 2),
    case("convert-output-folder-missing", ["convert", "{corrupt}", "{missing}/out.npz"], 2),
    case("convert-output-is-a-folder", ["convert", "{corrupt}", "{dir}"], 2),
    case("convert-source-missing", ["convert", "{missing}.pth", "{npz}"], 1),
    case("convert-source-is-a-folder", ["convert", "{dir}", "{npz}"], 1),
    case("convert-source-corrupt", ["convert", "{corrupt}", "{npz}"], 1),
    case("convert-source-pickled", ["convert", "{evil}", "{npz}"], 1),
]


class Evil:
    """Unpickling it would create the file at ``path`` (if anything ever ran it)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("cli-errors")
    (base / "regular.txt").write_text("not a folder\n")
    (base / "folder").mkdir()
    data = base / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for split in ("train", "t10k"):
        write_idx(data / f"{split}-images-idx3-ubyte", rng.integers(0, 255, (16, 28, 28)).astype(np.uint8))
        write_idx(data / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, 16).astype(np.uint8))
    damaged = base / "damaged-run"
    damaged.mkdir()
    (damaged / "checkpoint.npz").write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)   # a zip that is not one
    (base / "corrupt.pth").write_bytes(bytes(rng.integers(0, 256, 4096, dtype=np.uint8)))
    marker = base / "PWNED"
    (base / "evil.pth").write_bytes(pickle.dumps(Evil(marker)))
    return {"file": str(base / "regular.txt"), "dir": str(base / "folder"), "missing": str(base / "missing"),
            "data": str(data), "damaged": str(damaged), "corrupt": str(base / "corrupt.pth"),
            "evil": str(base / "evil.pth"), "marker": str(marker), "npz": str(base / "out.npz")}


# what each command does once its arguments are accepted: replaced by a tripwire for the usage errors
WORK = ["xpgrad.train.load_arrays", "xpgrad.train.fit", "xpgrad.torch_train.load_arrays",
        "xpgrad.bench.ops.run", "xpgrad.bench.steps.run", "xpgrad.bench.profile_step.profile_step",
        "xpgrad.bench.parallel._launch", "xpgrad.gradcheck.run_checks", "xpgrad.bench.gpu_check.run_tests",
        "xpgrad.bench.gpu_check.run_benchmarks", "xpgrad.bench.gpu_check.environment", "nn.convert.torch_to_npz"]


def _tripwire(*args, **kwargs):
    raise AssertionError("the command started its work before its arguments were refused")


def _one_error_line(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith(f"xpgrad {command}: error: "), lines[0]
    assert len(lines[0]) > len(f"xpgrad {command}: error: ") + 5, lines[0]
    return lines[0]


@pytest.mark.parametrize("name, argv, status", CASES)
def test_error_is_one_line(name, argv, status, places, capsys, monkeypatch):
    monkeypatch.delenv("XPGRAD_DEBUG", raising=False)
    if status == 2:
        for target in WORK:
            monkeypatch.setattr(target, _tripwire)
    argv = [a.format(**places) for a in argv]
    assert cli.main(argv) == status
    out, err = capsys.readouterr()
    line = _one_error_line(err, argv[0])
    assert "Traceback" not in err + out
    assert not os.path.exists(places["marker"])            # the pickle's code never ran
    assert not os.path.exists(places["npz"])               # a failed convert writes nothing
    if name == "train-resume-damaged-checkpoint":
        assert "checkpoint.npz" in line and "not a valid xpgrad checkpoint" in line


def test_every_command_has_cases():
    assert {c.values[1][0] for c in CASES} == set(cli.COMMANDS)


# --- --debug, XPGRAD_DEBUG, Ctrl-C, bugs --------------------------------------------------------------------

@pytest.mark.parametrize("how", ["global", "after-command", "environment"])
def test_debug_shows_the_traceback(how, places, capsys, monkeypatch):
    argv = ["convert", places["corrupt"], places["npz"]]
    monkeypatch.delenv("XPGRAD_DEBUG", raising=False)
    if how == "global":
        argv = ["--debug", *argv]
    elif how == "after-command":
        argv = [*argv, "--debug"]
    else:
        monkeypatch.setenv("XPGRAD_DEBUG", "1")
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.rstrip().splitlines()[-1].startswith("xpgrad convert: error: ")


def test_damaged_checkpoint_with_debug_shows_the_chain(places, capsys, monkeypatch):
    monkeypatch.delenv("XPGRAD_DEBUG", raising=False)
    argv = ["--debug", "train", *[a.format(**places) for a in TRAIN_RESUME], places["damaged"]]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "CheckpointError" in err


def test_ctrl_c_is_one_line_and_status_130(places, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr("nn.convert.torch_to_npz", interrupted)
    assert cli.main(["convert", places["corrupt"], places["npz"]]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "xpgrad convert: interrupted"


def test_a_bug_keeps_its_traceback(places, monkeypatch):
    def buggy(*args, **kwargs):
        return None.shape
    monkeypatch.setattr("nn.convert.torch_to_npz", buggy)
    with pytest.raises(AttributeError):
        cli.main(["convert", places["corrupt"], places["npz"]])


def test_messages_of_chained_errors():
    try:
        try:
            raise FileNotFoundError(2, "No such file or directory", "/x/y")
        except OSError as exc:
            raise ValueError() from exc                     # an outer error without a message
    except ValueError as exc:
        assert cli.error_message(exc) == "No such file or directory: '/x/y'"
    try:
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise ValueError("convert: the outer one") from exc
    except ValueError as exc:
        assert cli.error_message(exc, "convert") == "the outer one"


def test_arguments_are_checked_when_main_is_called_directly():
    """Called without the cli, a command's bad argument is still a SystemExit(2), as argparse's were."""
    from xpgrad import train
    from xpgrad.args import UsageError
    with pytest.raises(SystemExit) as info:
        train.parse_args(["--lr", "nan"])
    assert isinstance(info.value, UsageError) and info.value.code == 2 and "--lr" in str(info.value)


def test_output_folder_may_be_new_but_is_not_created_by_the_check(tmp_path):
    from xpgrad.args import writable_dir, writable_file
    target = tmp_path / "a" / "b"
    assert writable_dir(str(target)) == str(target) and not (tmp_path / "a").exists()
    assert writable_file(str(tmp_path / "trace.json")) == str(tmp_path / "trace.json")
    assert list(tmp_path.iterdir()) == []                  # the probe file is gone


# --- the python -m forms and convert's usage line ----------------------------------------------------------

def test_convert_usage_names_the_way_it_was_run(capsys):
    assert cli.main(["convert", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: xpgrad convert ")
    p = subprocess.run([sys.executable, "-m", "nn.convert"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr.strip().startswith("python -m nn.convert: error: ") and "\n" not in p.stderr.strip()


def test_python_dash_m_train_has_the_same_error_path():
    p = subprocess.run([sys.executable, "-m", "xpgrad.train", "--lr", "nan"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr.strip() == "xpgrad train: error: argument --lr: must be a finite number > 0, got 'nan'"


# --- convert: tensors NumPy cannot hold ---------------------------------------------------------------------

def _unsupported_tensors(torch):
    return {
        "sparse": (lambda: torch.eye(3).to_sparse(), "sparse_coo"),
        "sparse-csr": (lambda: torch.eye(3).to_sparse_csr(), "sparse_csr"),
        "meta": (lambda: torch.empty(2, 3, device="meta"), "meta tensor"),
        "quantized": (lambda: torch.quantize_per_tensor(torch.ones(3), 0.1, 0, torch.qint8), "quantized"),
        "float8": (lambda: torch.ones(3).to(torch.float8_e4m3fn), "float8_e4m3fn"),
        "complex32": (lambda: torch.ones(3, dtype=torch.complex32), "complex32"),
        "nested": (lambda: torch.nested.nested_tensor([torch.ones(2), torch.ones(3)]), "nested"),
    }


@pytest.mark.parametrize("kind", ["sparse", "sparse-csr", "meta", "quantized", "float8", "complex32", "nested"])
def test_convert_refuses_tensors_numpy_cannot_hold(kind, tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from nn.convert import torch_to_npz
    make, what = _unsupported_tensors(torch)[kind]
    src, dst = tmp_path / "w.pth", tmp_path / "w.npz"
    torch.save({"fc.bias": torch.zeros(2), "layer.weight": make()}, src)
    with pytest.raises(CheckpointError, match=r"entry 'layer\.weight' .*" + what):
        torch_to_npz(str(src), str(dst))
    assert not dst.exists()
    assert cli.main(["convert", str(src), str(dst)]) == 1                  # and through the command: one line
    line = _one_error_line(capsys.readouterr().err, "convert")
    assert "layer.weight" in line and what in line and not dst.exists()


def test_convert_names_a_key_that_is_not_a_string(tmp_path):
    torch = pytest.importorskip("torch")
    from nn.convert import torch_to_npz
    src = tmp_path / "w.pth"
    torch.save({"fc.weight": torch.ones(2, 2), 3: torch.ones(2)}, src)
    with pytest.raises(CheckpointError, match=r"key 3 .* is of type int, not a string"):
        torch_to_npz(str(src), str(tmp_path / "w.npz"))


def test_convert_still_takes_what_numpy_has(tmp_path):
    torch = pytest.importorskip("torch")
    import nn
    from nn.convert import torch_to_npz
    src, dst = tmp_path / "w.pth", tmp_path / "w.npz"
    state = {"a": torch.ones(2, dtype=torch.bfloat16), "b": torch.ones(2, dtype=torch.complex64).conj(),
             "c": torch.ones(2, dtype=torch.uint8), "d": torch.ones(2, dtype=torch.bool)}
    torch.save(state, src)
    torch_to_npz(str(src), str(dst))
    got = nn.load(str(dst))
    assert got["a"].dtype == np.float32 and got["b"].dtype == np.complex64 and got["c"].dtype == np.uint8
    np.testing.assert_array_equal(got["b"], np.ones(2, np.complex64))
