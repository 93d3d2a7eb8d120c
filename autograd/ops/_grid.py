"""Window geometry of convolution and pooling: where each kernel offset reads and writes, and the output sizes.

Convolution (batch-last, see :mod:`autograd.ops.conv`): :class:`_Grid` clips every kernel offset's (OH, OW)
grid to the image, so it reads batch-last (C, H, W, n) images as one strided slice; ``_im2col`` has the
backend's ``fused.im2col`` copy those slices into the column matrix (C·kh·kw, OH·OW·n) (``fused.col2im`` adds
them back), ``_extend`` lays a gradient out as the matrix (O, OH·OW·n). Pooling: :class:`_Geom` frames the input (padding, ceil-mode overhang) and
takes the (N, C, OH, OW) view of each offset, new arrays following the input's memory order; windows that
tile the input exactly (the usual 2x2 pooling) go to the backend's fused ``max_pool_tiles`` (a C kernel on
the CPU where one is compiled, else two passes of array calls over long runs of memory). ``_out_size`` and
``_counts`` are PyTorch's output-length and average-divisor rules.

Large transients and results come from the op's backend (``fn.backend.buffers``: recycled on the CPU, the
memory pool on a GPU), never from a fresh allocation here.
"""
from __future__ import annotations

from backends import backend_of
from backends.base import inverse_order, memory_order


# --- convolution: the batch-last grid ------------------------------------------------------------------


class _Grid:
    """Where im2col reads and col2im writes for an input (·, C, H, W) and an output (·, ·, OH, OW).

    Images are read and written batch-last, (C, H, W, n): each kernel offset's (OH, OW) grid, clipped to the
    part that falls inside the image, is then a plain strided slice whose innermost run is (OW, n) (contiguous
    at stride 1), so every copy and add of a window loops over long rows instead of one short image row at a
    time. Padding is never materialised: the window entries that fall on it are zeros in the column matrix
    (im2col) and are dropped (col2im)."""

    def __init__(self, C, H, W, kernel, stride, dilation, pad, out):
        self.C, self.H, self.W = C, H, W
        self.kh, self.kw = kernel
        self.sh, self.sw = stride
        self.dh, self.dw = dilation
        self.pt, self.pl = pad
        self.OH, self.OW = out
        self.K = C * self.kh * self.kw

    def clip(self, i: int, j: int):
        """For kernel offset (i, j): (output rows, output columns, input rows, input columns) as slices, the
        outputs whose window entry (i, j) lies inside the image and the entries they read (input row of output
        row o: o·s + i·d − p); None when no output reads the image at this offset."""
        rows = _clip1(self.OH, self.H, self.sh, i * self.dh - self.pt)
        cols = _clip1(self.OW, self.W, self.sw, j * self.dw - self.pl)
        if rows is None or cols is None:
            return None
        return rows[0], cols[0], rows[1], cols[1]

    def chunks(self, n: int, itemsize: int, limit: int) -> list:
        """Batch slices whose column matrices stay under ``limit`` bytes."""
        per = max(1, self.K * self.OH * self.OW * itemsize)
        step = max(1, limit // per)
        return [slice(a, min(a + step, n)) for a in range(0, n, step)]


def _clip1(n_out: int, n_in: int, s: int, shift: int):
    """Along one axis: (output slice, input slice) of the outputs o with 0 <= o·s + shift < n_in."""
    lo = max(0, -(shift // s) if shift < 0 else 0)
    hi = min(n_out, (n_in - 1 - shift) // s + 1) if n_in - 1 - shift >= 0 else 0
    if hi <= lo:
        return None
    start = lo * s + shift
    return slice(lo, hi), slice(start, start + (hi - lo - 1) * s + 1, s)


def _batch_last(fn, x, dtype):
    """(n, C, H, W) ``x`` as batch-last (C, H, W, n) images: a view when stored that way, else a workspace copy
    (channel-major to batch-last is one plain pass); returns (images, copy or None)."""
    t = x.transpose(1, 2, 3, 0)
    if t.dtype == dtype and t.flags.c_contiguous:
        return t, None
    img = fn.backend.buffers.take(t.shape, dtype)
    img[...] = t
    return img, img


def _im2col(fn, g: _Grid, x, dtype, ones: bool = False):
    """(n, C, H, W) → column matrix (C·kh·kw, OH·OW·n) (a workspace array), with a last row of ones when
    ``ones`` (so a bias column appended to the weights adds the bias inside the product)."""
    n = x.shape[0]
    img, copy = _batch_last(fn, x, dtype)
    mat = fn.backend.buffers.take((g.K + int(ones), g.OH * g.OW * n), dtype)
    if ones:
        mat[g.K] = 1
    fn.backend.fused.im2col(img, mat[:g.K], g)
    fn.backend.buffers.give(copy)
    return mat


def _extend(fn, g: _Grid, y, dtype):
    """(n, O, OH, OW) → batch-last matrix (O, OH·OW·n): a view of ``y`` when it is stored that way (as conv
    results and what elementwise ops make of them are), else a workspace copy; release it with ``_release``."""
    n, O = y.shape[:2]
    t = y.transpose(1, 2, 3, 0)
    if t.dtype == dtype and t.flags.c_contiguous:
        return t.reshape(O, g.OH * g.OW * n)
    e = fn.backend.buffers.take((O, g.OH, g.OW, n), dtype)
    e[...] = t
    return e.reshape(O, g.OH * g.OW * n)


def _release(fn, e, y) -> None:
    """Hand ``e = _extend(fn, g, y, ·)`` back to the workspace, unless it is ``y``'s own memory."""
    if e is not None and not fn.xp.may_share_memory(e, y):
        fn.backend.buffers.give(e)


# --- pooling: framed windows ----------------------------------------------------------------------------


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
        self.order = (0, 1, 2, 3)   # new arrays' memory order (outermost axis first); see ``follow``

    def follow(self, x) -> "_Geom":
        """Make new arrays in the memory order of ``x`` (e.g. a convolution's batch-last results)."""
        self.order = memory_order(x)
        return self

    def conform(self, xp, a):
        """``a`` in the followed memory order (a copy when it differs: mixed orders make every step strided)."""
        if memory_order(a) != self.order:
            return backend_of(a).relayout(a, self.order)
        return a

    def alloc(self, xp, shape, dtype, zero: bool = False, fn=None):
        """An uninitialised (or zero) array of (N, C, h, w) ``shape`` in the followed memory order (an op's
        result, from its backend's buffers, when ``fn`` is that op)."""
        order = tuple(shape[k] for k in self.order)
        if fn is not None:
            a = fn.backend.buffers.result(order, xp.dtype(dtype))
            if zero:
                a.fill(0)
        else:
            a = (xp.zeros if zero else xp.empty)(order, dtype)
        return a.transpose(inverse_order(self.order))

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
        if hasattr(arg, "offsets"):         # a record of fused.max_pool_tiles
            return self.tile_spread(xp, g, arg, fn=fn)
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

    def tile_max(self, xp, x, fn):
        """Max pooling over windows that tile ``x`` exactly (``tiles``): ``(y, where)``, where ``where`` records
        each window's first maximum in row-major order (``where.offsets``); see ``fused.max_pool_tiles``."""
        return fn.backend.fused.max_pool_tiles(x, self.kh, self.kw, self._allocator(xp, fn))

    def tile_spread(self, xp, g, arg, fn=None):
        """Adjoint of ``tile_max``: each output's gradient sent to its window's recorded first maximum."""
        return backend_of(g).fused.max_pool_tiles_backward(self.conform(xp, g), arg, self.kh, self.kw,
                                                           self._allocator(xp, fn))

    def _allocator(self, xp, fn):
        """``alloc(shape, dtype, result=False)`` for the fused pooling: arrays in the followed memory order, the
        op's result (``result``) from ``fn``'s buffers."""
        return lambda shape, dtype, result=False: self.alloc(xp, shape, dtype, fn=fn if result else None)

    def gather(self, xp, z, arg):
        """Each output takes ``z`` at its window's offset ``arg`` (the adjoint of ``spread`` with ``arg``)."""
        if hasattr(arg, "offsets"):
            arg = arg.offsets(xp)
        buf = self.frame(xp, z, 0)
        out = self.alloc(xp, z.shape[:2] + (self.OH, self.OW), z.dtype, zero=True)
        for k, (i, j) in self.offsets():
            xp.copyto(out, self.win(buf, i, j), where=arg == k)
        return out


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
