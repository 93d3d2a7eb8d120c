"""Graph view: the DOT text's structure, names of parameters, freed graphs, rendering and its errors."""
from __future__ import annotations

import re
import shutil

import pytest

import autograd as ag
import nn


def _edges(dot: str) -> list[tuple[str, str, str]]:
    return re.findall(r'^\s*(\w+) -> (\w+) \[label="([^"]*)"\];$', dot, re.M)


def _labels(dot: str) -> dict[str, str]:
    return dict(re.findall(r'^\s*(\w+) \[label="([^"]*)"', dot, re.M))


def test_dot_has_one_node_per_op_and_leaf_and_shapes_on_edges():
    x = ag.randn(4, 3)
    w = ag.randn(3, 2, requires_grad=True)
    b = ag.randn(2, requires_grad=True)
    y = ((x @ w + b).relu()).sum()
    dot = ag.to_dot(y, params={"weight": w, "bias": b})
    assert dot.startswith('digraph "xpgrad" {') and dot.rstrip().endswith("}")
    labels = _labels(dot)
    ops = sorted(v.split("\\n")[0] for k, v in labels.items() if k.startswith("f"))
    assert len(ops) == 4                                   # matmul, add, relu, sum: one box each
    leaves = {v.split("\\n")[0] for k, v in labels.items() if k.startswith("t")}
    assert leaves == {"weight", "bias", "constant"}
    edges = _edges(dot)
    assert len(edges) == 7                                 # 3 leaves in, 3 op to op, 1 to the output
    assert any(lbl == "(4, 2) float32" for _, _, lbl in edges)
    assert any(dst == "out0" and lbl == "() float32" for _, dst, lbl in edges)


def test_shared_subgraph_is_drawn_once_and_module_names_are_used():
    ag.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    h = model(ag.randn(5, 3))
    loss = (h * h + h).mean()                              # h used three times
    dot = ag.to_dot(loss, params=model)
    labels = _labels(dot)
    names = {v.split("\\n")[0] for v in labels.values()}
    assert {"0.weight", "0.bias", "2.weight", "2.bias"} <= names
    assert len(set(_edges(dot))) == len(_edges(dot)) - 1   # only h -> mul appears twice (both operands)
    node_ids = re.findall(r"^\s*(\w+) \[label", dot, re.M)
    assert len(node_ids) == len(set(node_ids))


def test_freed_graph_says_so_and_multi_output_ports():
    x = ag.randn(6, requires_grad=True)
    a, b = ag.chunk(x, 2)
    y = (a * b).sum()
    assert "#0" in ag.to_dot(y) and "#1" in ag.to_dot(y)
    y.backward()
    assert "inputs freed by backward" in ag.to_dot(y)


def test_leaf_root_and_bad_arguments():
    x = ag.randn(2, requires_grad=True)
    assert "parameter" in ag.to_dot(x)
    with pytest.raises(TypeError, match="to_dot: expected Tensors"):
        ag.to_dot([x])
    with pytest.raises(TypeError, match="to_dot: params must be"):
        ag.to_dot(x, params=[x])
    with pytest.raises(ValueError, match="draw_graph: unsupported file suffix 'txt'"):
        ag.draw_graph(x, "graph.txt")


def test_draw_graph_writes_dot_text_and_explains_a_missing_graphviz(tmp_path, monkeypatch):
    y = (ag.randn(3, requires_grad=True) * 2).sum()
    path = ag.draw_graph(y, str(tmp_path / "g.dot"))
    assert open(path).read() == ag.to_dot(y)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        ag.draw_graph(y, str(tmp_path / "g.svg"))
    assert not (tmp_path / "g.svg").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_draw_graph_renders_svg(tmp_path):
    ag.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    loss = nn.CrossEntropyLoss()(model(ag.randn(8, 3)), ag.tensor([0, 1] * 4))
    path = ag.draw_graph(loss, str(tmp_path / "g.svg"), params=model)
    svg = open(path).read()
    assert "<svg" in svg and "0.weight" in svg
