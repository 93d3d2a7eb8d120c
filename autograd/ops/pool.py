"""Pooling over windows of (N, C, H, W): max and average as fused ops, adaptive average, 1-D forms.

Each window position is visited by a loop over the kh·kw kernel offsets, every step one vectorised
operation on a strided view of all windows at once. Max pooling keeps, per output, the offset of the first
maximum (so ties route the gradient to exactly one element); its backward scatters the gradient there and
the scatter's backward gathers from there, so max pooling differentiates to any order. Average pooling's
backward spreads the scaled gradient over each window; that op's backward is average pooling again.
When the windows tile the input exactly (stride = kernel, no padding: the usual 2x2 pooling) the forward
and backward are the backend's fused ``max_pool_tiles`` (a C kernel on the CPU, see
:mod:`backends.cpu_kernels`), and the backward writes every input element once, without a zero fill or
accumulation. Large results of max pooling and its backward come from the backend's buffers
(``self.backend.buffers``: on the CPU, recycled once nothing references them, so no page faults).

The window geometry is :class:`autograd.ops._grid._Geom`; the test samples and naive references are in
:mod:`autograd.ops._references`.
"""
from __future__ import annotations

from ..errors import OpTypeError, OpValueError, renamed
from ..function import Function
from ..spec import OpSpec, composite, public
from ..tensor import Tensor
from ._grid import _counts, _Geom, _out_size
from ._references import (_adaptive_ref, _adaptive_sample, _avg_scatter_ref, _avg_scatter_sample, _avgpool1d_ref,
                          _avgpool_ref, _avgpool_sample, _distinct, _gather_ref, _gather_sample, _maxpool1d_ref,
                          _maxpool_ref, _maxpool_sample, _pool1d_sample, _scatter_ref, _scatter_sample)
from ._util import const, int_pair
from .linalg import matmul
from .reduction import mean as _mean
from .shape import reshape

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "max_pool1d", "avg_pool1d"]


def _geom(fn, x_shape) -> _Geom:
    return _Geom(x_shape[2:], fn.kernel, fn.stride, fn.pad, fn.dilation, fn.out)


class MaxPool2d(Function):
    """f = max over each window (padding is −∞);  df/dx = g at the window's first maximum, 0 elsewhere."""
    spec = OpSpec(ref=_maxpool_ref, sample=_maxpool_sample, prepare=_distinct, call=lambda x, **kw: max_pool2d(x, **kw))
    needs_inputs = False
    indices = None      # optional dict that receives the argmax offsets (for return_indices)

    def forward(self, x):
        xp = self.xp
        g = self.geom = _geom(self, x.shape).follow(x)
        if g.tiles and x.size:
            y, self.arg = g.tile_max(xp, x, fn=self)
            if self.indices is not None:
                self.indices["arg"] = self.arg.offsets(xp)
            return y
        buf = g.frame(xp, x, -xp.inf)
        views = [g.win(buf, i, j) for _, (i, j) in g.offsets()]
        shape = x.shape[:2] + (g.OH, g.OW)
        y = g.alloc(xp, shape, x.dtype, fn=self)
        if len(views) == 1:
            y[...] = views[0]
        else:
            xp.maximum(views[0], views[1], out=y)      # NaN propagates, as in PyTorch
        for v in views[2:]:
            xp.maximum(y, v, out=y)
        # argmax = the number of leading offsets whose value is not the maximum (so ties take the first)
        arg = g.alloc(xp, shape, "int8" if len(views) <= 127 else "int32", zero=len(views) == 1, fn=self)
        if len(views) > 1:
            behind = views[0] != y
            arg[...] = behind
            for v in views[1:-1]:
                behind &= v != y
                arg += behind
        self.arg = arg
        if self.indices is not None:
            self.indices["arg"] = arg
        return y

    def backward(self, gy):
        return MaxPool2dScatter.apply(gy, arg=self.arg, geom=self.geom)


# The max-pooling helper nodes are tested on their own: their spec calls build the geometry from plain
# keyword arguments and put the drawn argmax offsets on the input's device.
def _scatter_call(gy, x_shape, arg, **kw):
    geom = _Geom(x_shape[2:], kw["kernel"], kw["stride"], kw["pad"], kw["dilation"], kw["out"])
    return MaxPool2dScatter.apply(gy, arg=gy._backend.asarray(arg), geom=geom)


def _gather_call(z, arg, **kw):
    geom = _Geom(z.shape[2:], kw["kernel"], kw["stride"], kw["pad"], kw["dilation"], kw["out"])
    return MaxPool2dGather.apply(z, arg=z._backend.asarray(arg), geom=geom)


class MaxPool2dScatter(Function):
    """f = zeros of the input's shape with g[n,c,oh,ow] at the argmax of window (oh, ow);
    df/dg = the gather from the same positions (MaxPool2dGather)."""
    spec = OpSpec(ref=_scatter_ref, sample=_scatter_sample, call=_scatter_call)
    needs_inputs = False

    def forward(self, gy):
        return self.geom.spread(self.xp, gy, self.arg, fn=self)

    def backward(self, ggx):
        return MaxPool2dGather.apply(ggx, arg=self.arg, geom=self.geom)


class MaxPool2dGather(Function):
    """f[n,c,oh,ow] = z at the recorded argmax of window (oh, ow);  df/dz = the scatter (MaxPool2dScatter)."""
    spec = OpSpec(ref=_gather_ref, sample=_gather_sample, call=_gather_call)
    needs_inputs = False

    def forward(self, z):
        return self.geom.gather(self.xp, z, self.arg)

    def backward(self, gy):
        return MaxPool2dScatter.apply(gy, arg=self.arg, geom=self.geom)


class AvgPool2d(Function):
    """f = (Σ over each window, zero padding) / divisor;  df/dx = g/divisor spread over the window."""
    spec = OpSpec(ref=_avgpool_ref, sample=_avgpool_sample, call=lambda x, **kw: avg_pool2d(x, **kw))
    needs_inputs = False

    def forward(self, x):
        xp = self.xp
        g = self.geom = _geom(self, x.shape).follow(x)
        buf = g.frame(xp, x, 0)
        y = None
        for k, (i, j) in g.offsets():
            v = g.win(buf, i, j)
            if y is None:
                y = v.astype(x.dtype, copy=True)
            else:
                y += v
        return _scale(xp, self, y)

    def backward(self, gy):
        return AvgPool2dScatter.apply(gy, **_avg_attrs(self))


class AvgPool2dScatter(Function):
    """f = g/divisor added to every element of its window (the adjoint of avg_pool2d);  df/dg = avg_pool2d."""
    spec = OpSpec(ref=_avg_scatter_ref, sample=_avg_scatter_sample,
                  call=lambda gy, **kw: AvgPool2dScatter.apply(gy, **kw))
    needs_inputs = False

    def forward(self, gy):
        xp = self.xp
        geom = _Geom(self.in_hw, self.kernel, self.stride, self.pad, self.dilation, self.out).follow(gy)
        return geom.spread(xp, _scale(xp, self, gy.astype(gy.dtype, copy=True)))

    def backward(self, ggx):
        return AvgPool2d.apply(ggx, **_avg_attrs(self))


def _avg_attrs(fn) -> dict:
    return dict(kernel=fn.kernel, stride=fn.stride, pad=fn.pad, dilation=fn.dilation, out=fn.out, scale=fn.scale,
                in_hw=fn.in_hw)


def _scale(xp, fn, y):
    """Multiply pooled sums ``y`` in place by 1/divisor: a number, or per output position (rows, cols)."""
    s = fn.scale
    if isinstance(s, float):
        y *= y.dtype.type(s)
    else:
        rows, cols = s
        y *= xp.asarray(rows, dtype=y.dtype).reshape(-1, 1)
        y *= xp.asarray(cols, dtype=y.dtype)
    return y


# --- argument handling and the public functions ---------------------------------------------------------


def _setup(op, x, kernel_size, stride, padding, dilation, ceil_mode, pad_limit):
    """Validated (kernel, stride, padding, dilation, output size) for a 2-D pooling of (N, C, H, W) ``x``."""
    if not isinstance(x, Tensor):
        raise OpTypeError(f"input must be a Tensor, got {type(x).__name__}", op=op)
    if x.ndim != 4:
        raise OpValueError(f"expected a 4-D input (N, C, H, W) or 3-D (C, H, W), got shape {tuple(x.shape)}", op=op)
    kernel = int_pair(kernel_size, "kernel_size", op)
    stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and not stride) else \
        int_pair(stride, "stride", op)
    pad, dil = int_pair(padding, "padding", op), int_pair(dilation, "dilation", op)
    if min(kernel) < 1 or min(stride) < 1 or min(dil) < 1:
        raise OpValueError(f"kernel_size {kernel}, stride {stride} and dilation {dil} must be positive "
                           f"(input shape {tuple(x.shape)})", op=op)
    limit = pad_limit(kernel, dil)
    if min(pad) < 0 or pad[0] > limit[0] or pad[1] > limit[1]:
        raise OpValueError(f"padding {pad} must be between 0 and half the kernel {kernel} "
                           f"(at most {limit}); input shape {tuple(x.shape)}", op=op)
    H, W = x.shape[2:]
    out = (_out_size(H, kernel[0], stride[0], pad[0], dil[0], ceil_mode),
           _out_size(W, kernel[1], stride[1], pad[1], dil[1], ceil_mode))
    if min(out) < 1:
        eff = (dil[0] * (kernel[0] - 1) + 1, dil[1] * (kernel[1] - 1) + 1)
        raise OpValueError(f"kernel {kernel} (extent {eff}) is larger than the padded input "
                           f"{(H + 2 * pad[0], W + 2 * pad[1])}; input shape {tuple(x.shape)}, padding {pad}", op=op)
    return kernel, stride, pad, dil, out


def _batched(x):
    return (reshape(x, (1,) + x.shape), True) if isinstance(x, Tensor) and x.ndim == 3 else (x, False)


@public(functional=True)
def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """2-D max pooling (PyTorch's ``max_pool2d``), one fused node.

    Args:
        input: (N, C, H, W) or (C, H, W).
        kernel_size: window, int or pair.
        stride: defaults to the window.
        padding: −∞ padding on both sides, at most half the (dilated) window.
        dilation: spacing of the window's elements.
        ceil_mode: round the output size up (the last window may overhang the input).
        return_indices: also return each maximum's flat index into H·W (int64, no gradient).

    Ties take the first maximum in the window (row-major), which alone receives the gradient.
    """
    op = "max_pool2d"
    x, single = _batched(input)
    kernel, stride, pad, dil, out = _setup(op, x, kernel_size, stride, padding, dilation, ceil_mode,
                                           lambda k, d: tuple((di * (ki - 1) + 1) // 2 for ki, di in zip(k, d)))
    _check_float(op, x)
    box = {} if return_indices else None
    y = MaxPool2d.apply(x, kernel=kernel, stride=stride, pad=pad, dilation=dil, out=out, indices=box)
    if single:
        y = reshape(y, y.shape[1:])
    if not return_indices:
        return y
    return y, _flat_indices(x, box["arg"], kernel, stride, pad, dil, single)


def _check_float(op, x):
    if x.dtype.kind != "f":
        raise OpTypeError(f"expected a floating-point input, got {x.dtype} (input shape {tuple(x.shape)})", op=op)


def _flat_indices(x, arg, kernel, stride, pad, dil, single):
    xp = x.xp
    OH, OW = arg.shape[2:]
    i, j = arg.astype("int64") // kernel[1], arg.astype("int64") % kernel[1]
    rows = xp.arange(OH, dtype="int64").reshape(-1, 1) * stride[0] - pad[0] + i * dil[0]
    cols = xp.arange(OW, dtype="int64") * stride[1] - pad[1] + j * dil[1]
    idx = rows * x.shape[3] + cols
    return const(idx[0] if single else idx, x)


@public(functional=True)
def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """2-D average pooling (PyTorch's ``avg_pool2d``), one fused node.

    Args:
        input: (N, C, H, W) or (C, H, W).
        kernel_size: window, int or pair; stride defaults to it.
        padding: zero padding on both sides, at most half the window.
        ceil_mode: round the output size up.
        count_include_pad: divide by the whole window including padding (PyTorch's default), or only by the
            number of input elements in it.
        divisor_override: divide by this number instead.
    """
    op = "avg_pool2d"
    x, single = _batched(input)
    kernel, stride, pad, dil, out = _setup(op, x, kernel_size, stride, padding, 1, ceil_mode,
                                           lambda k, d: (k[0] // 2, k[1] // 2))
    _check_float(op, x)
    if divisor_override is not None:
        if divisor_override == 0:
            raise OpValueError("divisor_override must be non-zero", op=op)
        scale = 1.0 / divisor_override
    else:
        H, W = x.shape[2:]
        rows = _counts(H, kernel[0], stride[0], pad[0], out[0], count_include_pad)
        cols = _counts(W, kernel[1], stride[1], pad[1], out[1], count_include_pad)
        if len(set(rows)) == 1 and len(set(cols)) == 1:
            scale = 1.0 / (rows[0] * cols[0])
        else:
            scale = ([1.0 / r for r in rows], [1.0 / c for c in cols])
    y = AvgPool2d.apply(x, kernel=kernel, stride=stride, pad=pad, dilation=(1, 1), out=out, scale=scale,
                        in_hw=x.shape[2:])
    return reshape(y, y.shape[1:]) if single else y


@public(functional=True)
def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed output size (PyTorch's bins: rows ⌊i·H/oh⌋ to ⌈(i+1)·H/oh⌉).

    ``output_size`` is an int or a pair (``None`` keeps that input size). Global pooling is a mean,
    evenly divisible sizes are ``avg_pool2d``, and other sizes apply the (oh, H) and (ow, W) averaging
    matrices on both sides.
    """
    op = "adaptive_avg_pool2d"
    if not isinstance(input, Tensor) or input.ndim not in (3, 4):
        raise OpValueError(f"expected a 4-D input (N, C, H, W) or 3-D (C, H, W), got shape "
                           f"{tuple(getattr(input, 'shape', ()))}", op=op)
    H, W = input.shape[-2:]
    size = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(size) != 2:
        raise OpValueError(f"output_size must be an int or a pair, got {output_size!r}", op=op)
    oh, ow = (H if size[0] is None else size[0]), (W if size[1] is None else size[1])
    if not all(isinstance(v, int) and v >= 1 for v in (oh, ow)):
        raise OpValueError(f"output_size must be positive, got {output_size!r} (input shape {input.shape})", op=op)
    if min(H, W) < 1:
        raise OpValueError(f"input shape {input.shape} has an empty spatial axis", op=op)
    if (oh, ow) == (1, 1):
        return _mean(input, dim=(-2, -1), keepdim=True)
    if H % oh == 0 and W % ow == 0:
        return avg_pool2d(input, (H // oh, W // ow))
    ph = const(_bins(input.xp, H, oh, input.dtype), input)
    pw = const(_bins(input.xp, W, ow, input.dtype).T, input)
    return matmul(matmul(ph, input), pw)


composite("adaptive_avg_pool2d", OpSpec(ref=_adaptive_ref, sample=_adaptive_sample,
                                        call=lambda x, **kw: adaptive_avg_pool2d(x, **kw)))


def _bins(xp, n, out, dtype):
    """(out, n) averaging matrix of adaptive pooling along one axis."""
    m = [[0.0] * n for _ in range(out)]
    for i in range(out):
        a, b = (i * n) // out, -(-((i + 1) * n) // out)
        for k in range(a, b):
            m[i][k] = 1.0 / (b - a)
    return xp.asarray(m, dtype=dtype)


def _one(v, name, op):
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise OpValueError(f"{name} must be an int or a 1-tuple, got {v!r}", op=op)
        return v[0]
    return v


def _as_2d(op, input):
    if not isinstance(input, Tensor) or input.ndim not in (2, 3):
        raise OpValueError(f"expected input (N, C, L) or (C, L), got shape {tuple(getattr(input, 'shape', ()))}", op=op)
    return reshape(input, input.shape[:-1] + (1, input.shape[-1]))


def _stride_1d(stride, op):
    """A 1-D stride as the (1, s) of the height-1 2-D pool; None (or empty) keeps the window's default."""
    return None if stride is None or (isinstance(stride, (tuple, list)) and not stride) else \
        (1, _one(stride, "stride", op))


@public(functional=True)
def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False):
    """1-D max pooling of (N, C, L) or (C, L): ``max_pool2d`` on height 1."""
    op = "max_pool1d"
    x = _as_2d(op, input)
    stride = _stride_1d(stride, op)
    try:
        r = max_pool2d(x, (1, _one(kernel_size, "kernel_size", op)), stride, (0, _one(padding, "padding", op)),
                       (1, _one(dilation, "dilation", op)), ceil_mode, return_indices)
    except ValueError as e:
        raise renamed(e, op) from None
    if return_indices:
        y, idx = r
        return reshape(y, input.shape[:-1] + (y.shape[-1],)), const(idx.array.reshape(input.shape[:-1] + (-1,)), y)
    return reshape(r, input.shape[:-1] + (r.shape[-1],))


composite("max_pool1d", OpSpec(ref=_maxpool1d_ref, sample=lambda d: _pool1d_sample(d, False), prepare=_distinct,
                               call=lambda x, **kw: max_pool1d(x, **kw)))


@public(functional=True)
def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """1-D average pooling of (N, C, L) or (C, L): ``avg_pool2d`` on height 1."""
    op = "avg_pool1d"
    x = _as_2d(op, input)
    stride = _stride_1d(stride, op)
    try:
        y = avg_pool2d(x, (1, _one(kernel_size, "kernel_size", op)), stride, (0, _one(padding, "padding", op)),
                       ceil_mode, count_include_pad)
    except ValueError as e:
        raise renamed(e, op) from None
    return reshape(y, input.shape[:-1] + (y.shape[-1],))


composite("avg_pool1d", OpSpec(ref=_avgpool1d_ref, sample=lambda d: _pool1d_sample(d, True),
                               call=lambda x, **kw: avg_pool1d(x, **kw)))
