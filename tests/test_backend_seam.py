"""The backend seam, checked on the source: what ops reach through ``xp`` exists in CuPy, and every place
where autograd/ or nn/ touches host NumPy is a listed, deliberate one.

Both checks read the code (``ast``), so they run in CI without a GPU: a NumPy-only function hidden in a
path that CuPy arrays take, or a new silent device-to-host copy, fails here instead of on the first GPU.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("autograd", "nn", "backends")


def _sources():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _chain(node) -> list[str]:
    """``a.b.c`` as ``["a", "b", "c"]``; a call or subscript at the root becomes ``"<expr>"``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    parts.append(node.id if isinstance(node, ast.Name) else "<expr>")
    return parts[::-1]


def _is_host_module(chain: list[str]) -> bool:
    """``backends.host`` (NumPy for host-side work, on purpose) or its spelling ``backends.cpu.xp``."""
    return chain[-2:] in (["backends", "host"], ["cpu", "xp"])


def xp_attribute_uses() -> dict[str, set[str]]:
    """Dotted names reached through an array module ``xp`` (``xp.foo``, ``self.xp.linalg.norm``, ...) -> files."""
    uses: dict[str, set[str]] = {}
    for rel, tree in _sources():
        if rel == "backends/numpy_backend.py":
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            chain = _chain(node)
            for k, part in enumerate(chain[:-1]):
                if part == "xp" and not _is_host_module(chain[:k + 1]):
                    uses.setdefault(".".join(chain[k + 1:]), set()).add(rel)
                    break
    return uses


def test_the_scan_sees_xp_uses():
    uses = xp_attribute_uses()
    assert {"matmul", "exp", "where", "zeros"} <= set(uses), sorted(uses)
    assert len(uses) > 40


def test_every_xp_attribute_exists_in_cupy():
    try:
        import cupy
        import cupyx
    except Exception as exc:  # noqa: BLE001  (ImportError, or a CUDA library failing to load)
        pytest.skip(f"CuPy is not importable here ({exc}); CI installs cupy-cuda12x for this check")
    missing = []
    for name, files in sorted(xp_attribute_uses().items()):
        obj = cupy
        for part in name.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is None and getattr(cupyx, name.split(".")[0], None) is None:
            missing.append(f"xp.{name} (used in {', '.join(sorted(files))})")
    assert not missing, "NumPy-only names on a path CuPy arrays take:\n" + "\n".join(missing)


# Every place where autograd/ or nn/ reaches host NumPy or copies device data to the host, and why.
# A new entry means a new host transfer: add it here only when it is deliberate and explicit.
HOST_USES = {
    ("autograd/__init__.py", "<module>"): "dtype objects ag.float32 etc.",
    ("autograd/tensor.py", "<module>"): "host module alias for dtype objects",
    ("autograd/tensor.py", "_DefaultDtype"): "the default dtype object",
    ("autograd/tensor.py", "set_default_dtype"): "dtype normalisation",
    ("autograd/tensor.py", "Tensor.__repr__"): "printing shows host values",
    ("autograd/tensor.py", "Tensor.numpy"): "the explicit host copy",
    ("autograd/tensor.py", "Tensor.tolist"): "explicit host conversion",
    ("autograd/tensor.py", "Tensor.__array__"): "NumPy protocol: explicit host conversion",
    ("autograd/factories.py", "_dt"): "dtype normalisation",
    ("autograd/factories.py", "from_numpy"): "type test: only host NumPy arrays are shared",
    ("autograd/factories.py", "as_tensor"): "dtype normalisation",
    ("autograd/audit.py", "_directions"): "audit directions drawn on the host, then moved to each parameter",
    ("autograd/gradcheck.py", "<module>"): "finite differences run on host float64 copies",
    ("autograd/gradcheck.py", "_host"): "the one device-to-host copy of gradcheck",
    ("autograd/gradcheck.py", "gradcheck"): "host arithmetic on copies",
    ("autograd/gradcheck.py", "gradcheck.objective"): "host arithmetic on copies",
    ("autograd/gradcheck.py", "gradgradcheck"): "random upstream gradient drawn on the host",
    ("nn/module.py", "Module.to"): "dtype parsing",
    ("nn/module.py", "_as_array"): "Python data (no .shape) to an array before the device copy",
    ("nn/optim/optimizer.py", "Optimizer._follow"): "loaded state moved to its parameter's device",
    ("nn/convert.py", "torch_to_npz"): "PyTorch tensors read from a .pth file become host arrays for the npz",
    ("nn/utils.py", "clip_grad_norm_"): "gradients on several devices gathered to one",
    ("nn/parallel/comm.py", "MPICommunicator.allreduce_floats"): "metrics (Python floats) summed over ranks",
    ("nn/parallel/comm.py", "MPICommunicator.iallreduce_"): "CuPy arrays over MPI without NCCL: host-staged",
    ("nn/parallel/comm.py", "MPICommunicator.broadcast_"): "CuPy arrays over MPI without NCCL: host-staged",
}


# Whole files that are host-side by design.
HOST_FILES = {
    "autograd/testing.py": "the gradient-check kit draws inputs and compares results on the host",
    "nn/serialization.py": "checkpoint files are host NumPy (device arrays are copied explicitly when saving)",
}


def host_uses() -> set[tuple[str, str]]:
    """``(file, function)`` pairs in autograd/ and nn/ (data loading excepted) that use host NumPy."""
    found = set()
    for rel, tree in _sources():
        if rel.startswith(("backends/", "nn/data/")) or rel in HOST_FILES:
            continue
        aliases = set()
        for node in ast.walk(tree):           # names bound to the host module: x = backends.host; from backends import host
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute) \
                    and _is_host_module(_chain(node.value)):
                aliases |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            if isinstance(node, ast.ImportFrom) and node.module == "backends":
                aliases |= {a.asname or a.name for a in node.names if a.name == "host"}

        def visit(node, scope):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                scope = node.name if scope == "<module>" else f"{scope}.{node.name}"
                if node.name == "__array__":
                    found.add((rel, scope))
            hit = (isinstance(node, ast.Attribute) and _is_host_module(_chain(node))) \
                or (isinstance(node, ast.Name) and node.id in aliases) \
                or (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("to_host", "numpy", "asnumpy"))
            if hit:
                found.add((rel, scope.split(".<")[0]))
            for child in ast.iter_child_nodes(node):
                visit(child, scope)
        visit(tree, "<module>")
    return found


def test_host_numpy_is_reached_only_where_listed():
    found = host_uses()
    new = sorted(found - set(HOST_USES))
    stale = sorted(set(HOST_USES) - found)
    assert not new, ("new host-NumPy use or device-to-host copy in autograd/nn (go through the backend, or list "
                     f"it in HOST_USES with the reason): {new}")
    assert not stale, f"HOST_USES lists places that no longer use host NumPy (remove them): {stale}"
