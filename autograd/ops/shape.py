"""Shape, layout, indexing and dtype/device ops. Their gradients move values back, never compute."""
from __future__ import annotations

import operator

import backends

from ..core import broadcast_to, sum_to  # noqa: F401  (public here: the engine's core ops)
from ..function import Function
from ..spec import OpSpec, composite, public
from ..tensor import Tensor, _make
from ._util import normalize_axis

__all__ = ["reshape", "transpose", "broadcast_to", "sum_to", "concat", "stack", "split", "squeeze",
           "unsqueeze", "flatten", "pad", "getitem", "astype", "transfer"]


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


def _transpose_sample(d):
    shape = d.shape(max_dims=4)
    axes = None if d.bool() else tuple(d.permutation(range(len(shape))))
    return [d.array(shape)], {"axes": axes}


class Transpose(Function):
    """f = x with axes permuted;  df/dx: the inverse permutation."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, axes: np.transpose(x, axes), sample=_transpose_sample,
                  call=lambda x, axes: transpose(x, *(axes or ())))

    def forward(self, x):
        if self.axes is not None and sorted(operator.index(a) % max(x.ndim, 1) for a in self.axes) != \
                list(range(x.ndim)):
            raise ValueError(f"axes {self.axes} are not a permutation of the {x.ndim} axes")
        return self.xp.transpose(x, self.axes)

    def backward(self, gy):
        if self.axes is None:
            return transpose(gy)
        ndim = len(self.axes)
        inv = [0] * ndim
        for i, a in enumerate(self.axes):
            inv[a % ndim] = i
        return transpose(gy, *inv)


def _concat_sample(d):
    base = list(d.shape(min_dims=1, max_dims=3))
    axis = d.int(-len(base), len(base) - 1)
    shapes = []
    for _ in range(d.int(1, 3)):
        s = list(base)
        s[axis] = d.int(0, 3)
        shapes.append(tuple(s))
    return [d.array(s) for s in shapes], {"axis": axis}


class Concat(Function):
    """f = [x1, x2, ...] joined along an axis;  df/dxi = the matching slice of the gradient."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, *xs, axis: np.concatenate(xs, axis=axis), sample=_concat_sample,
                  call=lambda *xs, axis: concat(xs, axis=axis))

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs] if xs[0].ndim else []
        return self.xp.concatenate(xs, axis=self.axis)

    def backward(self, gy):
        bounds = []
        acc = 0
        for s in self.sizes[:-1]:
            acc += s
            bounds.append(acc)
        return tuple(split(gy, bounds, axis=self.axis))


def _split_sample(d):
    shape = list(d.shape(min_dims=1, max_dims=3))
    axis = d.int(-len(shape), len(shape) - 1)
    n = shape[axis]
    if d.bool():
        k = d.choice([k for k in range(1, n + 1) if n % k == 0] or [1])
        return [d.array(tuple(shape))], {"indices_or_sections": k, "axis": axis}
    cuts = sorted(d.int(0, n) for _ in range(d.int(0, 3)))
    return [d.array(tuple(shape))], {"indices_or_sections": cuts, "axis": axis}


class Split(Function):
    """f = the pieces of x along an axis (NumPy's ``split``);  df/dx = the pieces' gradients joined."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, indices_or_sections, axis: tuple(np.split(x, indices_or_sections, axis)),
                  sample=_split_sample, call=lambda x, **kw: tuple(split(x, **kw)))

    def forward(self, x):
        parts = tuple(self.xp.split(x, self.indices_or_sections, self.axis))
        self.shapes, self.in_dtype = [p.shape for p in parts], x.dtype
        return parts

    def backward(self, *gys):
        if len(gys) == 1:
            return gys[0]
        # a piece that received no gradient contributes zeros of its shape
        parts = [g if g is not None else _make(self.xp.zeros(s, self.in_dtype), self.backend, False)
                 for g, s in zip(gys, self.shapes)]
        return concat(parts, axis=self.axis)


def _pad_sample(d):
    shape = d.shape(min_dims=1, max_dims=3)
    widths = tuple((d.int(0, 2), d.int(0, 2)) for _ in shape)
    return [d.array(shape)], {"pad_width": widths, "value": d.choice([0.0, 1.5])}


class Pad(Function):
    """f = x surrounded by a constant;  df/dx = the gradient's interior."""
    needs_inputs = False
    spec = OpSpec(ref=lambda np, x, pad_width, value=0.0: np.pad(x, pad_width, constant_values=value),
                  sample=_pad_sample, call=lambda x, **kw: pad(x, **kw))

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


@public(Reshape, method=True)
def reshape(x: Tensor, *shape) -> Tensor:
    """``x`` with a new shape: ``reshape(x, (2, 3))`` or ``x.reshape(2, 3)`` (one ``-1`` is inferred)."""
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = shape[0]
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if shape == x.shape:
        return x
    return Reshape.apply(x, shape=shape)


@public(Transpose, method=True)
def transpose(x: Tensor, *axes) -> Tensor:
    """Permute axes (NumPy's meaning: no axes reverses them)."""
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    return Transpose.apply(x, axes=tuple(axes) if axes else None)


@public(Concat)
def concat(tensors, axis: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concat: need at least one tensor")
    from ._util import pair
    first = tensors[0]
    tensors = [pair(t, first)[0] if not isinstance(t, Tensor) else t for t in tensors]
    return Concat.apply(*tensors, axis=axis)


@public()
def stack(tensors, axis: int = 0) -> Tensor:
    """Join along a new axis."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: need at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    ax = normalize_axis(axis, tensors[0].ndim + 1, "stack")
    return concat([unsqueeze(t, ax) for t in tensors], axis=ax)


@public(Split)
def split(x: Tensor, indices_or_sections, axis: int = 0) -> list:
    """NumPy's ``split``: equal sections (an int) or cut points (a sequence)."""
    if not isinstance(indices_or_sections, int):
        indices_or_sections = list(indices_or_sections)
    return list(Split.apply(x, indices_or_sections=indices_or_sections, axis=axis))


@public(method=True)
def squeeze(x: Tensor, axis=None) -> Tensor:
    """Remove size-1 axes (all of them, or those named)."""
    if axis is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    axes = {normalize_axis(a, x.ndim, "squeeze") for a in ((axis,) if isinstance(axis, int) else axis)}
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} of shape {x.shape} has size {x.shape[a]}, not 1")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


@public(method=True)
def unsqueeze(x: Tensor, axis: int) -> Tensor:
    """Insert a size-1 axis at ``axis`` (of the result)."""
    ax = normalize_axis(axis, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:ax] + (1,) + x.shape[ax:])


@public(method=True)
def flatten(x: Tensor, start_axis: int = 0) -> Tensor:
    """Merge axes from ``start_axis`` on into one."""
    ax = normalize_axis(start_axis, max(x.ndim, 1), "flatten") if x.ndim else 0
    n = 1
    for s in x.shape[ax:]:
        n *= s
    return reshape(x, x.shape[:ax] + (n,))


@public(Pad)
def pad(x: Tensor, pad_width, value: float = 0.0) -> Tensor:
    """Constant padding, ``pad_width`` as in ``numpy.pad`` (an int, a pair, or one pair per axis)."""
    if isinstance(pad_width, int):
        pad_width = ((pad_width, pad_width),) * x.ndim
    elif len(pad_width) == 2 and all(isinstance(p, int) for p in pad_width):
        pad_width = (tuple(pad_width),) * x.ndim
    pad_width = tuple((int(lo), int(hi)) for lo, hi in pad_width)
    if len(pad_width) != x.ndim or any(lo < 0 or hi < 0 for lo, hi in pad_width):
        raise ValueError(f"pad: pad_width {pad_width} does not fit a tensor of shape {x.shape} "
                         "(one non-negative pair per axis)")
    return Pad.apply(x, pad_width=pad_width, value=value)


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
    dtype = x.xp.dtype(dtype)
    if dtype == x.dtype:
        return x
    if x._rg and dtype.kind not in "fc":
        return _make(x.array.astype(dtype), x._backend, False)   # integer results leave the graph
    return Cast.apply(x, dtype=dtype)


@public(Transfer)
def transfer(x: Tensor, backend) -> Tensor:
    return Transfer.apply(x, target=backend)


@public(method=True, export=False)
def to(x: Tensor, device) -> Tensor:
    """``x`` on ``device`` (itself when already there); differentiable. Leaves move as leaves (parameters stay
    leaves on the new device)."""
    be = backends.get_backend(device)
    if be is x.device:
        return x
    if x.creator is None:
        return _make(be.asarray(x.array), be, x.requires_grad)
    return transfer(x, be)


composite("stack", OpSpec(ref=lambda np, *xs, axis: np.stack(xs, axis=axis),
                          sample=lambda d: (lambda s, k: ([d.array(s) for _ in range(k)],
                                                          {"axis": d.int(-len(s) - 1, len(s))}))(
                              d.shape(max_dims=3), d.int(1, 3)),
                          call=lambda *xs, axis: stack(xs, axis=axis)))
composite("squeeze", OpSpec(ref=lambda np, x: np.squeeze(x), call=lambda x: squeeze(x)))
composite("unsqueeze", OpSpec(ref=lambda np, x, axis: np.expand_dims(x, axis), call=lambda x, axis: unsqueeze(x, axis),
                              kwargs=lambda d, shapes: {"axis": d.int(-len(shapes[0]) - 1, len(shapes[0]))}))
composite("flatten", OpSpec(ref=lambda np, x, start_axis=0: x.reshape(x.shape[:start_axis] +
                                                                      (int(np.prod(x.shape[start_axis:])),)),
                            call=lambda x, **kw: flatten(x, **kw), shapes="min1dim",
                            kwargs=lambda d, shapes: {"start_axis": d.int(0, len(shapes[0]) - 1)}))
