"""Indexing ops: gather, scatter, index_select, masked ops (PyTorch's names and results).

Index arguments are int64 Tensors, or NumPy/CuPy arrays or lists of ints (other integer dtypes are taken and
converted to int64, as PyTorch takes int32 too); bool and floating indices are refused. Each gather-like op's
gradient is the matching scatter-add op, whose gradient is the gather again, so every op here differentiates
twice: ``gather`` ↔ ``scatter_add``, ``index_select`` ↔ ``index_add``, ``scatter`` → ``scatter``/``gather``.
Bad arguments raise ``TypeError`` (index dtype, dtype mismatch), ``ValueError`` (shapes), ``IndexError`` (index
values out of range) or ``AxisError`` (dim), each naming the op.

The in-place forms (``x.masked_fill_``, ``x.scatter_``, ``x.scatter_add_``, ``x.index_add_``) follow the
library's in-place rule (``Tensor.copy_``): allowed under ``no_grad()`` or on tensors outside the graph, a
``GraphError`` where the change would have to be recorded.
"""
from __future__ import annotations

from ..errors import GraphError
from ..function import Function, is_grad_enabled, no_grad
from ..spec import OpSpec, public
from ..tensor import Tensor
from ._util import const, normalize_axis
from .arithmetic import where
from .shape import astype, broadcast_to, getitem, reshape

__all__ = ["gather", "take_along_dim", "scatter", "scatter_add", "index_select", "masked_fill", "masked_select",
           "index_add"]


# --- argument checks ---------------------------------------------------------------------------------------------
def _tensor(x, op: str, name: str = "input") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(x).__name__}")
    return x


def _dim(dim, ndim: int, op: str) -> int:
    """``dim`` normalised for a tensor of rank ``ndim`` (a 0-d tensor has the one dim 0, as in PyTorch)."""
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    return normalize_axis(dim, max(ndim, 1), op)


def _index(index, like: Tensor, op: str, name: str = "index"):
    """``index`` (Tensor, array or list of ints) as an int64 array on ``like``'s device."""
    if isinstance(index, Tensor):
        if index._backend is not like._backend:
            from backends import DeviceError
            raise DeviceError(f"{op}: {name} is on {index._backend.name}, the input on {like._backend.name}")
        arr = index.array
    else:
        try:
            arr = like._backend.asarray(index)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{op}: {name} must be an integer tensor, array or list of ints, "
                            f"got {type(index).__name__}") from e
        if arr.size == 0 and not hasattr(index, "dtype"):
            arr = arr.astype("int64")               # [] is an empty index, not a float array
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected an integer (int64) {name}, got dtype {arr.dtype} (shape {tuple(arr.shape)})")
    return arr.astype("int64", copy=False)


def _check_range(idx, n: int, op: str, dim: int, negative: bool = False) -> None:
    """Every value of ``idx`` in [0, n) (or [-n, n) with ``negative``)."""
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        low = -n if negative else 0
        if lo < low or hi >= n:
            raise IndexError(f"{op}: index {lo if lo < low else hi} is out of bounds for dimension {dim} "
                             f"with size {n}")


def _check_block(op: str, shape: tuple, idx_shape: tuple, dim: int, src_shape=None) -> None:
    """PyTorch's rule for gather/scatter: index has the input's rank, is no larger than the input apart from
    ``dim``, and no larger than ``src`` anywhere."""
    if len(idx_shape) != len(shape):
        raise ValueError(f"{op}: index must have as many dimensions as the input, got index shape {idx_shape} "
                         f"for input shape {shape}")
    for i, (k, n) in enumerate(zip(idx_shape, shape)):
        if i != dim and k > n:
            raise ValueError(f"{op}: index shape {idx_shape} is larger than input shape {shape} at dimension {i} "
                             f"(only dimension {dim} may be larger)")
    if src_shape is not None:
        if len(src_shape) != len(idx_shape) or any(k > s for k, s in zip(idx_shape, src_shape)):
            raise ValueError(f"{op}: index shape {idx_shape} must be no larger than src shape {src_shape} "
                             "in every dimension")


def _grid(xp, index, dim: int) -> tuple:
    """The full advanced index of ``index`` along ``dim``: position i of the result reads
    ``x[i_0, ..., index[i], ..., i_n]``."""
    nd = index.ndim
    return tuple(index if i == dim else xp.arange(n).reshape((1,) * i + (n,) + (1,) * (nd - i - 1))
                 for i, n in enumerate(index.shape))


def _block(shape: tuple) -> tuple:
    return tuple(slice(0, n) for n in shape)


def _zeros(shape, like: Tensor) -> Tensor:
    return const(like.xp.zeros(shape, like.dtype), like)


def _same_dtype(x: Tensor, src: Tensor, op: str) -> None:
    if src.dtype != x.dtype:
        raise TypeError(f"{op}: expected src of the input's dtype {x.dtype}, got {src.dtype} "
                        f"(shapes {x.shape} and {src.shape})")


def _broadcast_shape(a: tuple, b: tuple, op: str, what: str = "mask") -> tuple:
    """NumPy's broadcast of two shapes, or a ValueError naming ``op``."""
    n = max(len(a), len(b))
    a2, b2 = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for p, q in zip(a2, b2):
        if p != q and p != 1 and q != 1:
            raise ValueError(f"{op}: input shape {tuple(a)} and {what} shape {tuple(b)} do not broadcast")
        out.append(q if p == 1 else p)
    return tuple(out)


def _mask(mask, like: Tensor, op: str):
    """``mask`` (a bool Tensor, array or list) as a bool array on ``like``'s device."""
    if isinstance(mask, Tensor):
        if mask._backend is not like._backend:
            from backends import DeviceError
            raise DeviceError(f"{op}: mask is on {mask._backend.name}, the input on {like._backend.name}")
        arr = mask.array
    else:
        arr = like._backend.asarray(mask)
    if arr.dtype.kind != "b":
        raise TypeError(f"{op}: mask must be a bool tensor, got dtype {arr.dtype} (shape {tuple(arr.shape)}); "
                        "compare first, e.g. x > 0")
    return arr


def _lift(input: Tensor):
    """A 0-d input seen as shape (1,) (PyTorch treats it as a one-element vector along dim 0)."""
    return reshape(input, (1,))


# --- samples and references of the specs (small arrays, so the references loop) -----------------------------------
def _int64(d, values: list, shape):
    """``values`` as an int64 host array of ``shape``: the Drawer's ``index_array`` makes an array of the right
    length (op modules never import NumPy) and its drawn entries are overwritten."""
    arr = d.index_array(1, len(values))
    arr[...] = values
    return arr.reshape(tuple(shape))


def _draw_index(d, shape: tuple, dim: int, unique: bool = False):
    """An index for an input of ``shape`` along ``dim`` (non-negative): up to the input's size in the other dims and
    any length along ``dim``, values in [0, shape[dim]) that may repeat; with ``unique``, distinct along each line
    (so scatter writes each place once and its gradient is defined)."""
    n = shape[dim]
    ishape = [d.int(0, s) for s in shape]
    ishape[dim] = d.int(0, n) if unique else (d.int(0, 4) if n else 0)
    k, lines = ishape[dim], 1
    for i, s in enumerate(ishape):
        if i != dim:
            lines *= s
    if not (k and lines):
        return d.index_array(1, 0).reshape(tuple(ishape))
    if not unique:
        return (d.index_array(n, lines * k) % n).reshape(tuple(ishape))
    perm = d.permutation(range(n))
    flat = [perm[(j + off) % n] for off in (d.int(0, n - 1) for _ in range(lines)) for j in range(k)]
    others = [s for i, s in enumerate(ishape) if i != dim]
    arr = _int64(d, flat, others + [k])             # the lines first, dim last
    order = [i if i < dim else (len(others) if i == dim else i - 1) for i in range(len(shape))]
    return arr.transpose(order)


def _at(pos, dim: int, i: int) -> tuple:
    return tuple(i if a == dim else p for a, p in enumerate(pos))


def _loop_ref(np, x, src, dim, index, add):
    out = x.copy()
    dim %= x.ndim
    for pos in np.ndindex(*index.shape):
        v = src[pos] if hasattr(src, "shape") else src
        if add:
            out[_at(pos, dim, index[pos])] += v
        else:
            out[_at(pos, dim, index[pos])] = v
    return out


def _gather_ref(np, x, dim, index):
    dim %= x.ndim
    out = np.zeros(index.shape, x.dtype)
    for pos in np.ndindex(*index.shape):
        out[pos] = x[_at(pos, dim, index[pos])]
    return out


def _gather_sample(d):
    shape = d.shape(min_dims=1, max_dims=3)
    dim = d.int(-len(shape), len(shape) - 1)
    return [d.array(shape)], {"dim": dim, "index": _draw_index(d, shape, dim % len(shape))}


def _scatter_sample(unique: bool):
    def sample(d):
        shape = d.shape(min_dims=1, max_dims=3)
        dim = d.int(-len(shape), len(shape) - 1)
        index = _draw_index(d, shape, dim % len(shape), unique)
        if unique and d.bool():
            return [d.array(shape)], {"dim": dim, "index": index, "value": d.choice([0.0, -1.5])}
        src_shape = tuple(k + d.int(0, 1) for k in index.shape)     # src may be larger than the index
        return [d.array(shape), d.array(src_shape)], {"dim": dim, "index": index}
    return sample


def _vector_index(d, n: int):
    k = d.int(0, 5) if n else 0
    return d.index_array(n, k) % n if k else d.index_array(1, 0)


def _index_select_sample(d):
    shape = d.shape(min_dims=1, max_dims=3)
    dim = d.int(-len(shape), len(shape) - 1)
    return [d.array(shape)], {"dim": dim, "index": _vector_index(d, shape[dim])}


def _index_add_sample(d):
    shape = d.shape(min_dims=1, max_dims=3)
    dim = d.int(-len(shape), len(shape) - 1)
    index = _vector_index(d, shape[dim])
    src = tuple(len(index) if i == dim % len(shape) else n for i, n in enumerate(shape))
    return [d.array(shape), d.array(src)], {"dim": dim, "index": index, "alpha": d.choice([1, 2.5])}


def _index_add_ref(np, x, src, dim, index, alpha=1):
    out = x.copy()
    lead = (slice(None),) * (dim % x.ndim)
    for j, i in enumerate(index):
        out[lead + (i,)] += alpha * src[lead + (j,)]
    return out


def _take_along_dim_sample(d):
    shape = d.shape(min_dims=1, max_dims=3)
    size = 1
    for s in shape:
        size *= s
    if d.bool():
        k = d.int(0, 5) if size else 0
        idx = d.index_array(size, k) % size if k else d.index_array(1, 0)
        return [d.array(shape)], {"indices": idx.reshape(d.choice([(k,), (1, k)])), "dim": None}
    dim = d.int(-len(shape), len(shape) - 1)
    n = shape[dim]
    ishape = tuple((d.int(0, 3) if n else 0) if i == dim % len(shape) else d.choice([s, 1])
                   for i, s in enumerate(shape))
    m = 1
    for s in ishape:
        m *= s
    idx = d.index_array(n, m) if m else d.index_array(1, 0)        # negative ones count from the end
    return [d.array(shape)], {"indices": idx.reshape(ishape), "dim": dim}


def _take_along_dim_ref(np, x, indices, dim=None):
    if dim is None:
        return x.ravel()[indices.ravel()]
    return np.take_along_axis(x, indices, axis=dim)


def _masked_select_sample(d):
    xs, ms = d.shapes_broadcast(2)
    return [d.array(xs)], {"mask": d.bool_array(ms)}


def _masked_select_ref(np, x, mask):
    shape = np.broadcast_shapes(x.shape, mask.shape)
    return np.broadcast_to(x, shape)[np.broadcast_to(mask, shape)]


def _masked_sample(d):
    xs, ms = d.shapes_broadcast(2)
    mask = d.bool_array(ms)
    if d.bool():
        return [d.array(xs), d.array(())], {"mask": mask}
    return [d.array(xs)], {"mask": mask, "value": d.choice([0.0, -2.5])}


# --- ops ---------------------------------------------------------------------------------------------------------
class Gather(Function):
    """f[..., i, ...] = x[..., index[..., i, ...], ...] along ``dim``;  df/dx = the gradient added back where it was
    read (scatter_add into zeros, repeated places accumulate)."""
    needs_inputs = False
    spec = OpSpec(ref=_gather_ref, sample=_gather_sample, call=lambda x, dim, index: gather(x, dim, index))

    def forward(self, x):
        self.in_shape = x.shape
        return x[_grid(self.xp, self.index, self.dim)]

    def backward(self, gy):
        return ScatterAdd.apply(_zeros(self.in_shape, gy), gy, dim=self.dim, index=self.index)


class ScatterAdd(Function):
    """f = x with src[..., i, ...] added at x[..., index[..., i, ...], ...] along ``dim`` (repeats accumulate);
    df/dx = 1, df/dsrc = gather(gradient), zero for src outside the index's block."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, src, dim, index: _loop_ref(np, x, src, dim, index, add=True),
                  sample=_scatter_sample(False), call=lambda x, src, dim, index: scatter_add(x, dim, index, src))

    def forward(self, x, src):          # src has the index's shape (scatter_add slices a larger one)
        out = x.copy()
        self.backend.scatter_add(out, _grid(self.xp, self.index, self.dim), src)
        return out

    def backward(self, gy):
        gsrc = Gather.apply(gy, dim=self.dim, index=self.index) if self.inputs[1].requires_grad else None
        return gy, gsrc


class Scatter(Function):
    """f = x with src[..., i, ...] (or ``value``) written at x[..., index[..., i, ...], ...] along ``dim``;
    df/dx = the gradient with zeros where x was overwritten, df/dsrc = gather(gradient) (PyTorch's rule: where a
    place is written twice, only the last write reaches f, yet both src elements get the gradient)."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, *src, dim, index, value=None: _loop_ref(np, x, src[0] if src else value, dim,
                                                                           index, add=False),
                  sample=_scatter_sample(True),
                  call=lambda x, *src, dim, index, value=None: scatter(x, dim, index, src[0] if src else value))

    def forward(self, x, src=None):
        out = x.copy()
        grid = _grid(self.xp, self.index, self.dim)
        out[grid] = self.value if src is None else src      # src has the index's shape (scatter slices it)
        return out

    def backward(self, gy):
        x = self.inputs[0]
        gx = Scatter.apply(gy, dim=self.dim, index=self.index, value=0) if x.requires_grad else None
        if len(self.inputs) == 1:
            return gx
        gsrc = Gather.apply(gy, dim=self.dim, index=self.index) if self.inputs[1].requires_grad else None
        return gx, gsrc


class IndexSelect(Function):
    """f = the slices of x at ``index`` along ``dim``;  df/dx = index_add of the gradient into zeros (repeats
    accumulate)."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, dim, index: np.take(x, index, axis=dim), sample=_index_select_sample,
                  call=lambda x, dim, index: index_select(x, dim, index))

    def forward(self, x):
        self.in_shape = x.shape
        return self.xp.take(x, self.index, axis=self.dim)

    def backward(self, gy):
        return IndexAdd.apply(_zeros(self.in_shape, gy), gy, dim=self.dim, index=self.index, alpha=1)


class IndexAdd(Function):
    """f = x with alpha·source[..., j, ...] added to the slice index[j] along ``dim`` (repeats accumulate);
    df/dx = 1, df/dsource = alpha · index_select(gradient)."""
    needs_inputs = False
    spec = OpSpec(ref=_index_add_ref, sample=_index_add_sample,
                  call=lambda x, src, dim, index, alpha=1: index_add(x, dim, index, src, alpha=alpha))

    def forward(self, x, src):
        out = x.copy()
        self.backend.scatter_add(out, (slice(None),) * self.dim + (self.index,),
                                 src if self.alpha == 1 else src * self.alpha)
        return out

    def backward(self, gy):
        gs = None
        if self.inputs[1].requires_grad:
            gs = IndexSelect.apply(gy, dim=self.dim, index=self.index)
            if self.alpha != 1:
                gs = gs * self.alpha
        return gy, gs


# --- public functions --------------------------------------------------------------------------------------------
def _gather(input: Tensor, d: int, idx, op: str) -> Tensor:
    """Checked gather of ``input`` (rank >= 1) along normalised dim ``d`` at int64 array ``idx``."""
    _check_block(op, input.shape, tuple(idx.shape), d)
    _check_range(idx, input.shape[d], op, d)
    return Gather.apply(input, dim=d, index=idx)


@public(Gather, method=True)
def gather(input: Tensor, dim: int, index, *, sparse_grad: bool = False) -> Tensor:
    """Values of ``input`` along ``dim`` at ``index`` (same rank as ``input``, no larger apart from ``dim``;
    values in [0, size)); ``out[i][j] = input[index[i][j]][j]`` for ``dim=0``. ``sparse_grad`` is accepted and
    ignored: the gradient is dense."""
    _tensor(input, "gather")
    d = _dim(dim, input.ndim, "gather")
    idx = _index(index, input, "gather")
    if input.ndim == 0:
        if idx.ndim > 1:
            raise ValueError(f"gather: index must have as many dimensions as the input, got index shape "
                             f"{tuple(idx.shape)} for a 0-d input")
        return reshape(_gather(_lift(input), 0, idx.reshape(-1), "gather"), tuple(idx.shape))
    return _gather(input, d, idx, "gather")


@public(method=True, spec=OpSpec(ref=_take_along_dim_ref, sample=_take_along_dim_sample,
                                 call=lambda x, indices, dim=None: take_along_dim(x, indices, dim)))
def take_along_dim(input: Tensor, indices, dim=None) -> Tensor:
    """``input`` at ``indices`` along ``dim``, the two broadcast against each other apart from ``dim`` (NumPy's
    ``take_along_axis``; negative indices count from the end). ``dim=None``: the flattened input at the flattened
    indices (non-negative ones, as in PyTorch)."""
    op = "take_along_dim"
    _tensor(input, op)
    idx = _index(indices, input, op, "indices")
    if dim is None:
        return _gather(reshape(input, (-1,)), 0, idx.reshape(-1), op)
    d = _dim(dim, input.ndim, op)
    if idx.ndim != input.ndim:
        raise ValueError(f"{op}: input and indices must have the same number of dimensions, got shapes "
                         f"{input.shape} and {tuple(idx.shape)}")
    if input.ndim == 0:
        return reshape(take_along_dim(_lift(input), idx.reshape(1), 0), ())
    n = input.shape[d]
    rest = _broadcast_shape(input.shape[:d] + (1,) + input.shape[d + 1:],
                            tuple(idx.shape[:d]) + (1,) + tuple(idx.shape[d + 1:]), op, "indices")
    x = broadcast_to(input, rest[:d] + (n,) + rest[d + 1:])
    ishape = rest[:d] + (idx.shape[d],) + rest[d + 1:]
    if tuple(idx.shape) != ishape:
        idx = input.xp.broadcast_to(idx, ishape)
    _check_range(idx, n, op, d, negative=True)
    if idx.size and int(idx.min()) < 0:
        idx = input.xp.where(idx < 0, idx + n, idx)
    return _gather(x, d, idx, op)


def _scatter_args(op: str, input, dim, index, src):
    """Checked ``(input, dim, index, src)`` of scatter/scatter_add; a 0-d input is lifted to shape (1,)."""
    _tensor(input, op)
    d = _dim(dim, input.ndim, op)
    idx = _index(index, input, op)
    if isinstance(src, Tensor):
        _same_dtype(input, src, op)
    if input.ndim == 0:
        input, idx = _lift(input), idx.reshape(-1)
        if isinstance(src, Tensor) and src.ndim == 0:
            src = _lift(src)
    _check_block(op, input.shape, tuple(idx.shape), d, src.shape if isinstance(src, Tensor) else None)
    _check_range(idx, input.shape[d], op, d)
    if isinstance(src, Tensor) and src.shape != tuple(idx.shape):
        src = getitem(src, _block(idx.shape))     # the part the index reads; the rest gets a zero gradient
    return input, d, idx, src


@public(Scatter, method=True)
def scatter(input: Tensor, dim: int, index, src=None, *, value=None) -> Tensor:
    """A copy of ``input`` with ``src`` (a Tensor, or a number for every place) written at ``index`` along
    ``dim``: ``out[index[i][j]][j] = src[i][j]`` for ``dim=0``; ``value=`` is PyTorch's keyword for the number.
    Where ``index`` names a place twice the last write wins on the CPU (PyTorch leaves it unspecified).
    PyTorch's ``reduce=`` is not supported (use :func:`scatter_add`)."""
    if (src is None) == (value is None):
        raise TypeError("scatter: give src (a Tensor or a number) or value=, exactly one of them")
    src = value if src is None else src
    if not isinstance(src, Tensor) and not isinstance(src, (bool, int, float)):
        raise TypeError(f"scatter: src must be a Tensor or a number, got {type(src).__name__}")
    shape = input.shape if isinstance(input, Tensor) else None
    input, d, idx, src = _scatter_args("scatter", input, dim, index, src)
    if isinstance(src, Tensor):
        out = Scatter.apply(input, src, dim=d, index=idx)
    else:
        out = Scatter.apply(input, dim=d, index=idx, value=src)
    return out if out.shape == shape else reshape(out, shape)


@public(ScatterAdd, method=True)
def scatter_add(input: Tensor, dim: int, index, src: Tensor) -> Tensor:
    """A copy of ``input`` with ``src`` added at ``index`` along ``dim`` (repeated places accumulate):
    ``out[index[i][j]][j] += src[i][j]`` for ``dim=0``."""
    _tensor(src, "scatter_add", "src")
    shape = input.shape if isinstance(input, Tensor) else None
    input, d, idx, src = _scatter_args("scatter_add", input, dim, index, src)
    out = ScatterAdd.apply(input, src, dim=d, index=idx)
    return out if out.shape == shape else reshape(out, shape)


def _vector(index, input: Tensor, op: str):
    idx = _index(index, input, op)
    if idx.ndim > 1:
        raise IndexError(f"{op}: index must be a vector (0-d or 1-d), got shape {tuple(idx.shape)}")
    return idx.reshape(-1)


@public(IndexSelect, method=True)
def index_select(input: Tensor, dim: int, index) -> Tensor:
    """The slices of ``input`` at ``index`` (a 0-d or 1-d index, values in [0, size)) along ``dim``."""
    op = "index_select"
    _tensor(input, op)
    d = _dim(dim, input.ndim, op)
    idx = _vector(index, input, op)
    if input.ndim == 0:
        if idx.size != 1:
            raise IndexError(f"{op}: a 0-d input takes exactly one index, got {idx.size}")
        return reshape(index_select(_lift(input), 0, idx), ())
    _check_range(idx, input.shape[d], op, d)
    return IndexSelect.apply(input, dim=d, index=idx)


@public(IndexAdd, method=True)
def index_add(input: Tensor, dim: int, index, source: Tensor, *, alpha=1) -> Tensor:
    """A copy of ``input`` with ``alpha * source`` added to the slices at ``index`` along ``dim`` (repeated indices
    accumulate); ``source`` has ``input``'s shape with ``dim`` of the index's length."""
    op = "index_add"
    _tensor(input, op)
    _tensor(source, op, "source")
    d = _dim(dim, input.ndim, op)
    idx = _vector(index, input, op)
    _same_dtype(input, source, op)
    if not isinstance(alpha, (int, float)) or (isinstance(alpha, float) and input.dtype.kind not in "fc"):
        raise TypeError(f"{op}: alpha must be a number (an int for a {input.dtype} input), got {alpha!r}")
    if input.ndim == 0:
        out = index_add(_lift(input), 0, idx, reshape(source, (-1,)), alpha=alpha)
        return reshape(out, ())
    expected = input.shape[:d] + (idx.size,) + input.shape[d + 1:]
    if source.shape != expected:
        raise ValueError(f"{op}: source shape {source.shape} must be the input shape {input.shape} with dimension "
                         f"{d} of the index's length {idx.size}: {expected}")
    _check_range(idx, input.shape[d], op, d)
    return IndexAdd.apply(input, source, dim=d, index=idx, alpha=alpha)


@public(method=True, spec=OpSpec(ref=lambda np, x, *v, mask, value=None: np.where(mask, v[0] if v else value, x),
                                 sample=_masked_sample,
                                 call=lambda x, *v, mask, value=None: masked_fill(x, mask, v[0] if v else value)))
def masked_fill(input: Tensor, mask, value) -> Tensor:
    """``input`` with ``value`` (a number or a 0-d tensor, which gets the gradient of the filled places) where the
    bool ``mask`` is True; ``mask`` broadcasts with ``input``."""
    op = "masked_fill"
    _tensor(input, op)
    m = _mask(mask, input, op)
    _broadcast_shape(input.shape, tuple(m.shape), op)
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError(f"{op}: value must be a number or a 0-d tensor, got a tensor of shape {value.shape}")
        v = value if value.dtype == input.dtype else astype(value, input.dtype)
    elif isinstance(value, (bool, int, float)):
        try:
            v = const(input.xp.asarray(value, dtype=input.dtype), input)
        except (OverflowError, ValueError) as e:
            raise ValueError(f"{op}: value {value!r} does not fit dtype {input.dtype}") from e
    else:
        raise TypeError(f"{op}: value must be a number or a 0-d tensor, got {type(value).__name__}")
    return where(const(m, input), v, input)


@public(method=True, spec=OpSpec(ref=_masked_select_ref, sample=_masked_select_sample,
                                 call=lambda x, mask: masked_select(x, mask)))
def masked_select(input: Tensor, mask) -> Tensor:
    """The elements of ``input`` where the bool ``mask`` is True, as a 1-D tensor (the two broadcast first)."""
    op = "masked_select"
    _tensor(input, op)
    m = _mask(mask, input, op)
    shape = _broadcast_shape(input.shape, tuple(m.shape), op)
    if tuple(m.shape) != shape:
        m = input.xp.broadcast_to(m, shape)
    return getitem(broadcast_to(input, shape), m)


# --- in place (the library's in-place rule, Tensor.copy_) ---------------------------------------------------------
def _in_place(op: str, input, others, compute) -> Tensor:
    _tensor(input, op)
    if is_grad_enabled() and (input.requires_grad or any(isinstance(o, Tensor) and o.requires_grad
                                                         for o in others)):
        raise GraphError(f"{op}: in-place change of a tensor that {'requires' if input.requires_grad else 'would need'}"
                         f" grad (shape {input.shape}); do it under no_grad() or use the out-of-place {op[:-1]}")
    with no_grad():
        out = compute()
    if out.shape != input.shape:
        raise ValueError(f"{op}: the result has shape {out.shape}, not the input's {input.shape} "
                         "(the mask must broadcast to the input's shape)")
    input.copy_(out)
    return input


@public(method=True, export=False)
def masked_fill_(input: Tensor, mask, value) -> Tensor:
    """In-place :func:`masked_fill` (``mask`` must broadcast to ``input``'s shape)."""
    return _in_place("masked_fill_", input, (value,), lambda: masked_fill(input, mask, value))


@public(method=True, export=False)
def scatter_(input: Tensor, dim: int, index, src=None, *, value=None) -> Tensor:
    """In-place :func:`scatter`."""
    return _in_place("scatter_", input, (src,), lambda: scatter(input, dim, index, src, value=value))


@public(method=True, export=False)
def scatter_add_(input: Tensor, dim: int, index, src: Tensor) -> Tensor:
    """In-place :func:`scatter_add`."""
    return _in_place("scatter_add_", input, (src,), lambda: scatter_add(input, dim, index, src))


@public(method=True, export=False)
def index_add_(input: Tensor, dim: int, index, source: Tensor, *, alpha=1) -> Tensor:
    """In-place :func:`index_add`."""
    return _in_place("index_add_", input, (source,), lambda: index_add(input, dim, index, source, alpha=alpha))

