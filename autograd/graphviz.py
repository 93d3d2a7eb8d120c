"""Graph view: the graph that produced a tensor as Graphviz DOT text, or rendered to a file.

    dot = ag.to_dot(loss, params=model)          # ops with the shapes/dtypes flowing between them
    ag.draw_graph(loss, "graph.svg", params=model)   # needs Graphviz's ``dot`` program

Ops are boxes, leaves are ellipses (parameters filled, named by ``params``; constants dashed), outputs are
double octagons. Each edge carries the shape and dtype of the tensor it stands for. The walk is iterative
and visits each node once, so deep or shared graphs are fine.
"""
from __future__ import annotations

import os
import shutil
import subprocess

from .tensor import Tensor

__all__ = ["to_dot", "draw_graph"]


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _desc(t: Tensor) -> str:
    return f"{tuple(t.shape)} {t.dtype}"


def _param_names(params) -> dict[int, str]:
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        params = dict(params.named_parameters())
    if not hasattr(params, "items"):
        raise TypeError(f"to_dot: params must be a mapping of names to tensors or a Module, got "
                        f"{type(params).__name__}")
    return {id(t): name for name, t in params.items()}


def to_dot(*roots: Tensor, params=None, title: str = "xpgrad") -> str:
    """Graphviz DOT text of the graph that produced ``roots``.

    Args:
        roots: output tensors (e.g. the loss).
        params: names for leaf tensors: a mapping ``{name: tensor}`` or a Module (its ``named_parameters()``).
        title: the graph's name.
    """
    if not roots or not all(isinstance(r, Tensor) for r in roots):
        raise TypeError(f"to_dot: expected Tensors, got {[type(r).__name__ for r in roots]}")
    names = _param_names(params)
    lines = [f'digraph "{_esc(title)}" {{', "  rankdir=BT;", '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=9];']
    seen: set[int] = set()

    def leaf(t: Tensor) -> str:
        key = f"t{id(t)}"
        if id(t) not in seen:
            seen.add(id(t))
            label = names.get(id(t), "parameter" if t.requires_grad else "constant") + "\n" + _desc(t)
            style = 'style=filled, fillcolor="#cfe2ff"' if t.requires_grad else 'style=dashed, color="#888888"'
            lines.append(f'  {key} [label="{_esc(label)}", shape=ellipse, {style}];')
        return key

    stack = []
    for i, r in enumerate(roots):
        out = f"out{i}"
        lines.append(f'  {out} [label="{_esc("output " + str(i) + chr(10) + _desc(r))}", shape=doubleoctagon];')
        src = f"f{id(r.creator)}" if r.creator is not None else leaf(r)
        lines.append(f'  {src} -> {out} [label="{_esc(_desc(r))}"];')
        if r.creator is not None:
            stack.append(r.creator)
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        label = type(fn).__name__
        if fn.inputs is None:
            label += "\n(inputs freed by backward; use retain_graph=True)"
        lines.append(f'  f{id(fn)} [label="{_esc(label)}", shape=box, style=rounded];')
        for k, t in enumerate(fn.inputs or ()):
            src = f"f{id(t.creator)}" if t.creator is not None else leaf(t)
            port = f" #{t._idx}" if t.creator is not None and t.creator.nout > 1 else ""
            lines.append(f'  {src} -> f{id(fn)} [label="{_esc(_desc(t) + port)}"];')
            if t.creator is not None:
                stack.append(t.creator)
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_graph(tensor, path: str, params=None, title: str = "xpgrad") -> str:
    """Render :func:`to_dot` of ``tensor`` (or a list of tensors) to ``path``; the format follows the suffix
    (``.svg``, ``.png``, ``.pdf``; ``.dot``/``.gv`` writes the text). Returns ``path``. Needs Graphviz's
    ``dot`` program for images."""
    roots = tuple(tensor) if isinstance(tensor, (list, tuple)) else (tensor,)
    text = to_dot(*roots, params=params, title=title)
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    if fmt in ("dot", "gv"):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path
    if fmt not in ("svg", "png", "pdf"):
        raise ValueError(f"draw_graph: unsupported file suffix {fmt!r} in {path!r}; use .svg, .png, .pdf or .dot")
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError("draw_graph: Graphviz's 'dot' program is not installed (Debian/Ubuntu: apt-get install "
                           "graphviz; macOS: brew install graphviz); ag.to_dot(tensor) gives the DOT text")
    done = subprocess.run([exe, f"-T{fmt}", "-o", path], input=text.encode(), capture_output=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"draw_graph: dot failed on {path!r}: {done.stderr.decode(errors='replace').strip()}")
    return path
