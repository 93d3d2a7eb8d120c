"""Shape, layout, indexing and dtype/device ops. Their gradients move values back, never compute."""
from __future__ import annotations

import itertools

import backends

from ..core import broadcast_to, sum_to  # noqa: F401  (public here: the engine's core ops)
from ..function import Function
from ..spec import OpSpec, composite, public
from ..tensor import Tensor, _make
from ._util import normalize_axis

__all__ = ["reshape", "permute", "transpose", "t", "movedim", "broadcast_to", "sum_to", "cat", "stack", "hstack",
           "vstack", "split", "tensor_split", "chunk", "unbind", "squeeze", "unsqueeze", "flatten", "unflatten",
           "expand", "expand_as", "repeat", "repeat_interleave", "tril", "triu", "diagonal", "diag", "roll", "flip",
           "fliplr", "flipud", "clone",
           "pad", "getitem", "astype", "transfer"]


def _reshape_sample(d):
    shape = d.shape(max_dims=3)
    n = 1
    for s in shape:
        n *= s
    # a target shape with the same size: factor n into up to three parts, maybe with a -1
    parts = []
    rest = n
    for _ in range(d.int(0, 2)):
        f = d.choice([k for k in range(1, rest + 1) if rest % k == 0] or [1])
        parts.append(f)
        rest //= f
    parts.append(rest)
    if d.bool() and n:
        parts[d.int(0, len(parts) - 1)] = -1
    return [d.array(shape)], {"shape": tuple(parts)}


class Reshape(Function):
    """f = x viewed with a new shape;  df/dx: reshape back."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, shape: np.reshape(x, shape), sample=_reshape_sample,
                  call=lambda x, shape: reshape(x, shape))

    def forward(self, x):
        self.in_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return reshape(gy, self.in_shape)


def _permute_sample(d):
    shape = d.shape(max_dims=4)
    return [d.array(shape)], {"dims": tuple(d.permutation(range(len(shape))))}


class Permute(Function):
    """f = x with its dims permuted;  df/dx: the inverse permutation."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, dims: np.transpose(x, dims), sample=_permute_sample,
                  call=lambda x, dims: permute(x, *dims))

    def forward(self, x):
        return self.xp.transpose(x, self.dims)

    def backward(self, gy):
        inv = [0] * len(self.dims)
        for i, a in enumerate(self.dims):
            inv[a] = i
        return permute(gy, *inv)


def _concat_sample(d):
    base = list(d.shape(min_dims=1, max_dims=3))
    dim = d.int(-len(base), len(base) - 1)
    shapes = []
    for _ in range(d.int(1, 3)):
        s = list(base)
        s[dim] = d.int(0, 3)
        shapes.append(tuple(s))
    return [d.array(s) for s in shapes], {"dim": dim}


class Concat(Function):
    """f = [x1, x2, ...] joined along a dim;  df/dxi = the matching slice of the gradient."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, *xs, dim: np.concatenate(xs, axis=dim), sample=_concat_sample,
                  call=lambda *xs, dim: cat(xs, dim=dim))

    def forward(self, *xs):
        self.sizes = [x.shape[self.dim] for x in xs] if xs[0].ndim else []
        return self.xp.concatenate(xs, axis=self.dim)

    def backward(self, gy):
        return tuple(split(gy, self.sizes, dim=self.dim))


def _split_sample(d):
    shape = list(d.shape(min_dims=1, max_dims=3))
    dim = d.int(-len(shape), len(shape) - 1)
    n = shape[dim]
    if d.bool() and n:
        return [d.array(tuple(shape))], {"split_size_or_sections": d.int(1, n), "dim": dim}
    sizes = []
    while sum(sizes) < n:
        sizes.append(d.int(0, n - sum(sizes)))
    return [d.array(tuple(shape))], {"split_size_or_sections": sizes or [0], "dim": dim}


def _split_ref(np, x, split_size_or_sections, dim):
    n = x.shape[dim]
    sizes = split_size_or_sections
    if isinstance(sizes, int):
        sizes = [min(sizes, n - i) for i in range(0, n, sizes)] or [0]
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=dim))


class Split(Function):
    """f = the pieces of x between cut points along a dim;  df/dx = the pieces' gradients joined."""
    needs_inputs = False
    spec = OpSpec(ref=_split_ref, sample=_split_sample, call=lambda x, **kw: tuple(split(x, **kw)))

    def forward(self, x):
        parts = tuple(self.xp.split(x, self.cuts, self.dim))
        self.shapes, self.in_dtype = [p.shape for p in parts], x.dtype
        return parts

    def backward(self, *gys):
        if len(gys) == 1:
            return gys[0]
        # a piece that received no gradient contributes zeros of its shape
        parts = [g if g is not None else _make(self.xp.zeros(s, self.in_dtype), self.backend, False)
                 for g, s in zip(gys, self.shapes)]
        return cat(parts, dim=self.dim)


def _pad_sample(d):
    shape = d.shape(min_dims=1, max_dims=3)
    k = d.int(1, len(shape))
    return [d.array(shape)], {"pad": tuple(d.int(0, 2) for _ in range(2 * k)), "value": d.choice([0.0, 1.5])}


def _pad_ref(np, x, pad, value=0.0):
    widths = [(0, 0)] * (x.ndim - len(pad) // 2) + [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)][::-1]
    return np.pad(x, widths, constant_values=value)


class Pad(Function):
    """f = x surrounded by a constant;  df/dx = the gradient's interior."""
    needs_inputs = False
    spec = OpSpec(ref=_pad_ref, sample=_pad_sample, call=lambda x, **kw: pad(x, **kw))

    def forward(self, x):
        self.slices = tuple(slice(lo, lo + n) for (lo, _), n in zip(self.pad_width, x.shape))
        return self.xp.pad(x, self.pad_width, mode="constant", constant_values=self.value)

    def backward(self, gy):
        return getitem(gy, self.slices)


def _is_basic(index) -> bool:
    """Basic indexing (ints, slices, None, Ellipsis) never repeats an element."""
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in items)


def _getitem_sample(d):
    shape = d.shape(min_dims=1, max_dims=3)
    kind = d.choice(["basic", "int", "bool"])
    if kind == "basic":
        idx = []
        for n in shape[:d.int(1, len(shape))]:
            if n and d.bool():
                idx.append(d.int(-n, n - 1))
            else:
                idx.append(slice(d.int(-n - 1, n), d.choice([None, d.int(-n - 1, n + 1)]), d.choice([None, 1, 2, -1])))
        if d.bool():
            idx.insert(d.int(0, len(idx)), None)
        index = tuple(idx)
    elif kind == "int" and shape[0]:
        index = d.index_array(shape[0], d.int(0, 5))    # may repeat: gradients must accumulate
    else:
        index = d.bool_array(shape[:1])
    return [d.array(shape)], {"index": index}


class GetItem(Function):
    """f = x[index] (basic, integer-array or boolean);  df/dx = gradient scattered back, repeats added."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, index: x[index], sample=_getitem_sample, call=lambda x, index: x[index])

    def forward(self, x):
        self.in_shape = x.shape
        return x[self.index]

    def backward(self, gy):
        return GetItemGrad.apply(gy, index=self.index, shape=self.in_shape)


class GetItemGrad(Function):
    """f = zeros(shape) with gy added at index;  df/dgy = f'[index] (so GetItem differentiates twice)."""
    exempt = "gradient helper of GetItem; its own gradient is GetItem, covered by GetItem's gradgradcheck"
    needs_inputs = False

    def forward(self, gy):
        out = self.xp.zeros(self.shape, dtype=gy.dtype)
        if _is_basic(self.index):
            out[self.index] = gy
        else:
            self.backend.scatter_add(out, self.index, gy)
        return out

    def backward(self, ggx):
        return getitem(ggx, self.index)


class Cast(Function):
    """f = x converted to another dtype;  df/dx = the gradient converted back."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, dtype: x.astype(dtype), call=lambda x, dtype: astype(x, dtype),
                  kwargs=lambda d, shapes: {"dtype": d.choice(["float64", "float32"])},
                  eps=1e-2, atol=1e-4, check_dtype=False)

    def forward(self, x):
        self.in_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return astype(gy, self.in_dtype)


class Transfer(Function):
    """f = x copied to another device;  df/dx = the gradient copied back."""
    exempt = "device copy: values are unchanged, so it is covered by the cross-backend tests"
    needs_inputs = False

    @classmethod
    def apply(cls, x, target):
        out = super().apply(x, target=target)
        out._backend = target
        return out

    def forward(self, x):
        return self.target.asarray(x)

    def backward(self, gy):
        return gy.to(self.backend)


def _shape_arg(shape, op: str) -> tuple:
    """PyTorch's size arguments: ``f(2, 3)``, ``f((2, 3))`` or ``f([2, 3])`` as a tuple of ints."""
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = shape[0]
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    for n in shape:
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"{op}: sizes must be ints, got {shape!r}")
    return shape


def _strided(t: Tensor) -> Tensor:
    """Mark ``t`` as a strided view made by the user (permute, transpose, expand): ``view`` then refuses a
    shape that its storage cannot give without a copy, as PyTorch does. Layouts the library chooses itself
    (batch-last convolution results) carry no mark, so ``view`` reshapes those wherever PyTorch's would work."""
    t._strided = True
    return t


@public(Reshape, method=True)
def reshape(input: Tensor, *shape) -> Tensor:
    """``input`` with a new shape: ``reshape(x, (2, 3))`` or ``x.reshape(2, 3)`` (one ``-1`` is inferred); a view
    where the storage allows, else a copy."""
    shape = _shape_arg(shape, "reshape")
    if shape == input.shape:
        return input
    return Reshape.apply(input, shape=shape)


@public(method=True, export=False)
def view(input: Tensor, *shape) -> Tensor:
    """``input`` with a new shape, sharing its storage (PyTorch's ``view``).

    Raises RuntimeError where the storage of a transposed, permuted or expanded tensor cannot be read in the
    new shape without a copy; ``reshape`` (or ``contiguous().view``) copies then."""
    if len(shape) == 1 and not isinstance(shape[0], (int, tuple, list)):
        raise TypeError(f"view: expected a shape, got {shape[0]!r} (views as another dtype are not supported)")
    out = reshape(input, *shape)
    if out is not input and getattr(input, "_strided", False) and out.array.size > 1:
        base = out.array.base
        if base is None or not (base is input.array or base is input.array.base):
            raise RuntimeError(f"view: a tensor of shape {input.shape} whose storage is strided (it was "
                               f"transposed, permuted or expanded) cannot be viewed as {out.shape} without a copy; "
                               "use .reshape(...) or .contiguous().view(...)")
    return out


@public(Permute, method=True)
def permute(input: Tensor, *dims) -> Tensor:
    """``input`` with its dims reordered: ``x.permute(2, 0, 1)``; ``dims`` must be a permutation of all dims."""
    dims = _shape_arg(dims, "permute")
    n = input.ndim
    norm = tuple(normalize_axis(d, max(n, 1), "permute") for d in dims) if n else dims
    if sorted(norm) != list(range(n)):
        raise ValueError(f"permute: dims {dims} are not a permutation of the {n} dims of a tensor of shape "
                         f"{input.shape}")
    if norm == tuple(range(n)):
        return input
    return _strided(Permute.apply(input, dims=norm))


@public(method=True, aliases=("swapaxes", "swapdims"))
def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """``input`` with ``dim0`` and ``dim1`` swapped (PyTorch's ``transpose``; :func:`permute` takes a whole
    permutation)."""
    n = max(input.ndim, 1)
    d0, d1 = normalize_axis(dim0, n, "transpose"), normalize_axis(dim1, n, "transpose")
    dims = list(range(input.ndim))
    if input.ndim:
        dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(input, *dims)


@public(method=True)
def t(input: Tensor) -> Tensor:
    """Transpose of a tensor of at most 2 dims (itself for 0-D and 1-D)."""
    if input.ndim > 2:
        raise ValueError(f"t: expects a tensor of at most 2 dims, got shape {input.shape}; use transpose or permute")
    return permute(input, *reversed(range(input.ndim)))


@public(method=True, aliases=("moveaxis",))
def movedim(input: Tensor, source, destination) -> Tensor:
    """Move dims ``source`` (int or sequence) to positions ``destination``, the others keeping their order."""
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(src) != len(dst):
        raise ValueError(f"movedim: {len(src)} source dims but {len(dst)} destinations")
    n = input.ndim
    src = [normalize_axis(d, n, "movedim") for d in src]
    dst = [normalize_axis(d, n, "movedim") for d in dst]
    rest = iter(d for d in range(n) if d not in src)
    where = dict(zip(dst, src))
    return permute(input, *[where[i] if i in where else next(rest) for i in range(n)])


@public(Concat, aliases=("concat", "concatenate"))
def cat(tensors, dim: int = 0) -> Tensor:
    """Join tensors of equal shape but along ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: need at least one tensor")
    from ._util import pair
    first = tensors[0] if isinstance(tensors[0], Tensor) else next((t for t in tensors if isinstance(t, Tensor)), None)
    if first is None:
        raise TypeError("cat: expected a sequence of tensors")
    tensors = [pair(t, first)[0] if not isinstance(t, Tensor) else t for t in tensors]
    if len(tensors) == 1:
        return tensors[0]
    return Concat.apply(*tensors, dim=dim)


@public()
def stack(tensors, dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: need at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    d = normalize_axis(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(t, d) for t in tensors], dim=d)


@public()
def hstack(tensors) -> Tensor:
    """Join along dim 1 (dim 0 for 1-D tensors)."""
    tensors = [reshape(t, (1,)) if t.ndim == 0 else t for t in tensors]
    return cat(tensors, dim=0 if tensors[0].ndim == 1 else 1)


@public(aliases=("row_stack",))
def vstack(tensors) -> Tensor:
    """Join along dim 0, 1-D tensors becoming rows."""
    return cat([reshape(t, (1, -1)) if t.ndim < 2 else t for t in tensors], dim=0)


@public(Split, method=True)
def split(tensor: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Pieces of ``tensor`` along ``dim``: of ``split_size_or_sections`` elements each (an int; the last may be
    smaller), or of the sizes listed (which must add up to the dim's size). PyTorch's ``split``."""
    d = normalize_axis(dim, max(tensor.ndim, 1), "split")
    if tensor.ndim == 0:
        raise ValueError("split: cannot split a 0-d tensor")
    n = tensor.shape[d]
    if isinstance(split_size_or_sections, int) and not isinstance(split_size_or_sections, bool):
        size = split_size_or_sections
        if size <= 0 and n:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [min(size, n - i) for i in range(0, n, size)] if n else [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise ValueError(f"split: sizes {sizes} do not add up to {n}, the size of dim {dim} of shape "
                             f"{tensor.shape}")
    if len(sizes) == 1:
        return (tensor,)
    return tuple(Split.apply(tensor, cuts=list(itertools.accumulate(sizes[:-1])), dim=d))


@public(method=True)
def tensor_split(input: Tensor, indices_or_sections, dim: int = 0) -> tuple:
    """NumPy's ``array_split``: ``n`` nearly equal sections (an int), or cuts before the indices listed."""
    d = normalize_axis(dim, max(input.ndim, 1), "tensor_split")
    n = input.shape[d]
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        if k <= 0:
            raise ValueError(f"tensor_split: the number of sections must be positive, got {k}")
        q, r = divmod(n, k)
        sizes = [q + 1] * r + [q] * (k - r)
    else:
        cuts = [min(max(int(i) if i >= 0 else n + int(i), 0), n) for i in indices_or_sections]
        bounds = [0] + cuts + [n]
        sizes = [max(b - a, 0) for a, b in zip(bounds, bounds[1:])]
        if sum(sizes) != n:      # decreasing cuts: NumPy gives empty pieces, then the rest
            return tuple(getitem(input, (slice(None),) * d + (slice(a, b),)) for a, b in zip(bounds, bounds[1:]))
    return split(input, sizes, d)


@public(method=True)
def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    """At most ``chunks`` pieces along ``dim``, each of ceil(n / chunks) elements but the last (PyTorch's
    ``chunk``: it may return fewer pieces)."""
    if not isinstance(chunks, int) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    n = input.shape[normalize_axis(dim, max(input.ndim, 1), "chunk")]
    return split(input, max(-(-n // chunks), 1), dim)


@public(method=True)
def unbind(input: Tensor, dim: int = 0) -> tuple:
    """The slices along ``dim``, that dim removed."""
    d = normalize_axis(dim, max(input.ndim, 1), "unbind")
    return tuple(squeeze(p, d) for p in split(input, 1, d)) if input.shape[d] else ()


@public(method=True)
def squeeze(input: Tensor, dim=None) -> Tensor:
    """Remove dims of size 1: all of them, or those in ``dim`` (an int or a tuple; a named dim of another size
    is left as it is, as in PyTorch)."""
    if dim is None:
        return reshape(input, tuple(n for n in input.shape if n != 1))
    if not input.ndim:
        normalize_axis(dim if isinstance(dim, int) else 0, 1, "squeeze")
        return input
    dims = {normalize_axis(a, input.ndim, "squeeze") for a in ((dim,) if isinstance(dim, int) else dim)}
    return reshape(input, tuple(n for i, n in enumerate(input.shape) if i not in dims or n != 1))


@public(method=True)
def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """Insert a dim of size 1 at ``dim`` (of the result)."""
    d = normalize_axis(dim, input.ndim + 1, "unsqueeze")
    return reshape(input, input.shape[:d] + (1,) + input.shape[d:])


@public(method=True)
def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim`` to ``end_dim`` (inclusive) into one; a 0-d tensor becomes 1-d."""
    if input.ndim == 0:
        return reshape(input, (1,))
    s = normalize_axis(start_dim, input.ndim, "flatten")
    e = normalize_axis(end_dim, input.ndim, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (shape {input.shape})")
    n = 1
    for k in input.shape[s:e + 1]:
        n *= k
    return reshape(input, input.shape[:s] + (n,) + input.shape[e + 1:])


@public(method=True)
def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    """Split dim ``dim`` into ``sizes`` (one of them may be -1)."""
    d = normalize_axis(dim, input.ndim, "unflatten")
    sizes = tuple(sizes)
    known = 1
    for k in sizes:
        known *= k if k != -1 else 1
    if sizes.count(-1) > 1 or (-1 not in sizes and known != input.shape[d]) or \
            (-1 in sizes and (known == 0 or input.shape[d] % known)):
        raise ValueError(f"unflatten: sizes {sizes} do not fit dim {dim} of size {input.shape[d]} "
                         f"(shape {input.shape})")
    if -1 in sizes:                 # resolved here: NumPy cannot infer it when another dim is 0
        sizes = tuple(input.shape[d] // known if k == -1 else k for k in sizes)
    return reshape(input, input.shape[:d] + sizes + input.shape[d + 1:])


@public(method=True)
def expand(input: Tensor, *sizes) -> Tensor:
    """``input`` broadcast to ``sizes`` without copying (-1 keeps a dim's size; new dims go in front)."""
    sizes = _shape_arg(sizes, "expand")
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise ValueError(f"expand: {len(sizes)} sizes for a tensor of {input.ndim} dims (shape {input.shape})")
    shape = tuple(input.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes))
    if any(n < 0 for n in shape):
        raise ValueError(f"expand: -1 is not allowed for the new leading dims, got sizes {sizes}")
    for i, n in enumerate(input.shape):
        if n != 1 and n != shape[lead + i]:
            raise ValueError(f"expand: dim {i} of size {n} cannot be expanded to {shape[lead + i]} "
                             f"(shape {input.shape} to {shape})")
    return input if shape == input.shape else _strided(broadcast_to(input, shape))


@public(method=True)
def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return expand(input, other.shape)


@public(method=True)
def repeat(input: Tensor, *sizes) -> Tensor:
    """``input`` tiled ``sizes[i]`` times along each dim (PyTorch's ``repeat``; more sizes than dims add leading
    dims). Made of a broadcast and a reshape, so its gradient sums the tiles."""
    sizes = _shape_arg(sizes, "repeat")
    if len(sizes) < input.ndim:
        raise ValueError(f"repeat: {len(sizes)} repeat counts for a tensor of {input.ndim} dims")
    if any(r < 0 for r in sizes):
        raise ValueError(f"repeat: counts must be non-negative, got {sizes}")
    shape = (1,) * (len(sizes) - input.ndim) + input.shape
    x = reshape(input, tuple(k for n in shape for k in (1, n)))          # (1, n0, 1, n1, ...)
    x = broadcast_to(x, tuple(k for r, n in zip(sizes, shape) for k in (r, n)))
    return reshape(x, tuple(r * n for r, n in zip(sizes, shape)))


@public(method=True)
def repeat_interleave(input: Tensor, repeats, dim=None) -> Tensor:
    """Each element repeated ``repeats`` times (an int, or one count per element along ``dim``); without
    ``dim`` the flattened tensor's elements."""
    x = input
    if dim is None:
        x, dim = reshape(input, (-1,)), 0
    d = normalize_axis(dim, x.ndim, "repeat_interleave")
    n = x.shape[d]
    xp = x.xp
    if isinstance(repeats, Tensor):
        repeats = repeats.array
    if isinstance(repeats, int) or getattr(repeats, "ndim", 1) == 0:
        counts = xp.full(n, int(repeats), dtype="int64")
    else:
        counts = xp.asarray(repeats).astype("int64")
        if counts.shape != (n,):
            raise ValueError(f"repeat_interleave: {counts.shape[0] if counts.ndim else 1} repeat counts for dim "
                             f"{dim} of size {n}")
    if bool((counts < 0).any()):
        raise ValueError("repeat_interleave: repeat counts must be non-negative")
    index = xp.repeat(xp.arange(n), counts)
    return getitem(x, (slice(None),) * d + (index,))


def _tri(input: Tensor, diagonal: int, lower: bool, op: str) -> Tensor:
    if input.ndim < 2:
        raise ValueError(f"{op}: expects a tensor of at least 2 dims, got shape {input.shape}")
    from .arithmetic import where
    xp = input.xp
    r, c = input.shape[-2:]
    mask = xp.tri(r, c, diagonal if lower else diagonal - 1, dtype=bool)
    return where(_make(mask if lower else ~mask, input.device, False), input, 0.0)


@public(method=True)
def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (on and below ``diagonal``), zeros elsewhere."""
    return _tri(input, diagonal, True, "tril")


@public(method=True)
def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (on and above ``diagonal``), zeros elsewhere."""
    return _tri(input, diagonal, False, "triu")


def _diag_index(xp, rows: int, cols: int, offset: int):
    k = max(min(rows, cols - offset) if offset >= 0 else min(rows + offset, cols), 0)
    i = xp.arange(k)
    return (i - min(offset, 0), i + max(offset, 0))


@public(method=True)
def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal of dims ``dim1``, ``dim2`` (``offset`` above it when positive), as the last dim."""
    a = normalize_axis(dim1, input.ndim, "diagonal")
    b = normalize_axis(dim2, input.ndim, "diagonal")
    if a == b:
        raise ValueError(f"diagonal: dim1 and dim2 are the same dim ({dim1})")
    x = movedim(input, (a, b), (-2, -1))
    rows, cols = _diag_index(x.xp, x.shape[-2], x.shape[-1], offset)
    return getitem(x, (Ellipsis, rows, cols))


@public(method=True)
def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-D tensor: the square matrix with it on diagonal ``diagonal``; a 2-D tensor: that diagonal."""
    if input.ndim == 2:
        return globals()["diagonal"](input, diagonal)
    if input.ndim != 1:
        raise ValueError(f"diag: expects a 1-D or 2-D tensor, got shape {input.shape}")
    n = input.shape[0] + abs(diagonal)
    index = _diag_index(input.xp, n, n, diagonal)
    return GetItemGrad.apply(input, index=index, shape=(n, n))


@public(method=True)
def roll(input: Tensor, shifts, dims=None) -> Tensor:
    """Elements shifted ``shifts`` places along ``dims`` (cyclically); without dims, of the flattened tensor."""
    if dims is None:
        return reshape(roll(reshape(input, (-1,)), shifts, 0), input.shape)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise ValueError(f"roll: {len(shifts)} shifts for {len(dims)} dims")
    out = input
    for s, dim in zip(shifts, dims):
        d = normalize_axis(dim, out.ndim, "roll")
        n = out.shape[d]
        if n and s % n:
            k = n - s % n            # out[i] = in[(i - s) mod n]: the last s elements come first
            head = getitem(out, (slice(None),) * d + (slice(k, None),))
            tail = getitem(out, (slice(None),) * d + (slice(0, k),))
            out = cat([head, tail], dim=d)
    return out


@public(method=True)
def flip(input: Tensor, *dims, **kwargs) -> Tensor:
    """``input`` with the order of elements reversed along ``dims``: ``x.flip(0, 2)``, ``flip(x, (0, 2))``,
    ``flip(x, dims=(0, 2))``."""
    if set(kwargs) - {"dims"} or bool(dims) == bool(kwargs):
        raise TypeError(f"flip: expected dims, positionally or as dims=, got {dims} and {sorted(kwargs)}")
    dims = _shape_arg(dims or (kwargs["dims"],), "flip")
    axes = {normalize_axis(d, input.ndim, "flip") for d in dims}
    return getitem(input, tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(input.ndim)))


@public(method=True)
def fliplr(input: Tensor) -> Tensor:
    return flip(input, 1)


@public(method=True)
def flipud(input: Tensor) -> Tensor:
    return flip(input, 0)


class Clone(Function):
    """f = a copy of x (its own storage);  df/dx = 1."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x: x.copy(), call=lambda x: clone(x))

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy


@public(Clone, method=True)
def clone(input: Tensor) -> Tensor:
    """A copy with its own storage, in the graph (gradients flow through it)."""
    return Clone.apply(input)


@public(method=True, export=False)
def contiguous(input: Tensor) -> Tensor:
    """``input`` itself, or a copy where it is a strided view (after transpose, permute or expand)."""
    return clone(input) if getattr(input, "_strided", False) else input


def _pad_widths(input: Tensor, pad) -> tuple:
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim or not all(isinstance(p, int) for p in pad):
        raise ValueError(f"pad: pad {pad} must be pairs of ints (last dim first) for at most the {input.ndim} "
                         f"dims of a tensor of shape {input.shape}")
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)][::-1]
    return ((0, 0),) * (input.ndim - len(pairs)) + tuple(pairs)


@public(Pad, functional=True)
def pad(input: Tensor, pad, mode: str = "constant", value=None) -> Tensor:
    """PyTorch's ``F.pad``: ``pad`` lists (before, after) widths from the last dim backwards,
    ``(left, right, top, bottom, ...)``; ``mode`` is ``constant`` (with ``value``, default 0), ``reflect``,
    ``replicate`` or ``circular``. Negative widths crop."""
    widths = _pad_widths(input, pad)
    if mode == "constant":
        if any(lo < 0 or hi < 0 for lo, hi in widths):     # crop first, then pad what is positive
            input = getitem(input, tuple(slice(-min(lo, 0), n + min(hi, 0) if hi < 0 else None)
                                         for (lo, hi), n in zip(widths, input.shape)))
            widths = tuple((max(lo, 0), max(hi, 0)) for lo, hi in widths)
        if not any(lo or hi for lo, hi in widths):
            return input
        return Pad.apply(input, pad_width=widths, value=0.0 if value is None else float(value))
    if mode not in ("reflect", "replicate", "circular"):
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}")
    if value:
        raise ValueError(f"pad: value is only used by mode='constant', got value={value} with mode={mode!r}")
    xp = input.xp
    out = input
    for d, (lo, hi) in enumerate(widths):
        if not (lo or hi):
            continue
        n = out.shape[d]
        i = xp.arange(-lo, n + hi)
        if mode == "replicate":
            i = xp.clip(i, 0, n - 1)
        elif mode == "circular":
            if lo > n or hi > n:
                raise ValueError(f"pad: circular padding ({lo}, {hi}) is wider than dim {d} of size {n}")
            i = i % n
        else:
            if lo >= n or hi >= n:
                raise ValueError(f"pad: reflect padding ({lo}, {hi}) must be smaller than dim {d} of size {n}")
            i = xp.abs(i)
            i = xp.where(i > n - 1, 2 * (n - 1) - i, i)
        out = getitem(out, (slice(None),) * d + (i,))
    return out


@public(GetItem, operators=('__getitem__',))
def getitem(x: Tensor, index) -> Tensor:
    if isinstance(index, Tensor):
        index = index.array
    elif isinstance(index, tuple):
        index = tuple(i.array if isinstance(i, Tensor) else i for i in index)
    elif isinstance(index, list):
        index = x._backend.asarray(index)
    return GetItem.apply(x, index=index)


@public(Cast, method=True)
def astype(x: Tensor, dtype) -> Tensor:
    """``x`` converted to ``dtype`` (NumPy's name for ``.to(dtype)``); differentiable between float dtypes."""
    dtype = x.xp.dtype(dtype)
    if dtype == x.dtype:
        return x
    if x._rg and dtype.kind not in "fc":
        return _make(x.array.astype(dtype), x._backend, False)   # integer results leave the graph
    return Cast.apply(x, dtype=dtype)


@public(Transfer)
def transfer(x: Tensor, backend) -> Tensor:
    return Transfer.apply(x, target=backend)


def _is_dtype(v, xp) -> bool:
    if isinstance(v, str):
        try:
            xp.dtype(v)
        except TypeError:
            return False
        return v not in ("cpu", "cuda") and not v.startswith("cuda:")
    return isinstance(v, type) or hasattr(v, "kind") and hasattr(v, "itemsize")


@public(method=True, export=False)
def to(x: Tensor, *args, device=None, dtype=None, non_blocking: bool = False, copy: bool = False) -> Tensor:
    """PyTorch's ``to``: ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(other)`` (its device and
    dtype), or keywords. Differentiable; leaves move as leaves (parameters stay leaves on the new device);
    ``copy=True`` always gives new storage."""
    for a in args:
        if isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        elif _is_dtype(a, x.xp):
            dtype = a
        elif device is None:
            device = a
        else:
            raise TypeError(f"to: unexpected argument {a!r} (expected a device, a dtype or a tensor)")
    out = x
    if device is not None:
        be = backends.get_backend(device)
        if be is not x.device:
            out = _make(be.asarray(x.array), be, x.requires_grad) if x.creator is None else transfer(x, be)
    if dtype is not None:
        out = astype(out, dtype)
    if copy and out is x:
        out = clone(x)
    return out


def _converter(dtype: str, name: str):
    def convert(input: Tensor) -> Tensor:
        return astype(input, dtype)
    convert.__name__ = convert.__qualname__ = name
    convert.__doc__ = f"``input`` as {dtype} (``to({dtype})``)."
    return convert


for _name, _dtype in (("float", "float32"), ("double", "float64"), ("half", "float16"), ("long", "int64"),
                      ("int", "int32"), ("short", "int16"), ("char", "int8"), ("byte", "uint8"), ("bool", "bool")):
    public(method=True, export=False)(_converter(_dtype, _name))
del _name, _dtype


@public(method=True, export=False)
def type_as(input: Tensor, other: Tensor) -> Tensor:
    """``input`` in ``other``'s dtype."""
    return astype(input, other.dtype)


composite("transpose", OpSpec(ref=lambda np, x, dim0, dim1: np.swapaxes(x, dim0, dim1), shapes="min1dim",
                              call=lambda x, **kw: transpose(x, **kw),
                              kwargs=lambda d, shapes: {"dim0": d.int(-len(shapes[0]), len(shapes[0]) - 1),
                                                        "dim1": d.int(-len(shapes[0]), len(shapes[0]) - 1)}))
composite("stack", OpSpec(ref=lambda np, *xs, dim: np.stack(xs, axis=dim),
                          sample=lambda d: (lambda s, k: ([d.array(s) for _ in range(k)],
                                                          {"dim": d.int(-len(s) - 1, len(s))}))(
                              d.shape(max_dims=3), d.int(1, 3)),
                          call=lambda *xs, dim: stack(xs, dim=dim)))
composite("squeeze", OpSpec(ref=lambda np, x: np.squeeze(x), call=lambda x: squeeze(x)))
composite("unsqueeze", OpSpec(ref=lambda np, x, dim: np.expand_dims(x, dim), call=lambda x, dim: unsqueeze(x, dim),
                              kwargs=lambda d, shapes: {"dim": d.int(-len(shapes[0]) - 1, len(shapes[0]))}))


def _flatten_ref(np, x, start_dim=0, end_dim=-1):
    s, e = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:])


def _flatten_kwargs(d, shapes):
    n = len(shapes[0])
    s = d.int(0, n - 1)
    return {"start_dim": s, "end_dim": d.int(s, n - 1) - (n if d.bool() else 0)}


composite("flatten", OpSpec(ref=_flatten_ref, call=lambda x, **kw: flatten(x, **kw), shapes="min1dim",
                            kwargs=_flatten_kwargs))


def _repeat_sample(d):
    shape = d.shape(max_dims=3)
    return [d.array(shape)], {"sizes": tuple(d.int(0, 3) for _ in range(len(shape) + d.int(0, 1)))}


composite("repeat", OpSpec(ref=lambda np, x, sizes: np.tile(x, sizes), sample=_repeat_sample,
                           call=lambda x, sizes: repeat(x, *sizes)))
composite("roll", OpSpec(ref=lambda np, x, shifts, dims: np.roll(x, shifts, dims), shapes="min1dim",
                         call=lambda x, **kw: roll(x, **kw),
                         kwargs=lambda d, shapes: {"shifts": d.int(-5, 5), "dims": d.int(0, len(shapes[0]) - 1)}))
composite("flip", OpSpec(ref=lambda np, x, dims: np.flip(x, dims), shapes="min1dim", call=lambda x, dims: flip(x, dims),
                         kwargs=lambda d, shapes: {"dims": d.int(0, len(shapes[0]) - 1)}))
composite("tril", OpSpec(ref=lambda np, x, diagonal: np.tril(x, diagonal), call=lambda x, **kw: tril(x, **kw),
                         shapes=lambda d: [d.shape(min_dims=2)], kwargs=lambda d, shapes: {"diagonal": d.int(-2, 2)}))
composite("triu", OpSpec(ref=lambda np, x, diagonal: np.triu(x, diagonal), call=lambda x, **kw: triu(x, **kw),
                         shapes=lambda d: [d.shape(min_dims=2)], kwargs=lambda d, shapes: {"diagonal": d.int(-2, 2)}))
composite("diag", OpSpec(ref=lambda np, x, diagonal: np.diag(x, diagonal), call=lambda x, **kw: diag(x, **kw),
                         shapes=lambda d: [d.shape(min_dims=1, max_dims=2)],
                         kwargs=lambda d, shapes: {"diagonal": d.int(-2, 2)}))
composite("repeat_interleave", OpSpec(ref=lambda np, x, repeats, dim: np.repeat(x, repeats, dim), shapes="min1dim",
                                      call=lambda x, **kw: repeat_interleave(x, **kw),
                                      kwargs=lambda d, shapes: {"repeats": d.int(0, 3),
                                                                "dim": d.int(0, len(shapes[0]) - 1)}))


def _dim_of(d, shapes, extra: int = 0) -> dict:
    return {"dim": d.int(-len(shapes[0]) - extra, len(shapes[0]) - 1 + extra)}


def _view_sample(d):
    [x], kw = _reshape_sample(d)
    return [x], {"shape": kw["shape"]}


def _movedim_sample(d):
    shape = d.shape(min_dims=1, max_dims=4)
    n = len(shape)
    k = d.int(1, n)
    source, destination = tuple(d.permutation(range(n))[:k]), tuple(d.permutation(range(n))[:k])
    return [d.array(shape)], {"source": source, "destination": destination}


def _expand_sample(d):
    shape = d.shape(max_dims=3)
    sizes = [d.int(1, 3) for _ in range(d.int(0, 1))] + [(-1 if d.bool() else d.int(1, 3)) if n == 1 else
                                                          (-1 if d.bool() else n) for n in shape]
    return [d.array(shape)], {"sizes": tuple(sizes)}


def _unflatten_sample(d):
    shape = list(d.shape(min_dims=1, max_dims=3))
    dim = d.int(0, len(shape) - 1)
    n = shape[dim]
    k = d.choice([k for k in range(1, n + 1) if n % k == 0] or [1])
    sizes = (k, n // k) if n else (0, 1)
    if d.bool() and n:
        sizes = (k, -1)
    return [d.array(tuple(shape))], {"dim": dim, "sizes": sizes}


def _diagonal_sample(d):
    shape = d.shape(min_dims=2, max_dims=3)
    n = len(shape)
    a, b = d.permutation(range(n))[:2]
    return [d.array(shape)], {"offset": d.int(-2, 2), "dim1": a, "dim2": b}


def _pad_mode_sample(d):
    shape = d.shape(min_dims=1, max_dims=3, min_side=3)
    k = d.int(1, len(shape))
    return [d.array(shape)], {"pad": tuple(d.int(0, 2) for _ in range(2 * k)),
                              "mode": d.choice(["reflect", "replicate", "circular"])}


def _pad_mode_ref(np, x, pad, mode):
    widths = [(0, 0)] * (x.ndim - len(pad) // 2) + [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)][::-1]
    return np.pad(x, widths, mode={"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode])


def _stack2(d, max_dims=2):
    base = list(d.shape(min_dims=1, max_dims=max_dims))
    shapes = []
    for _ in range(d.int(1, 3)):
        s = list(base)
        s[0 if len(s) == 1 else 1] = d.int(0, 3)
        shapes.append(tuple(s))
    return [d.array(s) for s in shapes], {}


composite("view", OpSpec(ref=lambda np, x, shape: np.reshape(x, shape), sample=_view_sample,
                         call=lambda x, shape: view(x, *shape)))
composite("t", OpSpec(ref=lambda np, x: x.T, shapes=lambda d: [d.shape(max_dims=2)], call=lambda x: t(x)))
composite("movedim", OpSpec(ref=lambda np, x, source, destination: np.moveaxis(x, source, destination),
                            sample=_movedim_sample, call=lambda x, **kw: movedim(x, **kw)))
composite("expand", OpSpec(ref=lambda np, x, sizes: np.broadcast_to(
    x, tuple(x.shape[i - (len(sizes) - x.ndim)] if s == -1 else s for i, s in enumerate(sizes))),
    sample=_expand_sample, call=lambda x, sizes: expand(x, *sizes)))
composite("unflatten", OpSpec(ref=lambda np, x, dim, sizes: x.reshape(x.shape[:dim] + tuple(
    x.shape[dim] // -int(np.prod(sizes)) if s == -1 else s for s in sizes) + x.shape[dim + 1:]),
    sample=_unflatten_sample, call=lambda x, **kw: unflatten(x, **kw)))
composite("chunk", OpSpec(ref=lambda np, x, chunks, dim: tuple(np.array_split(x, -(-x.shape[dim] // max(
    -(-x.shape[dim] // chunks), 1)), axis=dim)) if x.shape[dim] else (x,), shapes="min1dim",
    call=lambda x, **kw: chunk(x, **kw), kwargs=lambda d, shapes: {"chunks": d.int(1, 4), **_dim_of(d, shapes)}))
composite("tensor_split", OpSpec(ref=lambda np, x, indices_or_sections, dim: tuple(np.array_split(
    x, indices_or_sections, axis=dim)), shapes="min1dim", call=lambda x, **kw: tensor_split(x, **kw),
    kwargs=lambda d, shapes: {"indices_or_sections": d.int(1, 4), **_dim_of(d, shapes)}))
composite("unbind", OpSpec(ref=lambda np, x, dim: tuple(np.moveaxis(x, dim, 0)), shapes="min1dim",
                           call=lambda x, **kw: unbind(x, **kw), kwargs=_dim_of))
composite("hstack", OpSpec(ref=lambda np, *xs: np.hstack(xs), sample=_stack2, call=lambda *xs: hstack(xs)))
composite("vstack", OpSpec(ref=lambda np, *xs: np.vstack(xs), sample=lambda d: (lambda s: (
    [d.array(s) for _ in range(d.int(1, 3))], {}))(d.shape(min_dims=1, max_dims=2)), call=lambda *xs: vstack(xs)))
composite("diagonal", OpSpec(ref=lambda np, x, offset, dim1, dim2: np.diagonal(x, offset, dim1, dim2),
                             sample=_diagonal_sample, call=lambda x, **kw: diagonal(x, **kw)))
composite("pad(mode)", OpSpec(ref=_pad_mode_ref, sample=_pad_mode_sample, call=lambda x, **kw: pad(x, **kw)))
