"""Indexing (gather, scatter, index_select, masked ops) and sorting (sort, topk, kthvalue, median, mode) against
PyTorch where it is installed: values, indices, first and second derivatives for a table of cases, repeated
indices included; then, without torch, the errors that bad arguments raise, the Tensor-method and in-place forms.
The generated tests in tests/test_ops.py check the same ops against NumPy on hypothesis-drawn inputs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

import autograd as ag
from autograd.errors import AxisError, GraphError

NAN = float("nan")


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _perm(n, seed=0):
    """n distinct values (no ties), as float64."""
    return np.random.default_rng(seed).permutation(n).astype(np.float64) * 0.5 - 1.0


X34 = _rand(3, 4)
X234 = _rand(2, 3, 4, seed=1)
TIES = np.array([3., 1., 3., 1., 2., 3., 1.])
WITH_NAN = np.array([3., 1., 3., NAN, 1., 2., NAN, 3.])
ROWS_NAN = np.array([[2., NAN, 1., 0.5], [4., 3., 2., 1.], [NAN, NAN, 1., 0.]])
INTS = np.array([[2., 2., 1., 1., 5.], [0., 9., 9., 0., 9.], [7., 7., 7., 3., 3.]])


@dataclass
class Case:
    id: str
    floats: list                     # float64 arrays, made leaves that require grad
    call: Callable                   # call(lib, *leaves) with lib = autograd or torch
    indices: bool = True             # compare the indices of a (values, indices) result, and the gradients
    grads: bool = True               # compare gradients (PyTorch cannot differentiate a src larger than the index)
    second: bool = True              # compare second derivatives too

    def __repr__(self):
        return self.id


def t(lib, data):
    """An index or mask tensor (int64 / bool) in ``lib``."""
    return lib.tensor(data)


CASES = [
    # gather: repeated indices (the gradient accumulates), an index block smaller than the input, every dim
    Case("gather-dim1-repeats", [X34], lambda m, x: m.gather(x, 1, t(m, [[0, 0, 3], [1, 1, 1], [2, 0, 2]]))),
    Case("gather-dim0-smaller", [X34], lambda m, x: m.gather(x, 0, t(m, [[2, 2], [0, 2]]))),
    Case("gather-dim-1-longer", [X34], lambda m, x: m.gather(x, -1, t(m, [[3, 3, 3, 3, 0, 0]] * 3))),
    Case("gather-3d", [X234], lambda m, x: m.gather(x, 1, t(m, [[[0, 2, 1, 0]], [[2, 2, 2, 2]]]))),
    Case("gather-empty", [X34], lambda m, x: m.gather(x, 1, m.zeros((3, 0), dtype=m.int64))),
    Case("gather-0d", [np.array(1.5)], lambda m, x: m.gather(x, 0, t(m, 0))),
    Case("gather-method", [X34], lambda m, x: x.gather(0, t(m, [[1, 0, 2, 2]]))),
    # take_along_dim: flattened, broadcast, negative indices with a dim
    Case("take_along_dim-none", [X34], lambda m, x: m.take_along_dim(x, t(m, [[0, 11, 5, 5]]))),
    Case("take_along_dim-bcast", [X34], lambda m, x: m.take_along_dim(x, t(m, [[0], [3], [3]]), 1)),
    Case("take_along_dim-bcast-input", [X34[:1]], lambda m, x: m.take_along_dim(x, t(m, [[0, 0, 0, 0]] * 2), 0)),
    Case("take_along_dim-negative", [X34], lambda m, x: m.take_along_dim(x, t(m, [[-1, 0], [-4, -4], [2, -2]]), 1)),
    Case("take_along_dim-argsort", [X34], lambda m, x: m.take_along_dim(x, m.argsort(x, dim=1), dim=1)),
    # scatter: unique places (src gets gather(grad), overwritten input places get 0), a number, a larger src
    Case("scatter-src", [X34, _rand(3, 2, seed=2)],
         lambda m, x, s: m.scatter(x, 1, t(m, [[0, 3], [2, 1], [1, 0]]), s)),
    Case("scatter-src-larger", [X34, _rand(4, 5, seed=3)],
         lambda m, x, s: m.scatter(x, 0, t(m, [[2, 0, 1, 1], [0, 2, 2, 0]]), s), grads=False),
    Case("scatter-value", [X34], lambda m, x: m.scatter(x, 1, t(m, [[0], [3], [2]]), -7.5)),
    Case("scatter-value-kw", [X34], lambda m, x: x.scatter(0, t(m, [[1, 1, 0, 2]]), value=2.0)),
    Case("scatter-repeats", [X34, _rand(3, 2, seed=4)],       # every src element gets its gather, as in PyTorch
         lambda m, x, s: m.scatter(x, 1, t(m, [[1, 1], [2, 2], [0, 3]]), s)),
    # scatter_add: repeated places accumulate, src larger than the index
    Case("scatter_add-repeats", [X34, _rand(3, 3, seed=5)],
         lambda m, x, s: m.scatter_add(x, 1, t(m, [[0, 0, 0], [3, 1, 3], [2, 2, 2]]), s)),
    Case("scatter_add-dim0-larger-src", [X34, _rand(3, 4, seed=6)],
         lambda m, x, s: m.scatter_add(x, 0, t(m, [[2, 2, 2, 2], [2, 0, 1, 2]]), s), grads=False),
    Case("scatter_add-method", [X234, _rand(2, 2, 4, seed=7)],
         lambda m, x, s: x.scatter_add(-2, t(m, [[[0, 0, 2, 1], [0, 0, 0, 0]], [[1, 2, 1, 2], [2, 2, 2, 2]]]), s)),
    # index_select: repeated indices, a 0-d index keeps the dim, dims
    Case("index_select-repeats", [X34], lambda m, x: m.index_select(x, 1, t(m, [3, 0, 3, 3]))),
    Case("index_select-dim0", [X234], lambda m, x: m.index_select(x, 0, t(m, [1, 1, 0]))),
    Case("index_select-0d-index", [X34], lambda m, x: m.index_select(x, -1, t(m, 2))),
    Case("index_select-empty", [X34], lambda m, x: m.index_select(x, 0, m.zeros(0, dtype=m.int64))),
    Case("index_select-method", [X234], lambda m, x: x.index_select(2, t(m, [0, 3, 0]))),
    # index_add: repeated indices accumulate, alpha
    Case("index_add-repeats", [X34, _rand(3, 4, seed=8)], lambda m, x, s: m.index_add(x, 0, t(m, [2, 0, 2]), s)),
    Case("index_add-alpha", [X34, _rand(3, 2, seed=9)],
         lambda m, x, s: m.index_add(x, 1, t(m, [1, 1]), s, alpha=-2.5)),
    Case("index_add-method", [X234, _rand(2, 3, 3, seed=10)],
         lambda m, x, s: x.index_add(-1, t(m, [3, 0, 3]), s, alpha=2)),
    # masked_fill / masked_select: broadcast masks, a 0-d tensor value that gets the gradient
    Case("masked_fill-number", [X34], lambda m, x: m.masked_fill(x, x > 0, -1.0)),
    Case("masked_fill-bcast-mask", [X34], lambda m, x: m.masked_fill(x, t(m, [True, False, False, True]), 3.0)),
    Case("masked_fill-bcast-input", [X34[0]], lambda m, x: x.masked_fill(t(m, [[True] * 4, [False, True] * 2]), 0.0)),
    Case("masked_fill-tensor-value", [X34, np.array(0.25)], lambda m, x, v: m.masked_fill(x, x < 0, v)),
    Case("masked_select", [X34], lambda m, x: m.masked_select(x, x > 0.2)),
    Case("masked_select-bcast", [X34[:, :1]], lambda m, x: x.masked_select(t(m, [[True, False, True]]))),
    # sort / argsort: both directions, ties (stable order), nan (largest), dims, 0-d
    Case("sort", [X234], lambda m, x: m.sort(x)),
    Case("sort-dim0-desc", [X234], lambda m, x: m.sort(x, 0, descending=True)),
    Case("sort-ties", [TIES], lambda m, x: m.sort(x, stable=True)),
    Case("sort-ties-desc", [TIES], lambda m, x: m.sort(x, descending=True, stable=True)),
    Case("sort-nan", [WITH_NAN], lambda m, x: m.sort(x, stable=True)),
    Case("sort-nan-desc", [WITH_NAN], lambda m, x: x.sort(descending=True, stable=True)),
    Case("sort-rows-nan", [ROWS_NAN], lambda m, x: x.sort(dim=0, stable=True)),
    Case("sort-0d", [np.array(2.0)], lambda m, x: m.sort(x)),
    Case("argsort-values", [X34], lambda m, x: m.gather(x, 1, m.argsort(x, 1, descending=True))),
    # topk: distinct values (indices compared), ties (values only: PyTorch's choice is implementation-defined)
    Case("topk", [_perm(7)], lambda m, x: m.topk(x, 3)),
    Case("topk-smallest-dim0", [X234], lambda m, x: m.topk(x, 2, dim=0, largest=False)),
    Case("topk-k0", [X34], lambda m, x: m.topk(x, 0)),
    Case("topk-method", [X234], lambda m, x: x.topk(2, 1)),
    Case("topk-ties", [WITH_NAN], lambda m, x: m.topk(x, 5), indices=False),
    # kthvalue
    Case("kthvalue", [_perm(6, seed=3)], lambda m, x: m.kthvalue(x, 4)),
    Case("kthvalue-dim0-keepdim", [X234], lambda m, x: m.kthvalue(x, 2, 0, keepdim=True)),
    Case("kthvalue-ties", [TIES], lambda m, x: m.kthvalue(x, 5), indices=False),
    Case("kthvalue-method", [X34], lambda m, x: x.kthvalue(3, dim=1)),
    # median / nanmedian: lower median, ties share the gradient without dim, nan
    Case("median-all", [X234], lambda m, x: m.median(x)),
    Case("median-all-ties", [TIES], lambda m, x: m.median(x)),
    Case("median-all-even", [np.array([4., 1., 2., 2., 3., 2.])], lambda m, x: x.median()),
    Case("median-all-nan", [WITH_NAN], lambda m, x: m.median(x)),
    Case("median-dim", [X234], lambda m, x: m.median(x, 1)),
    Case("median-dim-even-keepdim", [X34], lambda m, x: m.median(x, -1, keepdim=True)),
    Case("median-dim-nan", [ROWS_NAN], lambda m, x: m.median(x, 1)),
    Case("median-0d", [np.array(3.0)], lambda m, x: m.median(x, 0)),
    Case("nanmedian-all", [WITH_NAN], lambda m, x: m.nanmedian(x)),
    Case("nanmedian-dim", [ROWS_NAN], lambda m, x: x.nanmedian(1)),
    Case("nanmedian-all-nan-row", [np.array([[NAN, NAN], [1., NAN]])], lambda m, x: m.nanmedian(x, 1)),
    # mode: the smallest most frequent value, the index of its last occurrence (rows of <= 16 elements)
    Case("mode", [TIES], lambda m, x: m.mode(x)),
    Case("mode-rows", [INTS], lambda m, x: m.mode(x, 1)),
    Case("mode-dim0-keepdim", [INTS.T.copy()], lambda m, x: x.mode(0, keepdim=True)),
    Case("mode-distinct", [X234], lambda m, x: m.mode(x, 1)),
    Case("mode-0d", [np.array(1.0)], lambda m, x: m.mode(x)),
]


def _grad(lib, torch):
    return torch.autograd.grad if lib is torch else ag.grad


def _run(lib, case, torch):
    """Values, indices, gradients and second derivatives of one case in ``lib``, as NumPy arrays."""
    leaves = [lib.tensor(a.copy(), requires_grad=True) for a in case.floats]
    out = case.call(lib, *leaves)
    values, indices = (out[0], out[1]) if isinstance(out, tuple) else (out, None)
    res = {"values": values.detach().numpy(), "indices": None if indices is None else indices.numpy()}
    if indices is not None:
        res["indices_dtype"] = str(indices.dtype).replace("torch.", "")
        res["indices_grad"] = indices.requires_grad
    if not (values.requires_grad and case.grads and case.indices):
        return res
    grad = _grad(lib, torch)
    g = lib.tensor(_rand(*values.shape, seed=11), requires_grad=True)
    gx = grad((values * g).sum(), leaves, create_graph=True, allow_unused=True)
    res["grads"] = [np.zeros(a.shape) if v is None else v.detach().numpy() for v, a in zip(gx, case.floats)]
    if case.second:
        used = [(v, a) for v, a in zip(gx, case.floats) if v is not None and v.requires_grad]
        if used:
            s = sum((v * lib.tensor(_rand(*a.shape, seed=12))).sum() for v, a in used)
            gg = grad(s, [g] + leaves, allow_unused=True)
            res["second"] = [np.zeros(tuple(w.shape)) if v is None else v.numpy() for v, w in zip(gg, [g] + leaves)]
    return res


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_against_torch(case, torch):
    ours, theirs = _run(ag, case, torch), _run(torch, case, torch)
    assert ours["values"].shape == theirs["values"].shape, case.id
    np.testing.assert_allclose(ours["values"], theirs["values"], rtol=1e-12, atol=1e-12, err_msg=case.id)
    assert ours["values"].dtype == theirs["values"].dtype, case.id
    if theirs["indices"] is not None:
        assert ours["indices_dtype"] == theirs["indices_dtype"] == "int64"
        assert not ours["indices_grad"]
        assert ours["indices"].shape == theirs["indices"].shape
        if case.indices:
            np.testing.assert_array_equal(ours["indices"], theirs["indices"], err_msg=case.id)
    assert ("grads" in ours) == ("grads" in theirs), case.id
    for a, b in zip(ours.get("grads", []), theirs.get("grads", [])):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=f"{case.id}: gradient")
    assert ("second" in ours) == ("second" in theirs), case.id
    for a, b in zip(ours.get("second", []), theirs.get("second", [])):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=f"{case.id}: second derivative")


def test_the_comparison_sees_a_wrong_gradient(torch, monkeypatch):
    """The table fails when a backward is wrong: gather's gradient without its repeats accumulated."""
    from autograd.ops import indexing

    def overwrite(self, x, src):
        out = x.copy()
        out[indexing._grid(self.xp, self.index, self.dim)] = src      # last write wins, repeats lost
        return out
    monkeypatch.setattr(indexing.ScatterAdd, "forward", overwrite)
    with pytest.raises(AssertionError, match="gradient"):
        test_against_torch(CASES[0], torch)


def test_ties_pick_the_lowest_index(torch):
    """Where PyTorch's choice among ties is implementation-defined, ours is the stable one, a valid one, and the
    values' gradient goes to it."""
    x = ag.tensor(WITH_NAN, requires_grad=True)
    top = ag.topk(x, 5)
    np.testing.assert_array_equal(top.indices.numpy(), [3, 6, 0, 2, 7])
    top.values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1, 0, 1, 1, 0, 0, 1, 1])
    y = ag.tensor(TIES, requires_grad=True)
    k = ag.kthvalue(y, 5)
    assert k.indices.item() == 0 and TIES[k.indices.item()] == k.values.item()
    k.values.backward()
    np.testing.assert_array_equal(y.grad.numpy(), [1, 0, 0, 0, 0, 0, 0])
    tt = torch.topk(torch.tensor(WITH_NAN), 5)
    np.testing.assert_array_equal(WITH_NAN[tt.indices.numpy()], WITH_NAN[top.indices.numpy()])


def test_src_larger_than_the_index_gets_zero_gradient_outside_it():
    """PyTorch takes such a src forward but fails in backward; here the part outside the index block gets 0."""
    x, s = ag.tensor(X34, requires_grad=True), ag.tensor(_rand(3, 5), requires_grad=True)
    idx = ag.tensor([[2, 0, 1, 1], [0, 2, 2, 0]])
    for op in (ag.scatter, ag.scatter_add):
        s.grad = None
        g = _rand(3, 4, seed=1)
        (op(x, 0, idx, s) * ag.tensor(g)).sum().backward()
        expect = np.zeros((3, 5))
        expect[:2, :4] = np.take_along_axis(g, idx.numpy(), 0)
        np.testing.assert_array_equal(s.grad.numpy(), expect)
    assert ag.gradgradcheck(lambda a, b: ag.scatter_add(a, 0, idx, b), [x, s])


def test_scatter_repeated_places_last_write_wins(torch):
    """NumPy's assignment keeps the last write to a repeated place, as PyTorch's CPU kernel does."""
    x, src, idx = np.zeros((2, 4)), _rand(2, 3), [[1, 1, 1], [0, 3, 0]]
    ours = ag.scatter(ag.tensor(x), 1, ag.tensor(idx), ag.tensor(src))
    theirs = torch.tensor(x).scatter(1, torch.tensor(idx), torch.tensor(src))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_mode_of_random_short_rows(torch):
    """Short rows, many ties: PyTorch's CPU mode gives the smallest most frequent value and its last index."""
    rng = np.random.default_rng(5)
    for n in (1, 2, 5, 9, 16):
        x = rng.integers(0, 4, size=(20, n)).astype(np.float64)
        ours, theirs = ag.mode(ag.tensor(x), 1), torch.mode(torch.tensor(x), 1)
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())


def test_sort_of_integers_and_bools(torch):
    for data in ([3, 1, 2, 1, 3], [True, False, True]):
        for desc in (False, True):
            ours, theirs = ag.sort(ag.tensor(data), descending=desc), torch.sort(torch.tensor(data), descending=desc,
                                                                                 stable=True)
            np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
            np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
            assert ours.values.dtype == np.asarray(data).dtype


def test_median_of_empty_is_nan(torch):
    assert np.isnan(ag.median(ag.zeros(0)).item()) and np.isnan(torch.median(torch.zeros(0)).item())
    assert ag.median(ag.zeros(0, 3), 1).values.shape == tuple(torch.median(torch.zeros(0, 3), 1).values.shape)


# --- without torch ------------------------------------------------------------------------------------------------
def _x():
    return ag.tensor(X34)


BAD = [
    # (id, call, exception, message pattern): every message names the op
    ("gather-dim", lambda: ag.gather(_x(), 2, ag.tensor([[0]])), AxisError, r"gather: dim 2 is out of range"),
    ("gather-dim-type", lambda: ag.gather(_x(), 1.0, ag.tensor([[0]])), TypeError, r"gather: dim must be an int"),
    ("gather-out-of-range", lambda: ag.gather(_x(), 1, ag.tensor([[0, 4]])), IndexError,
     r"gather: index 4 is out of bounds for dimension 1 with size 4"),
    ("gather-negative", lambda: ag.gather(_x(), 1, ag.tensor([[-1]])), IndexError, r"gather: index -1 is out"),
    ("gather-float-index", lambda: ag.gather(_x(), 1, ag.tensor([[0.0]])), TypeError,
     r"gather: expected an integer \(int64\) index, got dtype float"),
    ("gather-bool-index", lambda: ag.gather(_x(), 1, ag.tensor([[True]])), TypeError, r"gather: .*dtype bool"),
    ("gather-rank", lambda: ag.gather(_x(), 1, ag.tensor([0, 1])), ValueError,
     r"gather: index must have as many dimensions as the input"),
    ("gather-larger", lambda: ag.gather(_x(), 1, ag.zeros(4, 1, dtype="int64")), ValueError,
     r"gather: index shape \(4, 1\) is larger than input shape \(3, 4\) at dimension 0"),
    ("gather-not-tensor", lambda: ag.gather(X34, 1, [[0]]), TypeError, r"gather: input must be a Tensor"),
    ("take_along_dim-out-of-range", lambda: ag.take_along_dim(_x(), ag.tensor([[4]]), 1), IndexError,
     r"take_along_dim: index 4 is out of bounds"),
    ("take_along_dim-none-negative", lambda: ag.take_along_dim(_x(), ag.tensor([-1])), IndexError,
     r"take_along_dim: index -1"),
    ("take_along_dim-rank", lambda: ag.take_along_dim(_x(), ag.tensor([0]), 1), ValueError,
     r"take_along_dim: input and indices must have the same number of dimensions"),
    ("take_along_dim-bcast", lambda: ag.take_along_dim(_x(), ag.zeros(2, 1, dtype="int64"), 1), ValueError,
     r"take_along_dim: input shape .* and indices shape .* do not broadcast"),
    ("take_along_dim-float", lambda: ag.take_along_dim(_x(), ag.tensor([[0.5]]), 1), TypeError,
     r"take_along_dim: expected an integer"),
    ("scatter-src-smaller", lambda: ag.scatter(_x(), 1, ag.tensor([[0, 1]]), ag.ones(1, 1, dtype="float64")),
     ValueError, r"scatter: index shape \(1, 2\) must be no larger than src shape \(1, 1\)"),
    ("scatter-dtype", lambda: ag.scatter(_x(), 1, ag.tensor([[0]]), ag.ones(1, 1)), TypeError,
     r"scatter: expected src of the input's dtype float64, got float32"),
    ("scatter-both", lambda: ag.scatter(_x(), 1, ag.tensor([[0]]), 1.0, value=2.0), TypeError, r"scatter: give src"),
    ("scatter-none", lambda: ag.scatter(_x(), 1, ag.tensor([[0]])), TypeError, r"scatter: give src"),
    ("scatter-src-type", lambda: ag.scatter(_x(), 1, ag.tensor([[0]]), "a"), TypeError, r"scatter: src must be"),
    ("scatter-range", lambda: ag.scatter(_x(), 0, ag.tensor([[3]]), 1.0), IndexError,
     r"scatter: index 3 is out of bounds for dimension 0 with size 3"),
    ("scatter-dim", lambda: ag.scatter(_x(), -3, ag.tensor([[0]]), 1.0), AxisError, r"scatter: dim -3"),
    ("scatter_add-number", lambda: ag.scatter_add(_x(), 1, ag.tensor([[0]]), 1.0), TypeError,
     r"scatter_add: src must be a Tensor"),
    ("scatter_add-range", lambda: ag.scatter_add(_x(), 1, ag.tensor([[5]]), _x()), IndexError,
     r"scatter_add: index 5 is out of bounds"),
    ("scatter_add-float-index", lambda: ag.scatter_add(_x(), 1, np.zeros((1, 1)), _x()), TypeError,
     r"scatter_add: expected an integer"),
    ("scatter_add-larger",
     lambda: ag.scatter_add(_x(), 1, ag.zeros(4, 1, dtype="int64"), ag.zeros(4, 1, dtype="float64")), ValueError, r"scatter_add: index shape \(4, 1\) is larger than input shape"),
    ("index_select-2d", lambda: ag.index_select(_x(), 0, ag.tensor([[0]])), IndexError,
     r"index_select: index must be a vector"),
    ("index_select-range", lambda: ag.index_select(_x(), 0, ag.tensor([0, 3])), IndexError,
     r"index_select: index 3 is out of bounds for dimension 0 with size 3"),
    ("index_select-negative", lambda: ag.index_select(_x(), 1, [-1]), IndexError, r"index_select: index -1"),
    ("index_select-float", lambda: ag.index_select(_x(), 0, [0.0]), TypeError, r"index_select: expected an integer"),
    ("index_select-dim", lambda: ag.index_select(_x(), 2, [0]), AxisError, r"index_select: dim 2"),
    ("index_add-shape", lambda: ag.index_add(_x(), 0, [0, 0], ag.ones(2, 3, dtype="float64")), ValueError,
     r"index_add: source shape \(2, 3\) must be the input shape \(3, 4\) with dimension 0 of the index's length 2"),
    ("index_add-range", lambda: ag.index_add(_x(), 0, [3], ag.ones(1, 4, dtype="float64")), IndexError,
     r"index_add: index 3 is out of bounds"),
    ("index_add-dtype", lambda: ag.index_add(_x(), 0, [0], ag.ones(1, 4)), TypeError, r"index_add: expected src"),
    ("index_add-alpha", lambda: ag.index_add(ag.zeros(3, dtype="int64"), 0, [0], ag.ones(1, dtype="int64"),
                                             alpha=0.5), TypeError, r"index_add: alpha must be"),
    ("masked_fill-mask-dtype", lambda: ag.masked_fill(_x(), ag.ones(3, 4, dtype="uint8"), 0.0), TypeError,
     r"masked_fill: mask must be a bool tensor, got dtype uint8"),
    ("masked_fill-mask-shape", lambda: ag.masked_fill(_x(), ag.tensor([True, False]), 0.0), ValueError,
     r"masked_fill: input shape \(3, 4\) and mask shape \(2,\) do not broadcast"),
    ("masked_fill-value-1d", lambda: ag.masked_fill(_x(), _x() > 0, ag.ones(1)), ValueError,
     r"masked_fill: value must be a number or a 0-d tensor"),
    ("masked_fill-value-type", lambda: ag.masked_fill(_x(), _x() > 0, "x"), TypeError, r"masked_fill: value must"),
    ("masked_select-mask-dtype", lambda: ag.masked_select(_x(), _x().array), TypeError,
     r"masked_select: mask must be a bool tensor"),
    ("masked_select-shape", lambda: ag.masked_select(_x(), ag.ones(2, 4, dtype="bool")), ValueError,
     r"masked_select: input shape \(3, 4\) and mask shape \(2, 4\) do not broadcast"),
    ("sort-dim", lambda: ag.sort(_x(), 2), AxisError, r"sort: dim 2 is out of range"),
    ("sort-dim-type", lambda: ag.sort(_x(), None), TypeError, r"sort: dim must be an int"),
    ("argsort-dim", lambda: ag.argsort(_x(), -3), AxisError, r"argsort: dim -3"),
    ("topk-k", lambda: ag.topk(_x(), 5), IndexError, r"topk: k = 5 is out of range for dimension 1 of size 4"),
    ("topk-k-negative", lambda: ag.topk(_x(), -1), IndexError, r"topk: k = -1"),
    ("topk-k-type", lambda: ag.topk(_x(), 1.0), TypeError, r"topk: k must be an int"),
    ("topk-dim", lambda: ag.topk(_x(), 1, 2), AxisError, r"topk: dim 2"),
    ("kthvalue-k0", lambda: ag.kthvalue(_x(), 0), IndexError, r"kthvalue: k = 0 is out of range"),
    ("kthvalue-k-large", lambda: ag.kthvalue(_x(), 4, 0), IndexError, r"kthvalue: k = 4 .* dimension 0 of size 3"),
    ("median-dim", lambda: ag.median(_x(), 5), AxisError, r"median: dim 5"),
    ("median-empty-dim", lambda: ag.median(ag.zeros(0, 3), 0), IndexError,
     r"median: expected reduction dim 0 to have non-zero size"),
    ("median-keepdim-no-dim", lambda: ag.median(_x(), keepdim=True), TypeError, r"median: keepdim=True needs a dim"),
    ("nanmedian-dim", lambda: ag.nanmedian(_x(), -3), AxisError, r"nanmedian: dim -3"),
    ("mode-empty", lambda: ag.mode(ag.zeros(3, 0)), IndexError, r"mode: expected reduction dim 1"),
    ("mode-dim", lambda: ag.mode(_x(), 2), AxisError, r"mode: dim 2"),
]


@pytest.mark.parametrize("call, exc, pattern", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_arguments_raise_naming_the_op(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_methods_are_the_functions():
    x = ag.tensor(X34, requires_grad=True)
    i = ag.tensor([[0, 1, 1, 0]])
    pairs = [
        (x.gather(0, i), ag.gather(x, 0, i)),
        (x.take_along_dim(i, 0), ag.take_along_dim(x, i, 0)),
        (x.scatter(0, i, 1.0), ag.scatter(x, 0, i, 1.0)),
        (x.scatter_add(0, i, x), ag.scatter_add(x, 0, i, x)),
        (x.index_select(1, [0, 0]), ag.index_select(x, 1, [0, 0])),
        (x.index_add(1, [0, 0], x[:, :2]), ag.index_add(x, 1, [0, 0], x[:, :2])),
        (x.masked_fill(x > 0, 2.0), ag.masked_fill(x, x > 0, 2.0)),
        (x.masked_select(x > 0), ag.masked_select(x, x > 0)),
        (x.sort(0).values, ag.sort(x, 0).values),
        (x.argsort(descending=True), ag.argsort(x, descending=True)),
        (x.topk(2).indices, ag.topk(x, 2).indices),
        (x.kthvalue(2).values, ag.kthvalue(x, 2).values),
        (x.median(), ag.median(x)),
        (x.median(0).indices, ag.median(x, 0).indices),
        (x.nanmedian(1).values, ag.nanmedian(x, 1).values),
        (x.mode(0).values, ag.mode(x, 0).values),
    ]
    for a, b in pairs:
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert ag.Tensor.gather is ag.gather and ag.Tensor.sort is ag.sort
    # NumPy's keyword names are accepted too (autograd/spec.py)
    np.testing.assert_array_equal(ag.sort(x, axis=0).indices.numpy(), ag.sort(x, dim=0).indices.numpy())
    assert ag.median(x, axis=1, keepdims=True).values.shape == (3, 1)
    # the named tuples unpack like PyTorch's
    values, indices = x.sort()
    assert values.requires_grad and not indices.requires_grad and indices.dtype == np.int64


def test_index_arrays_and_lists_are_accepted():
    x = ag.tensor(X34)
    expect = ag.gather(x, 1, ag.tensor([[1], [2], [0]])).numpy()
    for idx in ([[1], [2], [0]], np.array([[1], [2], [0]]), np.array([[1], [2], [0]], dtype=np.int32)):
        np.testing.assert_array_equal(ag.gather(x, 1, idx).numpy(), expect)
    assert ag.index_select(x, 0, []).shape == (0, 4)


def test_in_place_forms():
    x = ag.tensor(X34.copy())
    v = x.version
    assert x.masked_fill_(x > 0, 0.0) is x
    assert (x.numpy() <= 0).all() and x.version > v
    x.scatter_(1, ag.tensor([[0], [1], [2]]), 5.0)
    assert x.numpy()[0, 0] == x.numpy()[1, 1] == x.numpy()[2, 2] == 5.0
    x.scatter_add_(0, ag.tensor([[0, 0, 0, 0]]), ag.ones(1, 4, dtype="float64"))
    assert x.numpy()[0, 0] == 6.0
    before = x.numpy()
    x.index_add_(1, [3], ag.full((3, 1), 2.0, dtype="float64"), alpha=2)
    np.testing.assert_array_equal(x.numpy()[:, 3], before[:, 3] + 4.0)
    np.testing.assert_array_equal(x.numpy()[:, :3], before[:, :3])
    w = ag.tensor(X34, requires_grad=True)
    with pytest.raises(GraphError, match="masked_fill_: in-place change of a tensor that requires grad"):
        w.masked_fill_(w > 0, 0.0)
    with ag.no_grad():
        w.masked_fill_(w > 0, 0.0)
    assert (w.numpy() <= 0).all()
    with pytest.raises(ValueError, match="masked_fill_: the result has shape"):
        ag.zeros(4).masked_fill_(ag.ones(2, 4, dtype="bool"), 1.0)
    with pytest.raises(GraphError, match="index_add_"):
        ag.zeros(3, dtype="float64").index_add_(0, [0], w[:1])


def test_masked_fill_keeps_integer_dtype():
    x = ag.tensor([[1, 2], [3, 4]])
    out = ag.masked_fill(x, x > 2, 2.7)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.numpy(), [[1, 2], [2, 2]])


def test_value_gradient_routes_to_the_selected_index():
    x = ag.tensor([[1.0, 5.0, 3.0], [4.0, 0.0, 2.0]], requires_grad=True)
    ag.topk(x, 1).values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 1, 0], [1, 0, 0]])
    x.grad = None
    ag.median(ag.tensor([1.0, 2.0, 2.0, 3.0]) * x[0, 0]).backward()     # ties share: 2 and 2 at 1/2 each
    assert x.grad.numpy()[0, 0] == 2.0
