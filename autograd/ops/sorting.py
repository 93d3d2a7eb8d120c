"""Sorting and selection ops (PyTorch's names and results).

The indices are int64 tensors outside the graph; the values are ``gather(input, dim, indices)``, so their gradient
goes to the selected elements (scatter-added), as in PyTorch, and differentiates again.

Ties and nan, as in PyTorch: nan sorts above every number (last ascending, first descending). Equal values keep
their order of index in both directions: PyTorch's result with ``stable=True``, given here for
``stable=False`` too (PyTorch's unstable order of ties is unspecified; its CPU sort of long rows differs).
``topk`` and ``kthvalue`` take the tied element of lowest index first (PyTorch's quickselect picks one
implementation-defined); ``topk`` always returns its values sorted (``sorted=False`` leaves the order
unspecified in PyTorch). ``median`` / ``nanmedian`` without ``dim`` share the gradient among the elements equal to
the median (PyTorch's rule), with ``dim`` route it to the returned index.
"""
from __future__ import annotations

from ..function import Function
from ..spec import OpSpec, public
from ..tensor import Tensor, _make
from ._util import const, normalize_axis, return_type
from .indexing import Gather, _grid
from .shape import reshape

__all__ = ["sort", "argsort", "topk", "kthvalue", "median", "nanmedian", "mode"]


# --- helpers on raw arrays ---------------------------------------------------------------------------------------
def _stable_argsort(be, a, axis: int):
    """Stable ascending argsort of array ``a`` along ``axis`` (nan last); CuPy's sort is always stable and takes no
    ``kind``."""
    if be.kind == "cpu":
        return a.argsort(axis=axis, kind="stable")
    return a.argsort(axis=axis)


def _order(t: Tensor, dim: int, descending: bool):
    """The stable sort order of ``t``'s array along ``dim``: descending sorts the reversed array ascending and
    reverses the result back, so ties keep their index order and nan comes first."""
    a, xp = t.array, t.xp
    if not descending:
        return _stable_argsort(t._backend, a, dim)
    n = a.shape[dim]
    r = _stable_argsort(t._backend, xp.flip(a, axis=dim), dim)
    return xp.flip(n - 1 - r, axis=dim)


def _take(a, dim: int, start: int, stop: int):
    return a[(slice(None),) * dim + (slice(start, stop),)]


def _isnan(t: Tensor):
    return t.xp.isnan(t.array) if t.dtype.kind in "fc" else None


def _indices(a, be) -> Tensor:
    return _make(a.astype("int64", copy=False), be, False)


def _setup(input, dim, op: str):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    return normalize_axis(dim, max(input.ndim, 1), op)


def _nonempty(input: Tensor, d: int, op: str) -> None:
    if input.shape[d] == 0:
        raise IndexError(f"{op}: expected reduction dim {d} to have non-zero size (input shape {input.shape})")


def _k(k, lo: int, n: int, op: str, d: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool):
        raise TypeError(f"{op}: k must be an int, got {k!r}")
    if not lo <= k <= n:
        raise IndexError(f"{op}: k = {k} is out of range for dimension {d} of size {n} (need {lo} <= k <= {n})")
    return k


def _select(input: Tensor, d: int, idx, keepdim: bool, name: str):
    """``(values, indices)`` of ``input`` at ``idx`` (an array with size 1 along ``d``), ``d`` dropped unless
    ``keepdim``."""
    values = Gather.apply(input, dim=d, index=idx)
    if not keepdim:
        shape = input.shape[:d] + input.shape[d + 1:]
        values, idx = reshape(values, shape), idx.reshape(shape)
    return return_type(name)(values, _indices(idx, input._backend))


def _scalar(fn, input: Tensor, *args):
    """``fn`` on a 0-d input seen as shape (1,), results back to 0-d (PyTorch's dims of a 0-d tensor)."""
    values, indices = fn(reshape(input, (1,)), *args)
    return reshape(values, ()), _make(indices.array.reshape(()), input._backend, False)


def _apart(np, arrays):
    """Spread the drawn values 0.1 apart per rank (ties make a selection's gradient ill-defined)."""
    x = arrays[0]
    ranks = np.argsort(np.argsort(x.ravel(), kind="stable"), kind="stable")
    return [(x.ravel() + 0.1 * ranks).reshape(x.shape)] + list(arrays[1:])


# --- ops ---------------------------------------------------------------------------------------------------------
def _values(out):
    return out.values if isinstance(out, tuple) else out


def _dim_sample(d, **kw):
    shape = d.shape(min_dims=1, max_dims=3, **kw)
    return shape, d.int(-len(shape), len(shape) - 1)


def _sort_sample(d):
    shape, dim = _dim_sample(d)
    return [d.array(shape)], {"dim": dim, "descending": d.bool()}


def _sort_ref(np, x, dim=-1, descending=False):
    s = np.sort(x, axis=dim)
    return np.flip(s, axis=dim) if descending else s


def _topk_sample(d):
    shape, dim = _dim_sample(d)
    return [d.array(shape)], {"k": d.int(0, shape[dim]), "dim": dim, "largest": d.bool()}


def _topk_ref(np, x, k, dim=-1, largest=True):
    s = _sort_ref(np, x, dim, largest)
    return np.take(s, np.arange(k), axis=dim)


def _kth_sample(d):
    shape, dim = _dim_sample(d, min_side=1)
    return [d.array(shape)], {"k": d.int(1, shape[dim]), "dim": dim, "keepdim": d.bool()}


def _kth_ref(np, x, k, dim=-1, keepdim=False):
    out = np.take(np.sort(x, axis=dim), k - 1, axis=dim)
    return np.expand_dims(out, dim) if keepdim else out


def _median_sample(d):
    shape, dim = _dim_sample(d, min_side=1)
    if d.bool():
        return [d.array(shape)], {}
    return [d.array(shape)], {"dim": dim, "keepdim": d.bool()}


def _median_ref(np, x, dim=None, keepdim=False):
    if dim is None:
        return np.sort(x.ravel())[(x.size - 1) // 2]
    return _kth_ref(np, x, (x.shape[dim] - 1) // 2 + 1, dim, keepdim)


def _mode_sample(d):
    shape, dim = _dim_sample(d, min_side=1)
    return [d.array(shape)], {"dim": dim, "keepdim": d.bool()}


def _mode_ref(np, x, dim=-1, keepdim=False):
    def one(v):
        vals, counts = np.unique(v, return_counts=True)
        return vals[np.argmax(counts)]         # the first (smallest) of the most frequent
    out = np.apply_along_axis(one, dim, x)
    return np.expand_dims(out, dim) if keepdim else out


class MedianAll(Function):
    """f = the lower median of all of x (``nan``: propagates, or, with ``skip_nan``, is left out);
    df/dx = [x = f] / (number of such elements): tied elements share the gradient, nan elements where f is nan
    (PyTorch's rule for ``median(t)``)."""
    exempt = "the no-dim form of median and nanmedian, tested by their specs"
    save_output = True

    def forward(self, x):
        xp = self.xp
        flat = x.reshape(-1)
        n = flat.size
        if n == 0:
            return xp.asarray(float("nan"), dtype=x.dtype if x.dtype.kind == "f" else "float32")
        s = xp.sort(flat)                                    # nan last
        if x.dtype.kind not in "fc":
            return s[(n - 1) // 2:(n - 1) // 2 + 1].reshape(())
        m = (~xp.isnan(flat)).sum()                          # the numbers, before the nans
        if self.skip_nan:
            pos = xp.where(m > 0, (m - 1) // 2, 0)
        else:
            pos = xp.where(m < n, m, (n - 1) // 2)
        return s[pos.reshape(1)].reshape(())                 # an array index: no copy to the host

    def backward(self, gy):
        x, xp = self.inputs[0].array, self.xp
        y = self.saved
        hit = (x == y) | (xp.isnan(x) & xp.isnan(y))
        mask = hit.astype(gy.dtype)
        mask /= xp.maximum(hit.sum(), 1)
        return gy * const(mask, gy)


# --- public functions --------------------------------------------------------------------------------------------
@public(method=True, spec=OpSpec(ref=_sort_ref, sample=_sort_sample, prepare=_apart,
                                 call=lambda x, **kw: sort(x, **kw).values))
def sort(input: Tensor, dim: int = -1, descending: bool = False, *, stable: bool = False):
    """``(values, indices)`` of ``input`` sorted along ``dim``; equal values keep their index order (``stable`` is
    accepted: the sort is always stable), nan sorts as the largest value."""
    d = _setup(input, dim, "sort")
    if input.ndim == 0:
        v, i = _scalar(sort, input, 0, descending)
        return return_type("sort")(v, i)
    idx = _order(input, d, descending)
    return return_type("sort")(Gather.apply(input, dim=d, index=idx), _indices(idx, input._backend))


@public(method=True)
def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """The int64 indices that sort ``input`` along ``dim`` (:func:`sort`'s indices; always stable)."""
    d = _setup(input, dim, "argsort")
    if input.ndim == 0:
        return _make(input.xp.zeros((), "int64"), input._backend, False)
    return _indices(_order(input, d, descending), input._backend)


@public(method=True, spec=OpSpec(ref=_topk_ref, sample=_topk_sample, prepare=_apart,
                                 call=lambda x, **kw: topk(x, **kw).values))
def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """``(values, indices)`` of the ``k`` largest (``largest=False``: smallest) elements along ``dim``, in sorted
    order (also for ``sorted=False``); of tied elements the one of lowest index comes first."""
    d = _setup(input, dim, "topk")
    n = input.shape[d] if input.ndim else 1
    _k(k, 0, n, "topk", d)
    if input.ndim == 0:
        if k == 0:
            empty = reshape(input, (1,))[0:0]
            return return_type("topk")(empty, _make(input.xp.zeros((0,), "int64"), input._backend, False))
        v, i = _scalar(topk, input, k, 0, largest)
        return return_type("topk")(v, i)
    idx = _take(_order(input, d, largest), d, 0, k)
    return return_type("topk")(Gather.apply(input, dim=d, index=idx), _indices(idx, input._backend))


@public(method=True, spec=OpSpec(ref=_kth_ref, sample=_kth_sample, prepare=_apart,
                                 call=lambda x, **kw: kthvalue(x, **kw).values))
def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    """``(values, indices)`` of the ``k``-th smallest element (1-based) along ``dim``; nan counts as the largest,
    of tied elements the one of lowest index comes first."""
    d = _setup(input, dim, "kthvalue")
    _k(k, 1, input.shape[d] if input.ndim else 1, "kthvalue", d)
    if input.ndim == 0:
        v, i = _scalar(kthvalue, input, k, 0, True)
        return return_type("kthvalue")(v, i)
    idx = _take(_order(input, d, False), d, k - 1, k)
    return _select(input, d, idx, keepdim, "kthvalue")


def _median_dim(input: Tensor, dim, keepdim: bool, name: str, skip_nan: bool):
    d = _setup(input, dim, name)
    if input.ndim == 0:
        v, i = _scalar(lambda t, *a: _median_dim(t, 0, True, name, skip_nan), input)
        return return_type(name)(v, i)
    _nonempty(input, d, name)
    xp = input.xp
    order = _order(input, d, False)                  # nan last, in index order
    n = input.shape[d]
    nan = _isnan(input)
    if nan is None:
        pos = xp.full(input.shape[:d] + (1,) + input.shape[d + 1:], (n - 1) // 2, "int64")
    else:
        m = (~nan).sum(axis=d, keepdims=True)        # numbers per line
        pos = xp.where(m > 0, (m - 1) // 2, 0) if skip_nan else xp.where(m < n, m, (n - 1) // 2)
    idx = order[_grid(xp, pos.astype("int64"), d)]
    return _select(input, d, idx, keepdim, name)


def _median(input, dim, keepdim: bool, name: str, skip_nan: bool):
    if dim is None:
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
        if keepdim:
            raise TypeError(f"{name}: keepdim=True needs a dim")
        return MedianAll.apply(input, skip_nan=skip_nan)
    return _median_dim(input, dim, keepdim, name, skip_nan)


@public(method=True, spec=OpSpec(ref=_median_ref, sample=_median_sample, prepare=_apart,
                                 call=lambda x, **kw: _values(median(x, **kw))))
def median(input: Tensor, dim=None, keepdim: bool = False):
    """``median(t)``: the lower median of all elements (nan if there is one); ``median(t, dim, keepdim=False)``:
    ``(values, indices)`` of the lower median along ``dim`` (a line with nan gives nan and its first nan's index).
    ``median`` of an empty tensor is nan."""
    return _median(input, dim, keepdim, "median", skip_nan=False)


@public(method=True, spec=OpSpec(ref=_median_ref, sample=_median_sample, prepare=_apart,
                                 call=lambda x, **kw: _values(nanmedian(x, **kw))))
def nanmedian(input: Tensor, dim=None, keepdim: bool = False):
    """:func:`median` leaving nan out (nan only where every element is nan)."""
    return _median(input, dim, keepdim, "nanmedian", skip_nan=True)


@public(method=True, spec=OpSpec(ref=_mode_ref, sample=_mode_sample, prepare=_apart,
                                 call=lambda x, **kw: mode(x, **kw).values))
def mode(input: Tensor, dim: int = -1, keepdim: bool = False):
    """``(values, indices)``: the most frequent value along ``dim`` (the smallest of those equally frequent) and the
    index of its last occurrence (what PyTorch's CPU kernel gives for short rows; for long rows PyTorch's choice
    among the occurrences is implementation-defined). Each nan counts as a value of its own (nan != nan)."""
    d = _setup(input, dim, "mode")
    if input.ndim == 0:
        v, i = _scalar(mode, input, 0, True)
        return return_type("mode")(v, i)
    _nonempty(input, d, "mode")
    xp = input.xp
    a = xp.moveaxis(input.array, d, -1)
    lead, n = a.shape[:-1], a.shape[-1]
    rows = 1
    for s in lead:
        rows *= s
    a = a.reshape(rows, n)
    order = _stable_argsort(input._backend, a, 1)
    s = a[xp.arange(rows)[:, None], order]
    start = xp.ones((rows, n), dtype=bool)
    start[:, 1:] = s[:, 1:] != s[:, :-1]              # a run of equal values begins (each nan is one)
    first = xp.flatnonzero(start)                       # every row begins a run, so runs never cross rows
    length = xp.diff(xp.concatenate([first, xp.asarray([rows * n], dtype=first.dtype)]))
    run = xp.cumsum(start.reshape(-1)) - 1
    at = length[run].reshape(rows, n)                   # each element's run length
    best = xp.argmax(at, axis=1)                        # first longest run: the smallest most frequent value
    last = best + at[xp.arange(rows), best] - 1         # its last element: the highest index (stable order)
    idx = order[xp.arange(rows), last].reshape(lead)
    return _select(input, d, xp.expand_dims(idx, d), keepdim, "mode")
