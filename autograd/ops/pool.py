"""Pooling over windows of (N, C, H, W): max and average as fused ops, adaptive average, 1-D forms.

Each window position is visited by a loop over the kh·kw kernel offsets, every step one vectorised
operation on a strided view of all windows at once. Max pooling keeps, per output, the offset of the first
maximum (so ties route the gradient to exactly one element); its backward scatters the gradient there and
the scatter's backward gathers from there, so max pooling differentiates to any order. Average pooling's
backward spreads the scaled gradient over each window; that op's backward is average pooling again.
When the windows tile the input exactly (stride = kernel, no padding: the usual 2x2 pooling) the backward
writes every input element once, without a zero fill or accumulation. Large results of max pooling and its
backward are recycled through the convolutions' workspace once nothing references them (no page faults).
"""
from __future__ import annotations

from ..function import Function
from ..spec import OpSpec, composite
from ..tensor import Tensor
from ._util import const
from .conv import _ws
from .linalg import matmul
from .reduction import mean as _mean
from .shape import reshape

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "max_pool1d", "avg_pool1d"]


class _Geom:
    """Window geometry of one pooling call: kernel, stride, padding, dilation, input and output sizes."""

    def __init__(self, in_hw, kernel, stride, pad, dilation, out):
        (self.H, self.W), (self.kh, self.kw), (self.sh, self.sw) = in_hw, kernel, stride
        (self.ph, self.pw), (self.dh, self.dw), (self.OH, self.OW) = pad, dilation, out
        # the padded frame: the input, its padding, and any overhang of the last windows (ceil_mode)
        self.Hp = max(self.H + 2 * self.ph, (self.OH - 1) * self.sh + self.dh * (self.kh - 1) + 1)
        self.Wp = max(self.W + 2 * self.pw, (self.OW - 1) * self.sw + self.dw * (self.kw - 1) + 1)
        self.framed = (self.Hp, self.Wp) != (self.H, self.W)
        self.tiles = (not self.framed and (self.sh, self.sw) == (self.kh, self.kw) and (self.dh, self.dw) == (1, 1)
                      and (self.OH * self.kh, self.OW * self.kw) == (self.H, self.W))
        self.disjoint = self.sh >= self.dh * (self.kh - 1) + 1 and self.sw >= self.dw * (self.kw - 1) + 1
        self.cmajor = False     # new arrays follow the input's memory order: (N, C, ...) or channel-major

    def follow(self, x) -> "_Geom":
        """Make new arrays in the memory order of ``x`` (channel-major when its C stride exceeds its N stride)."""
        self.cmajor = x.ndim == 4 and x.strides[1] > x.strides[0]
        return self

    def conform(self, xp, a):
        """``a`` in the followed memory order (a copy when it differs: mixed orders make every step strided)."""
        if a.shape[0] > 1 and a.shape[1] > 1 and (a.strides[1] > a.strides[0]) != self.cmajor:
            b = self.alloc(xp, a.shape, a.dtype)
            b[...] = a
            return b
        return a

    def alloc(self, xp, shape, dtype, zero: bool = False, fn=None):
        """An uninitialised (or zero) array of (N, C, h, w) ``shape`` in the followed memory order (an op's
        result, recycled through the conv workspace, when ``fn`` is that op)."""
        order = (shape[1], shape[0]) + tuple(shape[2:]) if self.cmajor else tuple(shape)
        if fn is not None:
            a = _ws.result(fn, order, xp.dtype(dtype))
            if zero:
                a.fill(0)
        else:
            a = (xp.zeros if zero else xp.empty)(order, dtype)
        return a.transpose(1, 0, 2, 3) if self.cmajor else a

    def offsets(self):
        return [(k, divmod(k, self.kw)) for k in range(self.kh * self.kw)]

    def frame(self, xp, x, fill):
        """``x`` inside a (N, C, Hp, Wp) frame filled with ``fill`` (``x`` itself when there is no frame)."""
        if not self.framed:
            return x
        buf = self.alloc(xp, x.shape[:2] + (self.Hp, self.Wp), x.dtype)
        buf.fill(fill)
        buf[:, :, self.ph:self.ph + self.H, self.pw:self.pw + self.W] = x
        return buf

    def crop(self, xp, buf):
        if not self.framed:
            return buf
        return buf[:, :, self.ph:self.ph + self.H, self.pw:self.pw + self.W]

    def win(self, a, i: int, j: int):
        """The (N, C, OH, OW) view of kernel offset (i, j) over every window of the framed array ``a``."""
        r, c = i * self.dh, j * self.dw
        return a[:, :, r:r + self.sh * (self.OH - 1) + 1:self.sh, c:c + self.sw * (self.OW - 1) + 1:self.sw]

    def spread(self, xp, g, arg=None, fn=None):
        """Adjoint of taking windows: each output's value sent to its window (or only to offset ``arg``);
        ``fn``: the op whose result this is."""
        N, C = g.shape[:2]
        g = self.conform(xp, g)
        if self.tiles:          # every input element lies in exactly one window: write each offset's view once
            out = self.alloc(xp, (N, C, self.H, self.W), g.dtype, fn=fn)
            for k, (i, j) in self.offsets():
                if arg is None:
                    self.win(out, i, j)[...] = g
                else:
                    xp.multiply(g, arg == k, out=self.win(out, i, j))
            return out
        buf = self.alloc(xp, (N, C, self.Hp, self.Wp), g.dtype, zero=True)
        for k, (i, j) in self.offsets():
            v = g if arg is None else g * (arg == k)
            view = self.win(buf, i, j)
            if self.disjoint:
                view[...] = v
            else:
                view += v
        return self.crop(xp, buf)

    def gather(self, xp, z, arg):
        """Each output takes ``z`` at its window's offset ``arg`` (the adjoint of ``spread`` with ``arg``)."""
        buf = self.frame(xp, z, 0)
        out = self.alloc(xp, z.shape[:2] + (self.OH, self.OW), z.dtype, zero=True)
        for k, (i, j) in self.offsets():
            xp.copyto(out, self.win(buf, i, j), where=arg == k)
        return out


def _geom(fn, x_shape) -> _Geom:
    return _Geom(x_shape[2:], fn.kernel, fn.stride, fn.pad, fn.dilation, fn.out)


class MaxPool2d(Function):
    """f = max over each window (padding is −∞);  df/dx = g at the window's first maximum, 0 elsewhere."""
    needs_inputs = False
    indices = None      # optional dict that receives the argmax offsets (for return_indices)

    def forward(self, x):
        xp = self.xp
        g = self.geom = _geom(self, x.shape).follow(x)
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


class MaxPool2dScatter(Function):
    """f = zeros of the input's shape with g[n,c,oh,ow] at the argmax of window (oh, ow);
    df/dg = the gather from the same positions (MaxPool2dGather)."""
    needs_inputs = False

    def forward(self, gy):
        return self.geom.spread(self.xp, gy, self.arg, fn=self)

    def backward(self, ggx):
        return MaxPool2dGather.apply(ggx, arg=self.arg, geom=self.geom)


class MaxPool2dGather(Function):
    """f[n,c,oh,ow] = z at the recorded argmax of window (oh, ow);  df/dz = the scatter (MaxPool2dScatter)."""
    needs_inputs = False

    def forward(self, z):
        return self.geom.gather(self.xp, z, self.arg)

    def backward(self, gy):
        return MaxPool2dScatter.apply(gy, arg=self.arg, geom=self.geom)


class AvgPool2d(Function):
    """f = (Σ over each window, zero padding) / divisor;  df/dx = g/divisor spread over the window."""
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


# --- argument handling -------------------------------------------------------------------------------


def _pair(v, name: str, op: str) -> tuple:
    if isinstance(v, (tuple, list)):
        if len(v) != 2 or not all(isinstance(e, int) and not isinstance(e, bool) for e in v):
            raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
        return int(v[0]), int(v[1])
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    return int(v), int(v)


def _out_size(n, k, s, p, d, ceil_mode) -> int:
    """PyTorch's pooling output length (with ceil_mode, the last window must start inside the input or left pad)."""
    span = n + 2 * p - d * (k - 1) - 1
    if span < 0:
        return 0
    if not ceil_mode:
        return span // s + 1
    o = -(-span // s) + 1
    if (o - 1) * s >= n + p:
        o -= 1
    return o


def _setup(op, x, kernel_size, stride, padding, dilation, ceil_mode, pad_limit):
    """Validated (kernel, stride, padding, dilation, output size) for a 2-D pooling of (N, C, H, W) ``x``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W) or 3-D (C, H, W), got shape {tuple(x.shape)}")
    kernel = _pair(kernel_size, "kernel_size", op)
    stride = kernel if stride is None or (isinstance(stride, (tuple, list)) and not stride) else \
        _pair(stride, "stride", op)
    pad, dil = _pair(padding, "padding", op), _pair(dilation, "dilation", op)
    if min(kernel) < 1 or min(stride) < 1 or min(dil) < 1:
        raise ValueError(f"{op}: kernel_size {kernel}, stride {stride} and dilation {dil} must be positive "
                         f"(input shape {tuple(x.shape)})")
    limit = pad_limit(kernel, dil)
    if min(pad) < 0 or pad[0] > limit[0] or pad[1] > limit[1]:
        raise ValueError(f"{op}: padding {pad} must be between 0 and half the kernel {kernel} "
                         f"(at most {limit}); input shape {tuple(x.shape)}")
    H, W = x.shape[2:]
    out = (_out_size(H, kernel[0], stride[0], pad[0], dil[0], ceil_mode),
           _out_size(W, kernel[1], stride[1], pad[1], dil[1], ceil_mode))
    if min(out) < 1:
        eff = (dil[0] * (kernel[0] - 1) + 1, dil[1] * (kernel[1] - 1) + 1)
        raise ValueError(f"{op}: kernel {kernel} (extent {eff}) is larger than the padded input "
                         f"{(H + 2 * pad[0], W + 2 * pad[1])}; input shape {tuple(x.shape)}, padding {pad}")
    return kernel, stride, pad, dil, out


def _batched(x):
    return (reshape(x, (1,) + x.shape), True) if isinstance(x, Tensor) and x.ndim == 3 else (x, False)


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
        raise TypeError(f"{op}: expected a floating-point input, got {x.dtype} (input shape {tuple(x.shape)})")


def _flat_indices(x, arg, kernel, stride, pad, dil, single):
    xp = x.xp
    OH, OW = arg.shape[2:]
    i, j = arg.astype("int64") // kernel[1], arg.astype("int64") % kernel[1]
    rows = xp.arange(OH, dtype="int64").reshape(-1, 1) * stride[0] - pad[0] + i * dil[0]
    cols = xp.arange(OW, dtype="int64") * stride[1] - pad[1] + j * dil[1]
    idx = rows * x.shape[3] + cols
    return const(idx[0] if single else idx, x)


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
            raise ValueError(f"{op}: divisor_override must be non-zero")
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


def _counts(n, k, s, p, out, include_pad) -> list:
    """Per output position along one axis: the divisor's factor (PyTorch's rule, separable in rows and columns)."""
    res = []
    for o in range(out):
        start = o * s - p
        end = min(start + k, n + p)
        if include_pad:
            res.append(end - start)
        else:
            res.append(min(end, n) - max(start, 0))
    return res


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed output size (PyTorch's bins: rows ⌊i·H/oh⌋ to ⌈(i+1)·H/oh⌉).

    ``output_size`` is an int or a pair (``None`` keeps that input size). Global pooling is a mean,
    evenly divisible sizes are ``avg_pool2d``, and other sizes apply the (oh, H) and (ow, W) averaging
    matrices on both sides.
    """
    op = "adaptive_avg_pool2d"
    if not isinstance(input, Tensor) or input.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W) or 3-D (C, H, W), got shape "
                         f"{tuple(getattr(input, 'shape', ()))}")
    H, W = input.shape[-2:]
    size = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(size) != 2:
        raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    oh, ow = (H if size[0] is None else size[0]), (W if size[1] is None else size[1])
    if not all(isinstance(v, int) and v >= 1 for v in (oh, ow)):
        raise ValueError(f"{op}: output_size must be positive, got {output_size!r} (input shape {input.shape})")
    if min(H, W) < 1:
        raise ValueError(f"{op}: input shape {input.shape} has an empty spatial axis")
    if (oh, ow) == (1, 1):
        return _mean(input, axis=(-2, -1), keepdims=True)
    if H % oh == 0 and W % ow == 0:
        return avg_pool2d(input, (H // oh, W // ow))
    ph = const(_bins(input.xp, H, oh, input.dtype), input)
    pw = const(_bins(input.xp, W, ow, input.dtype).T, input)
    return matmul(matmul(ph, input), pw)


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
            raise ValueError(f"{op}: {name} must be an int or a 1-tuple, got {v!r}")
        return v[0]
    return v


def _as_2d(op, input):
    if not isinstance(input, Tensor) or input.ndim not in (2, 3):
        raise ValueError(f"{op}: expected input (N, C, L) or (C, L), got shape {tuple(getattr(input, 'shape', ()))}")
    return reshape(input, input.shape[:-1] + (1, input.shape[-1]))


def _rename(op, e):
    return ValueError(f"{op}: {str(e).split(': ', 1)[-1]}")


def _stride_1d(stride, op):
    """A 1-D stride as the (1, s) of the height-1 2-D pool; None (or empty) keeps the window's default."""
    return None if stride is None or (isinstance(stride, (tuple, list)) and not stride) else \
        (1, _one(stride, "stride", op))


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
        raise _rename(op, e) from None
    if return_indices:
        y, idx = r
        return reshape(y, input.shape[:-1] + (y.shape[-1],)), const(idx.data.reshape(input.shape[:-1] + (-1,)), y)
    return reshape(r, input.shape[:-1] + (r.shape[-1],))


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
        raise _rename(op, e) from None
    return reshape(y, input.shape[:-1] + (y.shape[-1],))


# --- test samples ------------------------------------------------------------------------------------


def _distinct(np, arrays):
    """Values at least 0.05 apart (max pooling is not differentiable at ties)."""
    x = arrays[0]
    ranks = np.argsort(np.argsort(x.ravel(), kind="stable"), kind="stable")
    return [(x.ravel() * 0.01 + 0.05 * ranks).reshape(x.shape)] + list(arrays[1:])


def _pool_ref(np, x, kernel, stride, pad, dilation, out, reduce, fill, divisor=None):
    """Direct loop over output positions."""
    N, C, H, W = x.shape
    big = np.full((N, C, H + 2 * pad[0] + kernel[0] * dilation[0] * 2 + stride[0] * 2,
                   W + 2 * pad[1] + kernel[1] * dilation[1] * 2 + stride[1] * 2), fill)
    big[:, :, pad[0]:pad[0] + H, pad[1]:pad[1] + W] = x
    y = np.zeros((N, C) + tuple(out))
    for oh in range(out[0]):
        for ow in range(out[1]):
            r, c = oh * stride[0], ow * stride[1]
            win = big[:, :, r:r + dilation[0] * (kernel[0] - 1) + 1:dilation[0],
                      c:c + dilation[1] * (kernel[1] - 1) + 1:dilation[1]]
            y[:, :, oh, ow] = reduce(win.reshape(N, C, -1))
            if divisor is not None:
                y[:, :, oh, ow] /= divisor(oh, ow)
    return y


def _pool_draw(d, max_kernel=3, dilate=True):
    kernel = (d.int(1, max_kernel), d.int(1, max_kernel))
    stride = None if d.bool() else (d.int(1, 3), d.int(1, 3))
    dil = (d.int(1, 2), d.int(1, 2)) if dilate and d.int(0, 2) == 0 else (1, 1)
    eff = tuple(di * (k - 1) + 1 for k, di in zip(kernel, dil))
    pad = tuple(d.int(0, (e if dilate else k) // 2) for e, k in zip(eff, kernel))
    H, W = (d.int(max(1, e - 2 * p), e + 3) for e, p in zip(eff, pad))
    ceil = d.bool() if d.int(0, 3) == 0 else False
    # no window made of padding alone (its maximum would be −∞): an input as large as the window has none
    H, W = (max(n, e) if _padding_only_window(n, k, s, p, di, ceil) else n
            for n, e, k, s, p, di in zip((H, W), eff, kernel, stride or kernel, pad, dil))
    x_shape = (d.int(1, 2), d.int(1, 2), H, W)
    return x_shape, kernel, stride, pad, dil, ceil


def _padding_only_window(n, k, s, p, d, ceil) -> bool:
    out = _out_size(n, k, s, p, d, ceil)
    return any(all(not p <= o * s + t * d < p + n for t in range(k)) for o in range(out))


def _maxpool_sample(d):
    x_shape, kernel, stride, pad, dil, ceil = _pool_draw(d)
    return [d.array(x_shape)], dict(kernel_size=kernel, stride=stride, padding=pad, dilation=dil, ceil_mode=ceil)


def _maxpool_ref(np, x, kernel_size, stride, padding, dilation, ceil_mode):
    stride = stride or kernel_size
    out = tuple(_out_size(n, k, s, p, di, ceil_mode)
                for n, k, s, p, di in zip(x.shape[2:], kernel_size, stride, padding, dilation))
    return _pool_ref(np, x, kernel_size, stride, padding, dilation, out, lambda w: w.max(axis=-1), -np.inf)


def _avgpool_sample(d):
    x_shape, kernel, stride, pad, _, ceil = _pool_draw(d, dilate=False)
    kw = dict(kernel_size=kernel, stride=stride, padding=pad, ceil_mode=ceil, count_include_pad=d.bool())
    if d.int(0, 4) == 0:
        kw["divisor_override"] = d.int(1, 5)
    return [d.array(x_shape)], kw


def _avgpool_ref(np, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override=None):
    stride = stride or kernel_size
    H, W = x.shape[2:]
    out = tuple(_out_size(n, k, s, p, 1, ceil_mode) for n, k, s, p in zip((H, W), kernel_size, stride, padding))

    def divisor(oh, ow):
        if divisor_override:
            return divisor_override
        (r0, c0) = (oh * stride[0] - padding[0], ow * stride[1] - padding[1])
        r1, c1 = min(r0 + kernel_size[0], H + padding[0]), min(c0 + kernel_size[1], W + padding[1])
        if count_include_pad:
            return (r1 - r0) * (c1 - c0)
        return (min(r1, H) - max(r0, 0)) * (min(c1, W) - max(c0, 0))
    return _pool_ref(np, x, kernel_size, stride, padding, (1, 1), out, lambda w: w.sum(axis=-1), 0.0, divisor)


def _helper_sample(d, with_arg=True):
    """Geometry and an upstream array for the scatter/gather helpers."""
    x_shape, kernel, stride, pad, dil, ceil = _pool_draw(d)
    stride = stride or kernel
    out = tuple(_out_size(n, k, s, p, di, ceil) for n, k, s, p, di in zip(x_shape[2:], kernel, stride, pad, dil))
    kw = dict(kernel=kernel, stride=stride, pad=pad, dilation=dil, out=out)
    arg = d.index_array(kernel[0] * kernel[1], x_shape[0] * x_shape[1] * out[0] * out[1]) % (kernel[0] * kernel[1])
    kw["arg"] = arg.reshape(x_shape[:2] + out).astype("int8")
    return x_shape, kw


def _frame_of(np, shape, kw):
    g = _Geom(shape[2:], kw["kernel"], kw["stride"], kw["pad"], kw["dilation"], kw["out"])
    return g


def _scatter_ref(np, gy, x_shape, **kw):
    g = _frame_of(np, x_shape, kw)
    buf = np.zeros(x_shape[:2] + (g.Hp, g.Wp))
    for k, (i, j) in g.offsets():
        g.win(buf, i, j)[...] += np.where(kw["arg"] == k, gy, 0.0)
    return buf[:, :, g.ph:g.ph + g.H, g.pw:g.pw + g.W]


def _gather_ref(np, z, **kw):
    g = _frame_of(np, z.shape, kw)
    buf = np.zeros(z.shape[:2] + (g.Hp, g.Wp))
    buf[:, :, g.ph:g.ph + g.H, g.pw:g.pw + g.W] = z
    y = np.zeros(z.shape[:2] + tuple(kw["out"]))
    for k, (i, j) in g.offsets():
        y += np.where(kw["arg"] == k, g.win(buf, i, j), 0.0)
    return y


def _scatter_sample(d):
    x_shape, kw = _helper_sample(d)
    return [d.array(x_shape[:2] + kw["out"])], dict(kw, x_shape=x_shape)


def _gather_sample(d):
    x_shape, kw = _helper_sample(d)
    return [d.array(x_shape)], kw


def _scatter_call(gy, x_shape, arg, **kw):
    geom = _Geom(x_shape[2:], kw["kernel"], kw["stride"], kw["pad"], kw["dilation"], kw["out"])
    return MaxPool2dScatter.apply(gy, arg=gy._backend.asarray(arg), geom=geom)


def _gather_call(z, arg, **kw):
    geom = _Geom(z.shape[2:], kw["kernel"], kw["stride"], kw["pad"], kw["dilation"], kw["out"])
    return MaxPool2dGather.apply(z, arg=z._backend.asarray(arg), geom=geom)


def _avg_scatter_sample(d):
    x_shape, kw = _helper_sample(d)
    del kw["arg"]
    kw["dilation"] = (1, 1)
    oh, ow = kw["out"]
    kw["scale"] = 1.0 / d.int(1, 4) if d.bool() else ([0.5] * oh, [0.25 * (1 + c) for c in range(ow)])
    return [d.array(x_shape[:2] + kw["out"])], dict(kw, in_hw=x_shape[2:])


def _avg_scatter_ref(np, gy, kernel, stride, pad, dilation, out, scale, in_hw):
    s = np.full(out, scale) if isinstance(scale, float) else np.outer(scale[0], scale[1])
    g = _Geom(in_hw, kernel, stride, pad, dilation, out)
    buf = np.zeros(gy.shape[:2] + (g.Hp, g.Wp))
    for _, (i, j) in g.offsets():
        g.win(buf, i, j)[...] += gy * s
    return buf[:, :, g.ph:g.ph + g.H, g.pw:g.pw + g.W]


MaxPool2d.spec = OpSpec(ref=_maxpool_ref, sample=_maxpool_sample, prepare=_distinct,
                        call=lambda x, **kw: max_pool2d(x, **kw))
MaxPool2dScatter.spec = OpSpec(ref=_scatter_ref, sample=_scatter_sample, call=_scatter_call)
MaxPool2dGather.spec = OpSpec(ref=_gather_ref, sample=_gather_sample, call=_gather_call)
AvgPool2d.spec = OpSpec(ref=_avgpool_ref, sample=_avgpool_sample, call=lambda x, **kw: avg_pool2d(x, **kw))
AvgPool2dScatter.spec = OpSpec(ref=_avg_scatter_ref, sample=_avg_scatter_sample,
                               call=lambda gy, **kw: AvgPool2dScatter.apply(gy, **kw))


def _adaptive_sample(d):
    H, W = d.int(1, 7), d.int(1, 7)
    size = (d.int(1, H + 1), d.choice([None, d.int(1, W + 1)]))
    return [d.array((d.int(1, 2), d.int(1, 2), H, W))], {"output_size": size if d.bool() else size[0]}


def _adaptive_ref(np, x, output_size):
    H, W = x.shape[2:]
    oh, ow = output_size if isinstance(output_size, tuple) else (output_size, output_size)
    oh, ow = oh or H, ow or W
    y = np.zeros(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, r1 = (i * H) // oh, -(-((i + 1) * H) // oh)
            c0, c1 = (j * W) // ow, -(-((j + 1) * W) // ow)
            y[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return y


def _pool1d_sample(d, avg):
    k = d.int(1, 3)
    s = d.choice([None, 1, 2, 3])
    dl = 1 if avg else d.int(1, 2)
    p = d.int(0, (k if avg else dl * (k - 1) + 1) // 2)
    L = d.int(max(1, dl * (k - 1) + 1 - 2 * p), dl * (k - 1) + 4)
    if _padding_only_window(L, k, s or k, p, dl, False):
        L = max(L, dl * (k - 1) + 1)
    kw = dict(kernel_size=k, stride=s, padding=p)
    if not avg:
        kw["dilation"] = dl
    return [d.array((d.int(1, 2), d.int(1, 2), L))], kw


def _maxpool1d_ref(np, x, kernel_size, stride, padding, dilation):
    return _maxpool_ref(np, x[:, :, None], (1, kernel_size), (1, stride or kernel_size), (0, padding),
                        (1, dilation), False)[:, :, 0]


def _avgpool1d_ref(np, x, kernel_size, stride, padding):
    return _avgpool_ref(np, x[:, :, None], (1, kernel_size), (1, stride or kernel_size), (0, padding), False,
                        True)[:, :, 0]


composite("adaptive_avg_pool2d", OpSpec(ref=_adaptive_ref, sample=_adaptive_sample,
                                        call=lambda x, **kw: adaptive_avg_pool2d(x, **kw)))
composite("max_pool1d", OpSpec(ref=_maxpool1d_ref, sample=lambda d: _pool1d_sample(d, False), prepare=_distinct,
                               call=lambda x, **kw: max_pool1d(x, **kw)))
composite("avg_pool1d", OpSpec(ref=_avgpool1d_ref, sample=lambda d: _pool1d_sample(d, True),
                               call=lambda x, **kw: avg_pool1d(x, **kw)))
