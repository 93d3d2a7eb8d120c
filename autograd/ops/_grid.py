"""Window geometry of convolution and pooling: where each kernel offset reads and writes, and the output sizes.

Convolution ("flat shift", see :mod:`autograd.ops.conv`): :class:`_Grid` places a batch in a zero-padded,
channel-major flat buffer in which every kernel offset's (OH, OW) grid is one strided view; ``_im2col`` copies
those views into the column matrix (C·kh·kw, n·OH·OW), ``_col2im`` adds them back, ``_extend`` lays a gradient
out as the matrix (O, n·OH·OW). Pooling: :class:`_Geom` frames the input (padding, ceil-mode overhang) and
takes the (N, C, OH, OW) view of each offset; ``_out_size`` and ``_counts`` are PyTorch's output-length and
average-divisor rules.

Large transients and results come from the op's backend (``fn.backend.buffers``: recycled on the CPU, the
memory pool on a GPU), never from a fresh allocation here.
"""
from __future__ import annotations


# --- convolution: the flat-shift grid ------------------------------------------------------------------


class _Grid:
    """Where im2col reads and col2im writes for an input (·, C, H, W) and an output (·, ·, OH, OW)."""

    def __init__(self, C, H, W, kernel, stride, dilation, pad, out):
        self.C, self.H, self.W = C, H, W
        self.kh, self.kw = kernel
        self.sh, self.sw = stride
        self.dh, self.dw = dilation
        self.pt, self.pl = pad
        self.OH, self.OW = out
        need_w = max(self.pl + W, (self.OW - 1) * self.sw + self.dw * (self.kw - 1) + 1)
        self.Wq = -(-need_w // self.sw)
        self.Wp = self.sw * self.Wq
        self.Hp = max(self.pt + H, (self.OH - 1) * self.sh + self.dh * (self.kh - 1) + 1)
        self.slab = self.Hp * self.Wp
        self.K = C * self.kh * self.kw

    def length(self, n: int) -> int:
        """Flat buffer length for n images: the padded images plus the reach of the last window's row
        past its image (up to Wq·s_w − 1 positions)."""
        end = ((self.C * n - 1) * self.slab + self.dh * (self.kh - 1) * self.Wp + self.dw * (self.kw - 1)
               + (self.OH - 1) * self.sh * self.Wp + (self.Wq - 1) * self.sw + 1)
        return max(self.C * n * self.slab, end)

    def images(self, buf, n: int):
        """The buffer as (C, n, Hp, Wp)."""
        return buf[:self.C * n * self.slab].reshape(self.C, n, self.Hp, self.Wp)

    def interior(self, buf, n: int):
        """The (C, n, H, W) input region of the buffer."""
        return self.images(buf, n)[:, :, self.pt:self.pt + self.H, self.pl:self.pl + self.W]

    def window(self, xp, buf, n: int, i: int, j: int):
        """Strided view (C, n, OH, OW) of kernel offset (i, j)."""
        it = buf.itemsize
        off = i * self.dh * self.Wp + j * self.dw
        strides = (n * self.slab, self.slab, self.sh * self.Wp, self.sw)
        return xp.lib.stride_tricks.as_strided(buf[off:], (self.C, n, self.OH, self.OW),
                                               tuple(s * it for s in strides))

    def chunks(self, n: int, itemsize: int, limit: int) -> list:
        """Batch slices whose column matrices stay under ``limit`` bytes."""
        per = max(1, self.K * self.OH * self.OW * itemsize)
        step = max(1, limit // per)
        return [slice(a, min(a + step, n)) for a in range(0, n, step)]


def _im2col(fn, g: _Grid, x, dtype):
    """(n, C, H, W) → column matrix (C·kh·kw, n·OH·OW) (a workspace array)."""
    n = x.shape[0]
    buf = fn.backend.buffers.take((g.length(n),), dtype)
    img = g.images(buf, n)
    # zero only what is not overwritten: the padding frame and the tail that the last windows reach
    img[:, :, :g.pt] = 0
    img[:, :, g.pt + g.H:] = 0
    img[:, :, g.pt:g.pt + g.H, :g.pl] = 0
    img[:, :, g.pt:g.pt + g.H, g.pl + g.W:] = 0
    buf[g.C * n * g.slab:] = 0
    img[:, :, g.pt:g.pt + g.H, g.pl:g.pl + g.W] = x.transpose(1, 0, 2, 3)
    cols = fn.backend.buffers.take((g.C, g.kh, g.kw, n, g.OH, g.OW), dtype)
    for i in range(g.kh):           # one strided copy per kernel offset (faster than one 6-D copy)
        for j in range(g.kw):
            cols[:, i, j] = g.window(fn.xp, buf, n, i, j)
    fn.backend.buffers.give(buf)
    return cols.reshape(g.K, n * g.OH * g.OW)


def _col2im(fn, g: _Grid, cols, n: int):
    """Column matrix (C·kh·kw, n·OH·OW) → padded images (C, n, Hp, Wp) (summing overlaps) in a workspace
    array; returns (flat buffer, (C, n, H, W) interior view)."""
    # with stride 1 the first offset's window is the top-left (OH, OW) corner of every padded image: it is
    # assigned instead of added, and only the rest of each image and the tail need zeros
    first = g.sh == 1 and g.sw == 1
    buf = fn.backend.buffers.take((g.length(n),), cols.dtype, zero=not first)
    if first:
        img = g.images(buf, n)
        img[:, :, g.OH:] = 0
        img[:, :, :g.OH, g.OW:] = 0
        buf[g.C * n * g.slab:] = 0
    c6 = cols.reshape(g.C, g.kh, g.kw, n, g.OH, g.OW)
    for i in range(g.kh):
        for j in range(g.kw):
            view = g.window(fn.xp, buf, n, i, j)
            if first:
                view[...] = c6[:, i, j]
                first = False
            else:
                view += c6[:, i, j]
    return buf, g.interior(buf, n)


def _extend(fn, g: _Grid, y, dtype):
    """(n, O, OH, OW) → channel-major matrix (O, n·OH·OW): a view of ``y`` when it is stored that way (as conv
    results and what elementwise ops make of them are), else a workspace copy; release it with ``_release``."""
    n, O = y.shape[:2]
    t = y.transpose(1, 0, 2, 3)
    if t.dtype == dtype and t.flags.c_contiguous:
        return t.reshape(O, n * g.OH * g.OW)
    e = fn.backend.buffers.take((O, n, g.OH, g.OW), dtype)
    e[...] = t
    return e.reshape(O, n * g.OH * g.OW)


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
        result, from its backend's buffers, when ``fn`` is that op)."""
        order = (shape[1], shape[0]) + tuple(shape[2:]) if self.cmajor else tuple(shape)
        if fn is not None:
            a = fn.backend.buffers.result(order, xp.dtype(dtype))
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
