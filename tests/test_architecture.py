"""The house rules, checked on the source.

- autograd/ has floors and no import circle: a module imports only modules on its own floor or below, at the
  top of the file or inside a function alike (an import tucked into a function to dodge a loop is still an
  edge here).
- nn/ and xpgrad/ never touch Tensor internals or backends' private names.
- nn/ and xpgrad/ use only the public names of autograd and backends: no import of a ``_``-prefixed name from
  their modules, no import of a private module (``autograd.ops._util``, ``autograd.ops._grid``, ...), no
  attribute access to a ``_``-name on one of their modules (``ag._x``, ``ag.ops._util``).
- Docstrings and comments in autograd/, backends/, nn/ and xpgrad/ stand alone: they cite no document outside
  the repository (DESIGN, its sections, the seed notes) and no issue number; they say the reason itself.
"""
from __future__ import annotations

import ast
import io
import pathlib
import re
import sys
import tokenize

ROOT = pathlib.Path(__file__).resolve().parent.parent
AUTOGRAD = ROOT / "autograd"

# Floors of autograd/, lowest first. A module may import from its own floor and the floors below only.
FLOORS = [
    {"errors", "grad_mode", "spec", "cuda"},
    {"tensor"},
    {"function", "factories"},
    {"core", "ops._util"},
    {"engine"},
    {"ops.*"},
    {"gradcheck", "methods"},
    {"audit", "debug", "graphviz", "testing"},
    {"__init__"},
]


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(AUTOGRAD).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _floor(name: str) -> int:
    for i, floor in enumerate(FLOORS):
        if name in floor or (name.startswith("ops.") and "ops.*" in floor and name not in FLOORS[3]) \
                or (name == "ops" and "ops.*" in floor):
            return i
    raise AssertionError(f"autograd/{name}.py is on no floor: add it to FLOORS in {__file__}")


def _resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """autograd-internal module names an import statement reaches (relative or absolute)."""
    out = []
    if isinstance(node, ast.Import):
        for a in node.names:
            if a.name == "autograd" or a.name.startswith("autograd."):
                out.append(a.name[len("autograd."):] if "." in a.name else "__init__")
        return out
    if node.level:
        base = module.split(".")
        is_pkg = (AUTOGRAD / module.replace(".", "/") / "__init__.py").exists() or module == "__init__"
        base = base if is_pkg else base[:-1]
        base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
        if module == "__init__":
            base = []
        prefix = ".".join(b for b in base if b != "__init__")
        target = ".".join(p for p in (prefix, node.module or "") if p)
    elif node.module and (node.module == "autograd" or node.module.startswith("autograd.")):
        target = node.module[len("autograd."):] if "." in node.module else ""
    else:
        return out
    names = [target] if target else []
    for a in node.names:      # "from . import engine" / "from .ops import shape" import modules
        cand = ".".join(p for p in (target, a.name) if p)
        if (AUTOGRAD / (cand.replace(".", "/") + ".py")).exists() or (AUTOGRAD / cand.replace(".", "/")).is_dir():
            names.append(cand)
    return [n or "__init__" for n in names] or ["__init__"]


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(AUTOGRAD.rglob("*.py")):
        name = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= {d for d in _resolve(name, node) if d != name}
        graph[name] = deps
    return graph


def _cycle(graph) -> list[str] | None:
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_autograd_has_no_import_circle():
    cycle = _cycle(import_graph())
    assert cycle is None, "import circle in autograd/: " + " -> ".join(cycle)


def test_autograd_imports_never_go_up_a_floor():
    bad = []
    for mod, deps in import_graph().items():
        for d in deps:
            if _floor(d) > _floor(mod):
                bad.append(f"{mod} (floor {_floor(mod)}) imports {d} (floor {_floor(d)})")
    assert not bad, "imports up a floor:\n" + "\n".join(sorted(bad))


# Tensor internals: autograd's business only. nn/ and the app reach a tensor through its public API
# (.device, .version, .mark_modified(), .set_(), .requires_grad, ...).
TENSOR_INTERNALS = {"_backend", "_version", "_rg", "_hooks", "_retain", "_idx"}


def _private_uses(package: str) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                if node.attr in TENSOR_INTERNALS:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
                elif isinstance(node.value, ast.Name) and node.value.id == "backends" and node.attr.startswith("_"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} backends.{node.attr}")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("autograd.tensor", "backends")):
                found += [f"{path.relative_to(ROOT)}:{node.lineno} imports {a.name}" for a in node.names
                          if a.name.startswith("_")]
    return found


def test_nn_and_the_app_never_touch_tensor_or_backend_internals():
    bad = _private_uses("nn") + _private_uses("xpgrad")
    assert not bad, "use the public Tensor/backends API instead:\n" + "\n".join(bad)


def test_the_internals_rule_sees_a_violation(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "m.py").write_text("def f(t):\n    t._version += 1\n    return t._backend\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert len(_private_uses("pkg")) == 2


# Public contracts between packages: nn/ and the app see autograd and backends through public names only.
PACKAGES = ("autograd", "backends")
# Known exceptions, each with its reason: (file, what the rule reports after "file:line ").
PUBLIC_NAMES_EXEMPT: set = set()     # (file, name) pairs allowed to break the rule, each with its reason


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_module(dotted: str) -> bool:
    path = ROOT / dotted.replace(".", "/")
    return path.is_dir() or path.with_suffix(".py").exists()


def _foreign_private_uses(package: str) -> list[str]:
    """Imports of private names or modules of autograd/backends, and ``module._name`` attribute access."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = str(path.relative_to(ROOT))
        modules = set()     # local names bound to an autograd/backends module
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] not in PACKAGES:
                        continue
                    if any(_private(p) for p in a.name.split(".")):
                        found.append(f"{where}:{node.lineno} imports private module {a.name}")
                    modules.add(a.asname or a.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module \
                    and node.module.split(".")[0] in PACKAGES:
                if any(_private(p) for p in node.module.split(".")):
                    found.append(f"{where}:{node.lineno} imports from private module {node.module}")
                for a in node.names:
                    if _private(a.name):
                        found.append(f"{where}:{node.lineno} imports {node.module}.{a.name}")
                    elif _is_module(f"{node.module}.{a.name}"):
                        modules.add(a.asname or a.name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                root = node.value
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id in modules:
                    found.append(f"{where}:{node.lineno} {ast.unparse(node)}")
    return found


def _exempt(found: str) -> bool:
    where, _, what = found.partition(" ")
    return (where.split(":")[0], what) in PUBLIC_NAMES_EXEMPT


def test_nn_and_the_app_use_only_public_names_of_autograd_and_backends():
    bad = [f for f in _foreign_private_uses("nn") + _foreign_private_uses("xpgrad") if not _exempt(f)]
    assert not bad, "use autograd's/backends' public API (or give the helper a public home):\n" + "\n".join(bad)


def test_the_public_names_rule_sees_a_violation(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "m.py").write_text("import autograd as ag\n"
                              "from autograd.ops._util import const\n"
                              "from autograd.ops.loss import _reduce, mse_loss\n"
                              "import backends._impl\n"
                              "def f(t):\n"
                              "    return ag._make(t), ag.ops._util, ag.__name__, t._private_but_not_a_module\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = _foreign_private_uses("pkg")
    assert len(found) == 5, found
    assert not any(_exempt(f) for f in found)


# Citations a reader of the source cannot follow: the design document, its sections, the seed notes, issues.
OUTSIDE_CITATION = re.compile(r"\bDESIGN\b|§|\bshared/seeds\b|\bseeds/|\b[Ii]ssues? #?\d+\b")


def _outside_citations(package: str) -> list[str]:
    """``file:line text`` of every docstring or comment in ``package`` that matches :data:`OUTSIDE_CITATION`.
    Docstrings are the string statements (module, class, function and attribute docstrings); strings that are
    raised, printed or returned are not looked at."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        texts = [(node.lineno, node.value.value) for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                 and isinstance(node.value.value, str)]
        texts += [(tok.start[0], tok.string) for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                  if tok.type == tokenize.COMMENT]
        for line, text in texts:
            match = OUTSIDE_CITATION.search(text)
            if match:
                found.append(f"{path.relative_to(ROOT)}:{line} {match.group()!r}")
    return found


def test_docstrings_and_comments_cite_nothing_outside_the_repository():
    bad = [f for package in ("autograd", "backends", "nn", "xpgrad") for f in _outside_citations(package)]
    assert not bad, "say the reason itself instead of citing a document or issue:\n" + "\n".join(bad)


def test_the_citation_rule_sees_a_violation(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "m.py").write_text('"""In place (DESIGN \u00a73)."""\n'
                              "X = 1\n"
                              '"""As issue 15 measured."""\n'
                              "def f(seed):\n"
                              '    """Seeds the generator; see ../shared/seeds/notes.md."""\n'
                              "    y = 2  # the fix of Issue #7\n"
                              '    raise ValueError("DESIGN \u00a73: issue 15")  # a raised message: not looked at\n',
                              encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    found = _outside_citations("pkg")
    assert [f.split()[0] for f in found] == ["pkg/m.py:1", "pkg/m.py:3", "pkg/m.py:5", "pkg/m.py:6"], found
