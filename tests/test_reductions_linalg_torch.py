"""Reductions, scans, norms and products against PyTorch: values, dtypes, gradients (first and second order,
with the zeros that products and norms special-case) and the errors, which name the op.

The generated tests (tests/test_ops.py) check the same ops against NumPy on drawn inputs; these pin PyTorch's
own results on a table of cases, PyTorch being the reference of the Tensor API (issue 23).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import autograd as ag

torch = pytest.importorskip("torch")

INF = math.inf


def _dtype_name(t) -> str:
    return str(t.dtype).replace("torch.", "")


def _run(fa, ft, arrays, *, dtype="float64", grad=True, second=False, seed=0):
    """``fa(*ag tensors)`` and ``ft(*torch tensors)`` on the same values: equal results (values, shapes, dtypes)
    and, with ``grad``, equal gradients for a random upstream gradient; with ``second``, equal second derivatives
    (the gradient, built with create_graph, differentiated again along a random direction)."""
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(a, dtype=dtype) for a in arrays]
    floating = np.dtype(dtype).kind == "f"
    tol = dict(rtol=1e-10, atol=1e-12) if dtype != "float32" else dict(rtol=1e-5, atol=1e-6)
    xs = [ag.tensor(a, requires_grad=grad and floating) for a in arrays]
    ts = [torch.tensor(a, requires_grad=grad and floating) for a in arrays]
    ya, yt = fa(*xs), ft(*ts)
    outs_a = list(ya) if isinstance(ya, tuple) else [ya]
    outs_t = list(yt) if isinstance(yt, tuple) else [yt]
    assert len(outs_a) == len(outs_t)
    for oa, ot in zip(outs_a, outs_t):
        assert oa.shape == tuple(ot.shape), (oa.shape, tuple(ot.shape))
        assert str(oa.dtype) == _dtype_name(ot), (oa.dtype, ot.dtype)
        np.testing.assert_allclose(oa.numpy(), ot.detach().numpy(), **tol)
    if not (grad and floating):
        return
    us = [rng.standard_normal(tuple(ot.shape)).astype(_dtype_name(ot)) for ot in outs_t]
    live_t = [(ot, u) for ot, u in zip(outs_t, us) if ot.requires_grad]
    if not live_t:
        assert not any(o.requires_grad for o in outs_a)
        return
    gt = torch.autograd.grad([o for o, _ in live_t], ts, [torch.tensor(u) for _, u in live_t],
                             create_graph=second, allow_unused=True)
    live_a = [(oa, u) for oa, ot, u in zip(outs_a, outs_t, us) if ot.requires_grad]
    ga = ag.grad([o for o, _ in live_a], xs, [ag.tensor(u) for _, u in live_a], create_graph=second,
                 allow_unused=True)
    for a, t, x in zip(ga, gt, xs):
        if t is None:
            assert a is None or not np.any(a.numpy()), "PyTorch gives no gradient here"
            continue
        assert a is not None, "PyTorch gives a gradient, autograd none"
        assert a.shape == x.shape and a.dtype == x.dtype
        np.testing.assert_allclose(a.numpy(), t.detach().numpy(), **tol)
    if second:
        vs = [rng.standard_normal(a.shape).astype(dtype) for a in arrays]
        pairs = [(a, t, v) for a, t, v in zip(ga, gt, vs) if t is not None and t.requires_grad]
        if not pairs:
            return
        st = sum((t * torch.tensor(v)).sum() for _, t, v in pairs)
        hts = torch.autograd.grad(st, ts, allow_unused=True)
        sa = None
        for a, _, v in pairs:
            if a.requires_grad:
                term = (a * ag.tensor(v)).sum()
                sa = term if sa is None else sa + term
        has = ag.grad([sa], xs, allow_unused=True) if sa is not None else [None] * len(xs)
        for ha, ht in zip(has, hts):
            want = np.zeros_like(arrays[0]) if ht is None else ht.numpy(force=True)
            got = np.zeros_like(want) if ha is None else ha.numpy()
            np.testing.assert_allclose(got, want, **tol)


# --- inputs with zeros: the products' special cases --------------------------------------------------------
ZEROS = {
    "no zero": [1.5, -2.0, 3.0, 0.5],
    "one zero": [2.0, 0.0, 3.0, 4.0],
    "zero first": [0.0, 2.0, 3.0, -1.0],
    "zero last": [2.0, 3.0, -1.0, 0.0],
    "two zeros": [0.0, 2.0, 0.0, 3.0],
    "all zeros": [0.0, 0.0, 0.0],
    "matrix": [[1.0, 0.0, 2.0], [3.0, 4.0, 5.0], [0.0, 0.0, 1.0], [2.0, -1.0, 0.0]],
    "3-d": np.arange(24.0).reshape(2, 3, 4) % 5 - 1.0,
    "0-d": 2.5,
    "single": [0.0],
    "empty": np.zeros((0, 3)),
}


def _dims(x):
    n = np.ndim(x)
    return [None] + list(range(-n, n))


@pytest.mark.parametrize("case", ZEROS)
def test_prod_matches_torch_with_zeros(case):
    x = ZEROS[case]
    for dim in _dims(x):
        for keepdim in (False, True):
            if dim is None:
                if keepdim:
                    continue
                fa, ft = (lambda a: ag.prod(a)), (lambda t: torch.prod(t))
            else:
                fa = lambda a, d=dim, k=keepdim: ag.prod(a, d, keepdim=k)   # noqa: E731
                ft = lambda t, d=dim, k=keepdim: torch.prod(t, d, keepdim=k)   # noqa: E731
            _run(fa, ft, [x], second=np.size(x) > 0)


@pytest.mark.parametrize("case", ZEROS)
@pytest.mark.parametrize("op", ["cumprod", "cumsum"])
def test_scans_match_torch_with_zeros(case, op):
    x = ZEROS[case]
    for dim in _dims(x)[1:] or [0]:
        _run(lambda a, d=dim: getattr(ag, op)(a, d), lambda t, d=dim: getattr(torch, op)(t, d), [x], second=True)
        _run(lambda a, d=dim: getattr(a, op)(d), lambda t, d=dim: getattr(t, op)(d), [x], dtype="float32")


def test_cumprod_gradient_with_zeros_is_exact_without_create_graph():
    """The O(n) zero path (no create_graph) and the O(n²) one (create_graph) give the same, exact gradient."""
    x = np.array([[2.0, 0.0, 3.0, 0.0, 5.0], [1.0, 2.0, 0.0, 4.0, 0.5]])
    g = np.arange(10.0).reshape(2, 5) - 3
    fast = ag.grad([ag.cumprod(a := ag.tensor(x, requires_grad=True), 1)], [a], [ag.tensor(g)])[0]
    slow = ag.grad([ag.cumprod(b := ag.tensor(x, requires_grad=True), 1)], [b], [ag.tensor(g)],
                   create_graph=True)[0]
    # by hand: d/dx_i Σ_k g_k Π_{j≤k} x_j = Σ_{k≥i} g_k Π_{j≤k, j≠i} x_j
    want = np.zeros_like(x)
    for r in range(2):
        for i in range(5):
            for k in range(i, 5):
                want[r, i] += g[r, k] * np.prod([x[r, j] for j in range(k + 1) if j != i])
    np.testing.assert_allclose(fast.numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(slow.numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int32", "int64"])
def test_integer_and_bool_sums_and_products_are_int64_as_in_torch(dtype):
    x = np.array([[1, 0, 1], [1, 1, 1]]).astype(dtype)
    for fa, ft in [
        (lambda a: ag.sum(a), lambda t: torch.sum(t)),
        (lambda a: a.sum(1), lambda t: t.sum(1)),
        (lambda a: ag.nansum(a), lambda t: torch.nansum(t)),
        (lambda a: ag.prod(a), lambda t: torch.prod(t)),
        (lambda a: ag.prod(a, 0), lambda t: torch.prod(t, 0)),
        (lambda a: ag.cumsum(a, 1), lambda t: torch.cumsum(t, 1)),
        (lambda a: ag.cumprod(a, 0), lambda t: torch.cumprod(t, 0)),
        (lambda a: ag.sum(a, dtype=ag.float32), lambda t: torch.sum(t, dtype=torch.float32)),
        (lambda a: ag.cumsum(a, 0, dtype=ag.float64), lambda t: torch.cumsum(t, 0, dtype=torch.float64)),
    ]:
        _run(fa, ft, [x], dtype=dtype)
    assert ag.tensor([True, True]).sum().item() == 2 and ag.tensor([True, True]).sum().dtype == ag.int64
    big = ag.tensor(np.full(300, 200, dtype="uint8"))
    assert big.sum().item() == 60000                      # no uint8 wrap-around


def test_mean_of_integers_raises_as_in_torch_unless_dtype_is_given():
    x = ag.tensor([1, 2, 4])
    with pytest.raises(TypeError, match=r"mean: .*int64"):
        x.mean()
    with pytest.raises(TypeError, match="nanmean"):
        ag.nanmean(x)
    with pytest.raises(TypeError, match="mean"):
        ag.mean(ag.tensor([True, False]))
    for op in ("var", "std"):
        with pytest.raises(TypeError, match=f"{op}: expected a floating-point tensor"):
            getattr(x, op)()
        with pytest.raises(RuntimeError):
            getattr(torch.tensor([1, 2, 4]), op)()
    with pytest.raises(RuntimeError):
        torch.tensor([1, 2, 4]).mean()
    _run(lambda a: ag.mean(a, dtype=ag.float64), lambda t: torch.mean(t, dtype=torch.float64), [[1, 2, 4]],
         dtype="int64")
    with pytest.raises(TypeError, match="nanmean"):          # PyTorch's nanmean refuses them even with dtype=
        ag.nanmean(x, dtype=ag.float32)
    _run(lambda a: ag.nanmean(a, dtype=ag.float64), lambda t: torch.nanmean(t, dtype=torch.float64), [[1.0, np.nan]],
         dtype="float32")


# --- norms -------------------------------------------------------------------------------------------------
NORM_INPUTS = {
    "vector": [3.0, -4.0, 1.5, -0.5],
    "zero vector": [0.0, 0.0, 0.0],
    "with zeros": [[1.0, -2.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.0, -3.0]],
    "3-d": (np.arange(24.0).reshape(2, 3, 4) - 11) / 4,
    "0-d": -2.0,
    "0-d zero": 0.0,
}
PS = ["fro", 2, 1, 3, 1.5, 0.5, -1, -2.5, 0, INF, -INF]


@pytest.mark.parametrize("p", PS, ids=str)
@pytest.mark.parametrize("case", NORM_INPUTS)
def test_norm_matches_torch(case, p):
    x = NORM_INPUTS[case]
    n = np.ndim(x)
    dims = [None] + list(range(-n, n)) + ([(0, n - 1)] if n >= 2 else []) + ([(0, 1, 2)] if n == 3 and p != "fro"
                                                                          else [])
    for dim in dims:
        for keepdim in (False, True):
            # second derivatives where they are finite: no zero where |x|^(p-2) blows up, no ∞-norm ties
            second = p not in (INF, -INF) and not np.any(np.asarray(x) == 0)
            _run(lambda a, d=dim, k=keepdim: ag.norm(a, p, d, k), lambda t, d=dim, k=keepdim: torch.norm(t, p, d, k),
                 [x], second=second)
    _run(lambda a: a.norm(p), lambda t: t.norm(p), [x], dtype="float32")


def test_norm_gradient_at_the_zero_vector_is_zero_as_in_torch():
    for p in (2, "fro", 1, 3, 0.5, INF):
        x = ag.zeros(4, requires_grad=True)
        ag.norm(x, p).backward()
        np.testing.assert_array_equal(x.grad.numpy(), np.zeros(4))
    x = ag.tensor([[0.0, 0.0], [3.0, 4.0]], requires_grad=True)
    ag.norm(x, dim=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0], [0.6, 0.8]])


def test_norm_infinity_ties_share_the_gradient_as_in_torch():
    _run(lambda a: ag.norm(a, INF), lambda t: torch.norm(t, INF), [[1.0, -2.0, 2.0, 0.5]])
    _run(lambda a: ag.norm(a, -INF, dim=1), lambda t: torch.norm(t, -INF, dim=1), [[[1.0, -1.0, 2.0], [3.0, 3.0, 3.0]]])


def test_norm_options():
    x = np.arange(6.0).reshape(2, 3) - 2
    _run(lambda a: ag.norm(a, dtype=ag.float64), lambda t: torch.norm(t, dtype=torch.float64), [x], dtype="float32")
    _run(lambda a: ag.norm(a, None), lambda t: torch.norm(t, None), [x])
    _run(lambda a: ag.norm(a, dim=[0, 1], keepdim=True), lambda t: torch.norm(t, dim=[0, 1], keepdim=True), [x])
    _run(lambda a: a.norm(p=2, axis=1), lambda t: t.norm(p=2, dim=1), [x])        # NumPy's keyword too
    assert ag.norm(ag.ones(2, 3, dtype=ag.float32)).dtype == ag.float32
    assert ag.norm is ag.ops.norm is ag.Tensor.norm


@pytest.mark.parametrize("call, match, kind", [
    (lambda: ag.norm(ag.tensor([1, 2])), r"norm: .*floating", TypeError),
    (lambda: ag.norm(ag.ones(2, 2), "nuc"), r"norm: .*nuc", NotImplementedError),
    (lambda: ag.norm(ag.ones(2, 2), "max"), r"norm: .*'max'", ValueError),
    (lambda: ag.norm(ag.ones(2, 2), [2]), r"norm: .*list", TypeError),
    (lambda: ag.norm(ag.ones(2, 2, 2), "fro", dim=(0, 1, 2)), r"norm: p='fro'", ValueError),
    (lambda: ag.norm(ag.ones(0), INF), r"norm: .*inf norm over an empty dim", ValueError),
    (lambda: ag.norm(ag.ones(0, 2), -1, dim=0), r"norm: .*-1 norm over an empty dim", ValueError),
    (lambda: ag.norm(ag.ones(2, 2), dim=2), r"norm: .*dim 2", IndexError),
])
def test_norm_errors_name_the_op(call, match, kind):
    with pytest.raises(kind, match=match):
        call()


def test_norm_of_empty_reductions_as_in_torch():
    for p in (2, 1, 0, 3):
        _run(lambda a: ag.norm(a, p), lambda t: torch.norm(t, p), [np.zeros((0, 3))])
    _run(lambda a: ag.norm(a, INF, dim=1), lambda t: torch.norm(t, INF, dim=1), [np.zeros((0, 3))])


# --- logical reductions and counts -------------------------------------------------------------------------
LOGICAL = {
    "float": ([[1.0, 0.0, 3.0], [0.0, 0.0, 2.0]], "float64"),
    "nan": ([[np.nan, 0.0], [0.0, 0.0]], "float64"),
    "bool": ([[True, False], [True, True]], "bool"),
    "uint8": ([[1, 0, 7], [0, 0, 0]], "uint8"),
    "int": ([[-1, 0], [5, 2]], "int64"),
    "0-d": (0.0, "float32"),
    "empty": (np.zeros((0, 2)), "float64"),
}


@pytest.mark.parametrize("case", LOGICAL)
@pytest.mark.parametrize("op", ["any", "all", "count_nonzero"])
def test_any_all_count_nonzero_match_torch(case, op):
    x, dtype = LOGICAL[case]
    n = np.ndim(x)
    dims = [None] + list(range(-max(n, 1), max(n, 1))) + ([(0, 1)] if n == 2 else [])
    for dim in dims:
        if op == "count_nonzero":
            variants = [(lambda a, d=dim: ag.count_nonzero(a, d), lambda t, d=dim: torch.count_nonzero(t, d))]
        elif dim is None:
            variants = [(lambda a: getattr(ag, op)(a), lambda t: getattr(torch, op)(t))]
        else:
            variants = [(lambda a, d=dim, k=k: getattr(a, op)(d, keepdim=k),
                         lambda t, d=dim, k=k: getattr(t, op)(d, keepdim=k)) for k in (False, True)]
        for fa, ft in variants:
            _run(fa, ft, [x], dtype=dtype)
    out = getattr(ag, op)(ag.tensor(np.asarray(x, dtype="float64"), requires_grad=True))
    assert not out.requires_grad


def test_logical_reduction_errors_name_the_op():
    with pytest.raises(IndexError, match="any"):
        ag.any(ag.ones(2, 2), 2)
    with pytest.raises(IndexError, match="count_nonzero"):
        ag.count_nonzero(ag.ones(2), (0, 1))
    with pytest.raises(IndexError, match="all"):
        ag.all(ag.tensor(1.0), 1)


# --- nan-aware reductions, aminmax ---------------------------------------------------------------------------
NANS = [[1.0, np.nan, 2.0], [np.nan, np.nan, np.nan], [0.5, -1.0, 3.0]]


@pytest.mark.parametrize("op", ["nansum", "nanmean"])
def test_nan_reductions_match_torch(op):
    for dim in (None, 0, 1, -1, (0, 1)):
        for keepdim in (False, True):
            _run(lambda a, d=dim, k=keepdim: getattr(ag, op)(a, d, k),
                 lambda t, d=dim, k=keepdim: getattr(torch, op)(t, d, k), [NANS] if op == "nansum" else [NANS[::2]])
    _run(lambda a: getattr(a, op)(), lambda t: getattr(t, op)(), [NANS], grad=False, dtype="float32")
    assert np.isnan(ag.nanmean(ag.tensor([np.nan, np.nan])).item())


def test_aminmax_matches_torch():
    x = [[1.0, -2.0, 3.0], [4.0, 4.0, 0.0]]
    for kw in ({}, {"dim": 0}, {"dim": 1, "keepdim": True}, {"dim": -1}, {"keepdim": True}):
        _run(lambda a, kw=kw: ag.aminmax(a, **kw), lambda t, kw=kw: torch.aminmax(t, **kw), [x])
    mn, mx = ag.tensor(x).aminmax(dim=1)
    assert (mn.tolist(), mx.tolist()) == ([-2.0, 0.0], [3.0, 4.0])
    assert ag.aminmax(ag.tensor(x)).max.item() == 4.0
    with pytest.raises(ValueError, match="aminmax: cannot reduce an empty dim"):
        ag.aminmax(ag.ones(0, 2), dim=0)
    with pytest.raises(TypeError, match="aminmax: dim must be an int"):
        ag.aminmax(ag.ones(2, 2), dim=(0, 1))


@pytest.mark.parametrize("call, kind, match", [
    (lambda: ag.prod(ag.ones(2, 3), (0, 1)), TypeError, "prod: dim must be an int"),
    (lambda: ag.prod(ag.ones(2, 3), 2), IndexError, "prod: dim 2 is out of range"),
    (lambda: ag.cumsum(ag.ones(3), 1), IndexError, "cumsum: dim 1 is out of range"),
    (lambda: ag.cumprod(ag.ones(3), None), TypeError, "cumprod: dim must be an int"),
    (lambda: ag.cumsum(ag.tensor(1.0), 1), IndexError, "cumsum"),
    (lambda: ag.nanmean(ag.tensor([1, 2])), TypeError, "nanmean: expected a floating-point tensor"),
])
def test_reduction_errors_name_the_op(call, kind, match):
    with pytest.raises(kind, match=match):
        call()


# --- fixed-rank products -----------------------------------------------------------------------------------
PRODUCTS = [
    ("mm", [(2, 3), (3, 4)]), ("mm", [(0, 3), (3, 2)]), ("mm", [(2, 0), (0, 2)]),
    ("bmm", [(2, 3, 4), (2, 4, 1)]), ("bmm", [(1, 1, 1), (1, 1, 3)]),
    ("mv", [(3, 2), (2,)]), ("mv", [(2, 0), (0,)]),
    ("dot", [(4,), (4,)]), ("dot", [(0,), (0,)]),
    ("outer", [(3,), (2,)]), ("outer", [(0,), (2,)]), ("ger", [(2,), (1,)]),
    ("matmul", [(2, 2, 3), (3,)]),
]


@pytest.mark.parametrize("op, shapes", PRODUCTS, ids=lambda v: str(v))
def test_products_match_torch(op, shapes):
    rng = np.random.default_rng(len(op))
    xs = [rng.standard_normal(s) for s in shapes]
    _run(lambda a, b: getattr(ag, op)(a, b), lambda a, b: getattr(torch, op)(a, b), xs, second=True)
    _run(lambda a, b: getattr(a, op)(b), lambda a, b: getattr(a, op)(b), xs, dtype="float32")


def test_integer_products_and_outer_promotion_as_in_torch():
    _run(lambda a, b: ag.dot(a, b), lambda a, b: torch.dot(a, b), [[1, 2], [3, 4]], dtype="int64")
    _run(lambda a, b: ag.mm(a, b), lambda a, b: torch.mm(a, b), [[[1, 2]], [[3], [4]]], dtype="int64")
    a32, b64 = ag.ones(2, dtype=ag.float32), ag.ones(3, dtype=ag.float64)
    assert ag.outer(a32, b64).dtype == ag.float64 and ag.outer(ag.tensor([1, 2]), a32).dtype == ag.float32


@pytest.mark.parametrize("call, kind, match", [
    (lambda: ag.mm(ag.ones(2, 3), ag.ones(3)), ValueError, r"mm: expected mat2 to be 2-D, got shape \(3,\)"),
    (lambda: ag.mm(ag.ones(2, 3), ag.ones(2, 3)), ValueError, r"mm: shapes \(2, 3\) and \(2, 3\) cannot be mult"),
    (lambda: ag.mm(ag.ones(2, 3), ag.ones(3, 2, dtype=ag.float64)), TypeError, "mm: expected both tensors to have "
                                                                              "the same dtype"),
    (lambda: ag.bmm(ag.ones(2, 3), ag.ones(2, 3, 1)), ValueError, "bmm: expected input to be 3-D"),
    (lambda: ag.bmm(ag.ones(2, 2, 3), ag.ones(1, 3, 2)), ValueError, r"bmm: shapes \(2, 2, 3\) and \(1, 3, 2\)"),
    (lambda: ag.mv(ag.ones(2, 3), ag.ones(2)), ValueError, "mv: shapes"),
    (lambda: ag.mv(ag.ones(3), ag.ones(3)), ValueError, "mv: expected input to be 2-D"),
    (lambda: ag.dot(ag.ones(2), ag.ones(3)), ValueError, "dot: the vectors have different lengths"),
    (lambda: ag.dot(ag.ones(2, 1), ag.ones(2)), ValueError, "dot: expected input to be 1-D"),
    (lambda: ag.dot(ag.ones(2), ag.ones(2, dtype=ag.float64)), TypeError, "dot: expected both tensors"),
    (lambda: ag.dot(ag.ones(2), [1.0, 2.0]), TypeError, "dot: expected a Tensor for other"),
    (lambda: ag.outer(ag.ones(2, 2), ag.ones(3)), ValueError, "outer: expected input to be 1-D"),
])
def test_product_errors_name_the_op(call, kind, match):
    with pytest.raises(kind, match=match):
        call()


# --- einsum ------------------------------------------------------------------------------------------------
EQUATIONS = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),          # matrix product
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),  # batch product
    ("ii", [(3, 3)]),                          # trace
    ("ii->i", [(3, 3)]),                       # diagonal
    ("ij->ji", [(2, 3)]),                      # transpose
    ("i,j->ij", [(3,), (2,)]),                 # outer
    ("bi,ij,bj->b", [(4, 2), (2, 3), (4, 3)]),  # bilinear
    ("ij->", [(2, 3)]),                        # sum
    ("ij->j", [(2, 3)]),                       # summed-out index
    ("ij,j", [(2, 3), (3,)]),                  # implicit output
    ("ba", [(2, 3)]),                          # implicit output, alphabetical
    ("iij->j", [(2, 2, 3)]),
    ("iji->j", [(2, 3, 2)]),
    ("i,i->", [(4,), (4,)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]),           # size-1 broadcast
    ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]),
    ("...ij,...jk", [(2, 1, 2, 3), (4, 3, 1)]),
    ("b...->...", [(2, 3, 4)]),
    ("...i->i", [(2, 3)]),
    ("Ab,bA", [(2, 3), (3, 2)]),
    (" i j , j k -> i k ", [(2, 3), (3, 2)]),
    ("ij,jk->ik", [(2, 0), (0, 3)]),
]


@pytest.mark.parametrize("equation, shapes", EQUATIONS, ids=[e for e, _ in EQUATIONS])
def test_einsum_matches_torch(equation, shapes):
    rng = np.random.default_rng(len(equation))
    xs = [rng.standard_normal(s) for s in shapes]
    _run(lambda *a: ag.einsum(equation, *a), lambda *a: torch.einsum(equation, *a), xs, second=True)
    _run(lambda *a: ag.einsum(equation, list(a)), lambda *a: torch.einsum(equation, list(a)), xs, dtype="float32")


@pytest.mark.parametrize("equation, shapes", EQUATIONS[:9], ids=[e for e, _ in EQUATIONS[:9]])
def test_einsum_gradcheck_and_gradgradcheck(equation, shapes):
    rng = np.random.default_rng(1)
    xs = [ag.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]
    assert ag.gradcheck(lambda *a: ag.einsum(equation, *a), xs)
    assert ag.gradgradcheck(lambda *a: ag.einsum(equation, *a), xs)


def test_einsum_with_one_operand_twice():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    _run(lambda a: ag.einsum("ij,jk->ik", a, a), lambda t: torch.einsum("ij,jk->ik", t, t), [x], second=True)


def test_einsum_differentiates_only_what_requires_grad():
    a, b = ag.ones(2, 3, requires_grad=True), ag.ones(3)
    ag.einsum("ij,j->i", a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.ones((2, 3)))
    assert b.grad is None


@pytest.mark.parametrize("call, kind, match", [
    (lambda: ag.einsum("ij,jk->ik", ag.ones(2, 3)), ValueError, "einsum: 'ij,jk->ik' has subscripts for 2"),
    (lambda: ag.einsum("ij->ik", ag.ones(2, 3)), ValueError, "einsum: output subscript 'k' does not appear"),
    (lambda: ag.einsum("ij->ii", ag.ones(2, 3)), ValueError, "einsum: output subscript 'i' appears more"),
    (lambda: ag.einsum("i1", ag.ones(2, 3)), ValueError, "einsum: invalid subscript '1'"),
    (lambda: ag.einsum("ijk", ag.ones(2, 3)), ValueError, "einsum: operand 0 has 2 dim"),
    (lambda: ag.einsum("ij,jk", ag.ones(2, 3), ag.ones(4, 2)), ValueError, "einsum: subscript 'j' has sizes 3 and 4"),
    (lambda: ag.einsum("ii", ag.ones(2, 3)), ValueError, "einsum: subscript 'i' repeats in operand 0"),
    (lambda: ag.einsum("i,i", ag.ones(2), ag.ones(2, dtype=ag.float64)), TypeError, "einsum: operands must have"),
    (lambda: ag.einsum("i", np.ones(2)), TypeError, "einsum: operand 0 is a ndarray"),
    (lambda: ag.einsum("i->->i", ag.ones(2)), ValueError, "einsum: more than one '->'"),
    (lambda: ag.einsum("ij"), ValueError, "einsum: needs at least one operand"),
])
def test_einsum_errors_name_the_op(call, kind, match):
    with pytest.raises(kind, match=match):
        call()
