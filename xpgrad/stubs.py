"""Type stubs for the public surface that exists only at run time, written from the op records.

``autograd/methods.py`` gives Tensor its op methods and operators from the records (``autograd/spec.py``),
``autograd/ops`` exports their aliases in a loop and ``nn.functional`` takes its record-made functions with
``globals().update``: editors and type checkers see none of them. This module writes what they would see:

* ``autograd/tensor.pyi``: class Tensor, its own members (tensor.py) plus everything ``methods.table()`` installs;
* ``autograd/__init__.pyi``: every name in ``autograd.__all__`` and the lazy ``nn``/``optim``/``utils``/``save``/
  ``load`` aliases of its ``__getattr__``;
* ``nn/functional.pyi``: every name in ``nn.functional.__all__``.

Each function's signature is ``inspect.signature`` of the function it is bound to (through ``functools.wraps``
wrappers), its first parameter becoming ``self`` for a method; annotations naming anything but builtins, a few
``typing`` names and Tensor (or a class the stub imports) become ``Any``, defaults ``...``.

    python -m xpgrad.stubs            # write the stubs
    python -m xpgrad.stubs --check    # exit 1 if the stubs on disk are not what it would write
"""
from __future__ import annotations

import argparse
import ast
import inspect
import pathlib
import sys
import types

HEADER = ("# Generated from the op records (autograd/spec.py) and the modules by xpgrad/stubs.py; do not edit.\n"
          "# Regenerate after adding or changing an op: python -m xpgrad.stubs\n")
TYPING = ("from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence\n"
          "from typing import Any, Literal, Optional, Union\n")
_TYPING_NAMES = {"Callable", "Iterable", "Iterator", "Mapping", "Sequence", "Any", "Literal", "Optional", "Union"}
_BUILTIN_TYPES = {"int", "float", "bool", "str", "bytes", "complex", "object", "tuple", "list", "dict", "set",
                  "frozenset", "type", "slice"}
_OWN = ("autograd", "backends", "nn", "xpgrad")      # classes from elsewhere (NumPy's dtypes) are ``Any``
# class attributes whose value says nothing about their type get Any
# (``__slotnames__`` is a cache copyreg adds on the first copy or pickle of a Tensor: not part of the class)
_SKIP_CLASS_ATTRS = {"__dict__", "__weakref__", "__module__", "__doc__", "__qualname__", "__annotations__",
                     "__firstlineno__", "__static_attributes__", "__slotnames__"}


class _Names:
    """What an annotation may name in one stub: the typing names, builtins (qualified as ``_builtins.x`` where the
    stub defines the same name: ``Tensor.float``, ``autograd.float``) and the stub's own classes."""

    def __init__(self, classes=(), shadowed=()):
        self.classes = set(classes) | {"Tensor"}
        self.shadowed = set(shadowed)

    def annotation(self, ann) -> str | None:
        if ann is inspect.Parameter.empty:
            return None
        text = ann if isinstance(ann, str) else inspect.formatannotation(ann)
        try:
            tree = ast.parse(text, mode="eval")
            return ast.unparse(self._clean(tree.body))
        except (SyntaxError, ValueError):
            return "Any"

    def _clean(self, node):
        if isinstance(node, ast.Constant) and node.value is None:
            return node
        if isinstance(node, ast.Constant) and isinstance(node.value, str):        # a forward reference
            return self._clean(ast.parse(node.value, mode="eval").body)
        if isinstance(node, ast.Name):
            if node.id in _BUILTIN_TYPES:
                return ast.parse(f"_builtins.{node.id}" if node.id in self.shadowed else node.id, mode="eval").body
            if node.id in _TYPING_NAMES or node.id in self.classes:
                return node
            raise ValueError(node.id)
        if isinstance(node, ast.Attribute):                                         # typing.X, autograd.Tensor
            if node.attr in _TYPING_NAMES or node.attr in self.classes:
                return ast.Name(node.attr)
            raise ValueError(node.attr)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return ast.BinOp(self._clean(node.left), ast.BitOr(), self._clean(node.right))
        if isinstance(node, ast.Subscript):
            if isinstance(node.value, ast.Name) and node.value.id == "Literal":
                return node
            return ast.Subscript(self._clean(node.value), self._clean(node.slice))
        if isinstance(node, (ast.Tuple, ast.List)):
            return type(node)([self._clean(e) for e in node.elts])
        if isinstance(node, ast.Constant) and node.value is Ellipsis:
            return node
        raise ValueError(ast.dump(node))


def _signature(func) -> inspect.Signature | None:
    """``func``'s signature (through ``functools.wraps``), plus, for a public op, the NumPy keyword names it also
    takes (``axis=`` for ``dim``: the record's ``kwarg_aliases``) as keyword-only parameters."""
    try:
        sig = inspect.signature(func)           # follows __wrapped__ (functools.wraps)
    except (TypeError, ValueError):
        return None
    from autograd.spec import public_ops
    rec = next((r for r in public_ops().values() if r.func is func), None)
    if rec is None or not rec.kwarg_aliases:
        return sig
    params = list(sig.parameters.values())
    at = len(params) - (params and params[-1].kind == inspect.Parameter.VAR_KEYWORD)
    extra = [inspect.Parameter(alias, inspect.Parameter.KEYWORD_ONLY, default=None,
                               annotation=sig.parameters[name].annotation) for alias, name in rec.kwarg_aliases]
    return sig.replace(parameters=params[:at] + extra + params[at:])


def _params(sig: inspect.Signature, names: _Names, method: bool, dunder: bool = False) -> str:
    params = list(sig.parameters.values())
    P = inspect.Parameter
    if method:
        if params and params[0].kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD):
            first = params.pop(0)
            params.insert(0, P("self", first.kind))
        else:                                   # (*tensors): self is the first of them
            params.insert(0, P("self", P.POSITIONAL_ONLY if params and params[0].kind == P.POSITIONAL_ONLY
                               else P.POSITIONAL_OR_KEYWORD))
    if dunder:                                  # operators are called positionally: name-free (``__iadd__`` and
        params = [p.replace(kind=P.POSITIONAL_ONLY) if p.kind == P.POSITIONAL_OR_KEYWORD else p  # ``__add__`` agree)
                  for p in params]
    out, star = [], False
    for i, p in enumerate(params):
        if p.kind == P.KEYWORD_ONLY and not star:
            out.append("*")
            star = True
        ann = None if (method and i == 0) else names.annotation(p.annotation)
        prefix = {P.VAR_POSITIONAL: "*", P.VAR_KEYWORD: "**"}.get(p.kind, "")
        star = star or p.kind == P.VAR_POSITIONAL
        text = prefix + p.name + (f": {ann}" if ann else "")
        if p.default is not P.empty:
            text += " = ..." if ann else "=..."
        out.append(text)
        if p.kind == P.POSITIONAL_ONLY and (i + 1 == len(params) or params[i + 1].kind != P.POSITIONAL_ONLY):
            out.append("/")
    return ", ".join(out)


def _def(name: str, func, names: _Names, method: bool, indent: str = "") -> str:
    sig = _signature(func)
    if sig is None:
        return f"{indent}def {name}(self, *args: Any, **kwargs: Any) -> Any: ...\n" if method else \
            f"{indent}def {name}(*args: Any, **kwargs: Any) -> Any: ...\n"
    ret = "None" if name == "__init__" else (names.annotation(sig.return_annotation) or "Any")
    dunder = method and name.startswith("__") and name.endswith("__") and name != "__init__"
    return f"{indent}def {name}({_params(sig, names, method, dunder)}) -> {ret}: ...\n"


def _value_type(value) -> str:
    return type(value).__name__ if type(value) in (int, float, bool, str) else "Any"


# --- autograd/tensor.pyi ---------------------------------------------------------------------------------------

def _instance_attributes(cls) -> list[str]:
    """Names assigned as ``self.<name> = ...`` in the class's own source, in source order."""
    tree = ast.parse(inspect.getsource(cls))
    found = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
        for t in targets:
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self" \
                    and t.attr not in found:
                found.append(t.attr)
    return found


def _member(name: str, value, names: _Names, base=None, swapped=None) -> str:
    """One class member: property, method, or attribute. ``base``: the function an in-place method computes;
    ``swapped``: the function a reflected operator calls with its operands swapped."""
    ind = "    "
    if swapped is not None:
        sig = _signature(swapped)
        ret = (names.annotation(sig.return_annotation) if sig else None) or "Any"
        return f"{ind}def {name}(self, other, /) -> {ret}: ...\n"
    if isinstance(value, property):
        sig = _signature(value.fget)
        ret = (names.annotation(sig.return_annotation) if sig else None) or "Any"
        text = f"{ind}@property\n{ind}def {name}(self) -> {ret}: ...\n"
        if value.fset is not None:
            text += f"{ind}@{name}.setter\n{ind}def {name}(self, value: {ret}) -> None: ...\n"
        return text
    if isinstance(value, staticmethod):
        return f"{ind}@staticmethod\n" + _def(name, value.__func__, names, False, ind)
    if isinstance(value, classmethod):
        return f"{ind}@classmethod\n" + _def(name, value.__func__, names, True, ind)
    if base is not None:
        sig = _signature(base)
        if sig is not None:
            return f"{ind}def {name}({_params(sig, names, True)}) -> Tensor: ...\n"
    if callable(value):
        return _def(name, value, names, True, ind)
    return f"{ind}{name}: {_value_type(value)}\n"


def tensor_stub() -> str:
    from autograd import methods
    from autograd.spec import public_ops
    from autograd.tensor import Tensor
    table = methods.table()
    swapped = {name: rec.func for rec in public_ops().values() for name in rec.roperators}
    own = {k: v for k, v in vars(Tensor).items() if k not in table and k not in _SKIP_CLASS_ATTRS}
    names = _Names(shadowed=set(own) | set(table))
    lines = [HEADER, "import builtins as _builtins\n", TYPING, "\n\nclass Tensor:\n"]
    lines.append("    # tensor.py: attributes set on instances\n")
    for name in _instance_attributes(Tensor):
        if name not in own and name not in table:
            lines.append(f"    {name}: Any\n")
    lines.append("\n    # tensor.py: class attributes, properties and methods (source order)\n")
    for name, value in own.items():
        if name == "__hash__":
            lines.append("    def __hash__(self) -> _builtins.int: ...\n")
            continue
        text = _member(name, value, names)
        if name.startswith("__i") and "__" + name[3:] in table:   # ``x += y`` takes no ``alpha=`` as ``x + y`` can
            text = text.rstrip("\n") + "  # type: ignore[misc]\n"
        lines.append(text)
    lines.append("\n    # installed by autograd/methods.py from the op records and its DERIVED table (sorted)\n")
    for name in sorted(table):
        base = table.get(name[:-1]) if name.endswith("_") and name[:-1] in methods.INPLACE else None
        lines.append(_member(name, table[name], names, base, swapped.get(name)))
    return "".join(lines)


# --- module stubs ----------------------------------------------------------------------------------------------

def _module_stub(module, exported: list[str], imports: list[str] = (), extra: list[str] = ()) -> str:
    """A stub for ``module``: re-exports of its classes and submodules, ``def`` lines for its functions,
    ``name: Any`` for other values, in the order of ``exported``."""
    head, body, classes = [], [], set()
    for name in exported:
        value = getattr(module, name)
        if isinstance(value, type) and value.__module__.split(".")[0] in _OWN:     # not NumPy's dtypes
            home = sys.modules.get(value.__module__)
            if home is not None and getattr(home, value.__qualname__, None) is value:
                if value.__qualname__ == name:
                    head.append(f"from {value.__module__} import {name} as {name}\n")
                else:
                    head.append(f"from {value.__module__} import {value.__qualname__} as _{name}\n")
                    body.append(f"{name} = _{name}\n")
                classes.add(name)
                continue
    names = _Names(classes, shadowed=set(exported))
    for name in exported:
        if name in classes:
            continue
        value = getattr(module, name)
        if isinstance(value, types.ModuleType):
            parent, _, child = value.__name__.rpartition(".")
            head.append(f"from {parent} import {child} as {name}\n" if child == name and parent
                        else f"import {value.__name__} as {name}\n" if value.__name__ == name
                        else f"from {parent} import {child} as _{name}\n")
            if child != name and value.__name__ != name:
                body.append(f"{name} = _{name}\n")
        elif callable(value) and not isinstance(value, type) and _signature(value) is not None:
            body.append(_def(name, value, names, False))
        else:
            body.append(f"{name}: {_value_type(value)}\n")
    return "".join([HEADER, "import builtins as _builtins\n", TYPING, *imports, "\n", *sorted(set(head)), "\n",
                    *body, *extra])


def autograd_stub() -> str:
    import autograd
    tree = ast.parse(pathlib.Path(autograd.__file__).read_text(encoding="utf-8"))
    submodules = [a.name for node in tree.body if isinstance(node, ast.ImportFrom) and node.level == 1
                  and node.module is None for a in node.names]          # ``from . import ops``
    extras = [n for n, v in vars(autograd).items() if not n.startswith("_") and n not in autograd.__all__
              and not isinstance(v, types.ModuleType)]                    # inference_mode, public, ...
    exported = list(autograd.__all__) + extras + [m for m in submodules if m not in autograd.__all__]
    lazy = ["\n# resolved on first use by autograd.__getattr__ (the one-line port, ``import autograd as torch``)\n"]
    for name, (module, attr) in autograd.TORCH_ALIASES.items():
        if attr is not None:
            lazy.append(f"from {module} import {attr} as {name}\n" if attr == name else
                        f"from {module} import {attr} as _{name}\n{name} = _{name}\n")
        elif module == name:
            lazy.append(f"import {module} as {name}\n")
        else:
            parent, _, child = module.rpartition(".")
            lazy.append(f"from {parent} import {child} as {name}\n" if child == name else
                        f"from {parent} import {child} as _{name}\n{name} = _{name}\n")
    return _module_stub(autograd, exported, extra=lazy)


def functional_stub() -> str:
    import nn.functional as F
    return _module_stub(F, list(F.__all__), imports=["from autograd.tensor import Tensor\n"])


def stubs() -> dict[pathlib.Path, str]:
    """``{path: text}`` of every stub this module writes."""
    import importlib
    path = {m: pathlib.Path(importlib.import_module(m).__file__).with_suffix(".pyi")   # ag.tensor is a function
            for m in ("autograd.tensor", "autograd", "nn.functional")}
    return {path["autograd.tensor"]: tensor_stub(), path["autograd"]: autograd_stub(),
            path["nn.functional"]: functional_stub()}


def stale(wanted: dict[pathlib.Path, str] | None = None) -> list[pathlib.Path]:
    """The stubs whose file is missing or differs from what would be written."""
    wanted = stubs() if wanted is None else wanted
    return [p for p, text in wanted.items() if not p.exists() or p.read_text(encoding="utf-8") != text]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xpgrad.stubs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a stub on disk is not current")
    args = parser.parse_args(argv)
    wanted = stubs()
    old = stale(wanted)
    if args.check:
        if old:
            print(f"stale type stubs: {', '.join(str(p) for p in old)}; regenerate with: python -m xpgrad.stubs",
                  file=sys.stderr)
            return 1
        return 0
    for path in old:
        path.write_text(wanted[path], encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
