"""The type stubs (``python -m xpgrad.stubs``): current with the op records, complete, and read by mypy.

The Tensor methods, ``autograd``'s aliases and ``nn.functional``'s record-made functions exist only at run
time; the stubs are what editors and type checkers see of them.
"""
from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

import autograd as ag
import nn.functional as F
from autograd import methods, spec
from xpgrad import stubs

ROOT = pathlib.Path(__file__).resolve().parents[1]
STUBS = {"tensor": ROOT / "autograd" / "tensor.pyi", "autograd": ROOT / "autograd" / "__init__.pyi",
         "functional": ROOT / "nn" / "functional.pyi"}


def _defined(path: pathlib.Path, cls: str | None = None) -> set[str]:
    """Names a stub defines at module level, or in class ``cls``."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    if cls is not None:
        body = next(n for n in body if isinstance(n, ast.ClassDef) and n.name == cls).body
    names = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(a.asname for a in node.names if a.asname and not a.asname.startswith("_"))
    return names


def test_the_stubs_on_disk_are_current(capsys):
    assert set(stubs.stubs()) == set(STUBS.values())
    rc = stubs.main(["--check"])
    assert rc == 0, f"{capsys.readouterr().err} (run: python -m xpgrad.stubs)"


def test_a_new_record_makes_the_stubs_stale(monkeypatch, capsys):
    def frobnicate(input, times: int = 2, *, scale: float = 1.0) -> ag.Tensor:
        return input * scale
    monkeypatch.setitem(spec._PUBLIC, "frobnicate",
                        spec.Public("frobnicate", frobnicate, methods=("frobnicate",), aliases=("frob",)))
    wanted = stubs.stubs()
    assert stubs.stale(wanted) == [STUBS["tensor"]]
    text = wanted[STUBS["tensor"]]
    assert ("    def frobnicate(self, times: _builtins.int = ..., *, scale: _builtins.float = ...) -> Tensor: ...\n"
            in text)
    assert "    def frob(self, times: _builtins.int = ..., *, scale: _builtins.float = ...) -> Tensor: ...\n" in text
    assert stubs.main(["--check"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "tensor.pyi" in err and "python -m xpgrad.stubs" in err


def test_check_from_the_command_line():
    run = subprocess.run([sys.executable, "-m", "xpgrad.stubs", "--check"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_every_runtime_tensor_method_is_in_the_stub():
    declared = _defined(STUBS["tensor"], "Tensor")
    runtime = set(methods.table()) | {n for n in vars(ag.Tensor) if n not in stubs._SKIP_CLASS_ATTRS}
    assert not runtime - declared, f"missing from tensor.pyi: {sorted(runtime - declared)}"
    assert not declared - runtime - set(stubs._instance_attributes(ag.Tensor)), sorted(declared - runtime)


def test_every_exported_name_is_in_the_module_stubs():
    declared = _defined(STUBS["autograd"])
    missing = set(ag.__all__) - declared
    assert not missing, f"missing from autograd/__init__.pyi: {sorted(missing)}"
    assert set(ag.TORCH_ALIASES) <= declared                        # nn, optim, utils, save, load
    missing = set(F.__all__) - _defined(STUBS["functional"])
    assert not missing, f"missing from nn/functional.pyi: {sorted(missing)}"


def test_stub_signatures_follow_the_bound_function():
    text = STUBS["tensor"].read_text(encoding="utf-8")
    # ``sum`` is wrapped (functools.wraps) to take NumPy's keyword names: the op's own parameters, then those
    assert ("    def sum(self, dim=..., keepdim: _builtins.bool = ..., *, dtype=..., axis=..., "
            "keepdims: _builtins.bool = ...) -> Tensor: ...\n") in text
    assert "    def view(self, *shape) -> Tensor: ...\n" in text
    assert "    @property\n    def T(self) -> Tensor: ...\n" in text
    assert "    @requires_grad.setter\n" in text
    assert text.startswith("# Generated") and "python -m xpgrad.stubs" in text.splitlines()[1]


USER_SCRIPT = """\
    import autograd as ag
    import nn
    import nn.functional as F

    x = ag.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = (x @ x.T).exp().sum(dim=1, keepdim=True).mean()
    y.backward()
    F.relu(x)
    x.view(2, -1)
    values, indices = ag.max(x, 1)
    model = nn.Linear(2, 3)
    opt = nn.optim.Adam(model.parameters(), lr=1e-3)
    z = ag.zeros(2, 3, dtype=ag.float32) + 1
    with ag.no_grad():
        x.relu_()
    print(x.grad, values, indices, opt, z.shape, x.sum(axis=0, keepdims=True).item(), ag.optim.SGD, ag.concatenate)
"""

WRONG_SCRIPT = """\
    import autograd as ag

    x = ag.tensor([1.0, 2.0])
    reveal_type((x @ x.T).exp().sum(dim=0))
    x.frobnicate()
"""


def test_mypy_reads_the_stubs(tmp_path):
    """The README's API type-checks; a misspelt method is an attr-defined error, so the stubs are what mypy saw."""
    pytest.importorskip("mypy.api")
    (tmp_path / "user.py").write_text(textwrap.dedent(USER_SCRIPT), encoding="utf-8")
    (tmp_path / "wrong.py").write_text(textwrap.dedent(WRONG_SCRIPT), encoding="utf-8")
    env = {**os.environ, "MYPYPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", "--show-error-codes",
                          "--no-error-summary", "--no-incremental", "--cache-dir", os.devnull, "user.py", "wrong.py"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    lines = [line for line in out.splitlines() if line.strip()]
    assert not [line for line in lines if line.startswith("user.py")], out
    assert 'wrong.py:4: note: Revealed type is "autograd.tensor.Tensor"' in out, out
    assert any(line.startswith("wrong.py:5: error:") and "frobnicate" in line and "[attr-defined]" in line
               for line in lines), out
    assert len(lines) == 2, out
