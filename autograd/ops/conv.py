"""2-D convolution (cross-correlation) and transposed convolution as fused ops: im2col + one matrix product.

Three Functions, each the adjoint of the others, so every backward is again made of them and differentiates
to any order:

    Conv2d(x, w)            y = w ⋆ x                         (N, C, H, W) → (N, O, OH, OW)
    ConvTranspose2d(y, w)   x = wᵀ ⋆ y, the adjoint of Conv2d in x   (N, O, OH, OW) → (N, C, H, W)
    Conv2dWeightGrad(x, y)  w = the adjoint of Conv2d in w        → (O, C/groups, kh, kw)

conv2d's input gradient is ConvTranspose2d, conv_transpose2d's input gradient is Conv2d, and both weight
gradients are Conv2dWeightGrad.

Column layout ("flat shift"). The input is copied once into a zero-padded, channel-major buffer
(C, N, Hp, Wp) with Wp = stride_w · Wq a multiple of the stride. Output pixel (oh, ow) of kernel offset
(i, j) then reads flat position  oh·s_h·Wp + ow·s_w + (i·d_h·Wp + j·d_w)  of its image: for every offset the
whole (OH, OW) grid is one strided view of the buffer, so im2col is kh·kw strided copies into the column
matrix (C·kh·kw, N·OH·OW) and col2im is kh·kw vectorised adds (with stride 1 the first is an assignment,
so only the rest of the buffer needs zeros). The matrices hold no padding columns: every product does only
useful work, and the forward's result is already a contiguous (O, N, OH, OW) block, on which the
elementwise ops that follow run as one long loop. Every product is then one float32 GEMM:

    forward   y  = W (O, C·kh·kw) @ cols (C·kh·kw, N·OH·OW)
    weight    gW = gy (O, N·OH·OW) @ colsᵀ
    input     cols = Wᵀ @ gy, then col2im

(groups make these one batched product over the groups).

Memory: the column matrix holds C·kh·kw · N·OH·OW elements, i.e. C·kh·kw/O times the output. When it
would exceed ``COL_BUFFER_BYTES`` the batch is processed in chunks of images (one product per chunk). When
the weight requires grad the forward's column matrix is kept for the weight gradient (only when it fits in
one chunk) and released by the backward pass. Large transients
(padded copies, column matrices, extended gradients) come from a small per-thread workspace of recycled
arrays (at most ``WORKSPACE_BYTES``), since fresh multi-megabyte arrays cost a page fault per 4 KiB (about
2 µs each on a virtual machine, where the allocator hands freed memory back to the system between training
steps). Large results (here and in pooling) are recycled too, but only once nothing references them any more
(``_Workspace.result``).

Layout: results are stored channel-major, (C, N, H, W) in memory and seen as (N, C, H, W), because that is
the order the products produce them in; elementwise ops and pooling keep that order, and the next
convolution's copy into its padded channel-major buffer then reads contiguous rows.
"""
from __future__ import annotations

import sys
import threading

from ..function import Function, is_grad_enabled
from ..spec import OpSpec, composite
from ..tensor import Tensor
from ._util import const
from .reduction import sum as _sum
from .shape import reshape

__all__ = ["conv2d", "conv_transpose2d", "conv1d"]

COL_BUFFER_BYTES = 256 * 2**20
"""Largest column matrix built at once; bigger batches are split into chunks of images."""


# --- geometry ------------------------------------------------------------------------------------------


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

    def chunks(self, n: int, itemsize: int) -> list:
        """Batch slices whose column matrices stay under ``COL_BUFFER_BYTES``."""
        per = max(1, self.K * self.OH * self.OW * itemsize)
        step = max(1, COL_BUFFER_BYTES // per)
        return [slice(a, min(a + step, n)) for a in range(0, n, step)]


class _Workspace(threading.local):
    """Recycled flat arrays for the large transients (padded copies, column matrices, extended gradients).

    A fresh multi-megabyte array costs a page fault per 4 KiB page on first touch, often more than the
    copy that fills it; a few arrays per size are kept for the next call, at most WORKSPACE_BYTES in all.
    """

    def __init__(self):
        self.free: dict = {}
        self.bytes = 0
        self.results: dict = {}     # (backend, dtype, shape) -> arrays handed out as results
        self.result_bytes = 0

    def take(self, fn, shape, dtype, zero: bool = False):
        backend = fn.backend
        n = 1
        for s in shape:
            n *= s
        stack = self.free.get((backend, dtype.str, n))
        if stack:
            a = stack.pop()
            self.bytes -= a.nbytes
            if zero:
                a.fill(0)
            return a.reshape(shape)
        return (backend.xp.zeros if zero else backend.xp.empty)(shape, dtype)

    def give(self, fn, a) -> None:
        """Return an array from ``take`` whose contents (and every view of it) are no longer needed."""
        if a is None or a.nbytes < 2**18 or self.bytes + a.nbytes > WORKSPACE_BYTES:
            return
        stack = self.free.setdefault((fn.backend, a.dtype.str, a.size), [])
        if len(stack) < 2:
            stack.append(a.reshape(-1))
            self.bytes += a.nbytes

    def result(self, fn, shape, dtype):
        """An uninitialised array for an op's result: an earlier result of the same shape that nothing uses any
        more, else a new one (kept for reuse while the budget allows; at most a few per shape).

        Every view of an array holds a reference to it, so an array whose only holder is this workspace can
        no longer be seen by anyone. Reusing it spares the page faults of fresh memory, which the allocator
        returns to the system between training steps.
        """
        shape = tuple(shape)
        n = 1
        for s in shape:
            n *= s
        if n * dtype.itemsize < 2**18:
            return fn.backend.xp.empty(shape, dtype)
        kept = self.results.setdefault((fn.backend, dtype.str, shape), [])
        for a, refs in zip(kept, _refcounts(kept)):
            if refs == _ONLY_LISTED:
                return a
        a = fn.backend.xp.empty(shape, dtype)
        if len(kept) < 4 and self.result_bytes + a.nbytes <= WORKSPACE_BYTES:
            kept.append(a)
            self.result_bytes += a.nbytes
        return a

    def clear(self) -> None:
        self.free.clear()
        self.bytes = 0
        self.results.clear()
        self.result_bytes = 0


WORKSPACE_BYTES = 256 * 2**20
"""Most memory the conv ops keep for reuse between calls."""


def _refcounts(items: list) -> list:
    return [sys.getrefcount(a) for a in items]


_ONLY_LISTED = _refcounts([object()])[0]
"""What ``_refcounts`` reports for an object that only its list holds (measured, not assumed: the count
includes the interpreter's own temporary references, which differ between Python versions)."""

_ws = _Workspace()


def _im2col(fn, g: _Grid, x, dtype):
    """(n, C, H, W) → column matrix (C·kh·kw, n·OH·OW) (a workspace array)."""
    n = x.shape[0]
    buf = _ws.take(fn, (g.length(n),), dtype)
    img = g.images(buf, n)
    # zero only what is not overwritten: the padding frame and the tail that the last windows reach
    img[:, :, :g.pt] = 0
    img[:, :, g.pt + g.H:] = 0
    img[:, :, g.pt:g.pt + g.H, :g.pl] = 0
    img[:, :, g.pt:g.pt + g.H, g.pl + g.W:] = 0
    buf[g.C * n * g.slab:] = 0
    img[:, :, g.pt:g.pt + g.H, g.pl:g.pl + g.W] = x.transpose(1, 0, 2, 3)
    cols = _ws.take(fn, (g.C, g.kh, g.kw, n, g.OH, g.OW), dtype)
    for i in range(g.kh):           # one strided copy per kernel offset (faster than one 6-D copy)
        for j in range(g.kw):
            cols[:, i, j] = g.window(fn.xp, buf, n, i, j)
    _ws.give(fn, buf)
    return cols.reshape(g.K, n * g.OH * g.OW)


def _col2im(fn, g: _Grid, cols, n: int):
    """Column matrix (C·kh·kw, n·OH·OW) → padded images (C, n, Hp, Wp) (summing overlaps) in a workspace
    array; returns (flat buffer, (C, n, H, W) interior view)."""
    # with stride 1 the first offset's window is the top-left (OH, OW) corner of every padded image: it is
    # assigned instead of added, and only the rest of each image and the tail need zeros
    first = g.sh == 1 and g.sw == 1
    buf = _ws.take(fn, (g.length(n),), cols.dtype, zero=not first)
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
    e = _ws.take(fn, (O, n, g.OH, g.OW), dtype)
    e[...] = t
    return e.reshape(O, n * g.OH * g.OW)


def _release(fn, e, y) -> None:
    """Hand ``e = _extend(fn, g, y, ·)`` back to the workspace, unless it is ``y``'s own memory."""
    if e is not None and not fn.xp.may_share_memory(e, y):
        _ws.give(fn, e)


def _matmul(xp, a, b, groups: int, ta: bool = False, tb: bool = False, out=None):
    """(groups·r, k) ⊗ (groups·k, c) as one product per group (one batched call), with optional transposes."""
    if groups == 1:
        return xp.matmul(a.T if ta else a, b.T if tb else b, out=out)
    a3 = a.reshape(groups, a.shape[0] // groups, a.shape[1])
    b3 = b.reshape(groups, b.shape[0] // groups, b.shape[1])
    r = xp.matmul(a3.transpose(0, 2, 1) if ta else a3, b3.transpose(0, 2, 1) if tb else b3,
                  out=None if out is None else out.reshape(groups, -1, out.shape[1]))
    return r.reshape(groups * r.shape[1], r.shape[2])


def _geom(fn, x_shape, out_hw, kernel) -> _Grid:
    return _Grid(x_shape[1], x_shape[2], x_shape[3], kernel, fn.stride, fn.dilation, fn.pad, out_hw)


# --- the ops -----------------------------------------------------------------------------------------
#
# Outputs are laid out channel-major in memory ((C, N, H, W) storage, seen as (N, C, H, W)): that is the
# order the products produce, so no transposing copy is made; elementwise ops keep that order.


class Conv2d(Function):
    """f = Σ_{c,i,j} w[o,c,i,j] x[n,c,oh·s+i·d−p, ow·s+j·d−p] + b[o];  df/dx = conv_transpose2d(g, w),
    df/dw = Σ_{n,oh,ow} g · x-window (Conv2dWeightGrad), df/db = Σ g."""
    keep = False
    saved = None

    def forward(self, x, w, b=None):
        xp = self.xp
        N, O = x.shape[0], w.shape[0]
        g = _geom(self, x.shape, self.out_hw, w.shape[2:])
        dt = xp.result_type(x, w)
        wm = w.reshape(O, -1)
        chunks = g.chunks(N, dt.itemsize)
        if len(chunks) == 1:
            cols = _im2col(self, g, x, dt)
            y = _matmul(xp, wm, cols, self.groups, out=_ws.result(self, (O, cols.shape[1]), dt))
            if b is not None:
                y += b.reshape(O, 1)
            if self.keep:
                self.saved = cols        # for the weight gradient; handed back to the workspace there
            else:
                _ws.give(self, cols)
            return y.reshape(O, N, g.OH, g.OW).transpose(1, 0, 2, 3)
        out = _ws.result(self, (O, N) + tuple(self.out_hw), dt)
        for sl in chunks:
            n = sl.stop - sl.start
            cols = _im2col(self, g, x[sl], dt)
            y = _matmul(xp, wm, cols, self.groups).reshape(O, n, g.OH, g.OW)
            _ws.give(self, cols)
            if b is None:
                out[:, sl] = y
            else:
                xp.add(y, b.reshape(O, 1, 1, 1), out=out[:, sl])
        return out.transpose(1, 0, 2, 3)

    def backward(self, gy):
        x, w = self.inputs[0], self.inputs[1]
        b = self.inputs[2] if len(self.inputs) == 3 else None
        cols, self.saved = self.saved, None
        kw = dict(stride=self.stride, dilation=self.dilation, groups=self.groups, pad=self.pad)
        ext = None
        if not is_grad_enabled():
            # plain backward: both products read the same channel-major gradient matrix; build it once
            g = _geom(self, x.shape, self.out_hw, w.shape[2:])
            if len(g.chunks(x.shape[0], gy.data.dtype.itemsize)) == 1:
                ext = _extend(self, g, gy.data, gy.data.dtype)
        gx = ConvTranspose2d.apply(gy, w, out_hw=x.shape[2:], ext=ext, **kw) if x._rg else None
        gw = Conv2dWeightGrad.apply(x, gy, kernel=w.shape[2:], cols=cols, ext=ext, **kw) if w._rg else None
        gb = None
        if b is not None and b._rg:
            gb = const(ext.sum(axis=1), gy) if ext is not None else _sum(gy, axis=(0, 2, 3))
        _release(self, ext, gy.data)
        return (gx, gw) if b is None else (gx, gw, gb)


class ConvTranspose2d(Function):
    """f = the adjoint of conv2d in x: f[n,c,h,w] = Σ x[n,o,oh,ow] w[o,c,i,j] over h = oh·s+i·d−p (+ b[c]);
    df/dx = conv2d(g, w), df/dw = Conv2dWeightGrad(g, x), df/db = Σ g."""
    ext = None      # x already as the channel-major matrix (O, N·OH·OW) (lent by Conv2d.backward)

    def forward(self, x, w, b=None):
        xp = self.xp
        N, Cin = x.shape[:2]
        C = w.shape[1] * self.groups
        H, W = self.out_hw
        g = _geom(self, (N, C, H, W), x.shape[2:], w.shape[2:])
        dt = xp.result_type(x, w)
        wm = w.reshape(Cin, -1)
        out = _ws.result(self, (C, N, H, W), dt)
        ext, self.ext = self.ext, None
        for sl in [slice(0, N)] if ext is not None else g.chunks(N, dt.itemsize):
            n = sl.stop - sl.start
            e = ext if ext is not None else _extend(self, g, x[sl], dt)
            cols = _ws.take(self, (g.K, e.shape[1]), dt)
            _matmul(xp, wm, e, self.groups, ta=True, out=cols)
            if ext is None:
                _release(self, e, x)
            buf, y = _col2im(self, g, cols, n)
            _ws.give(self, cols)
            if b is None:
                out[:, sl] = y
            else:
                xp.add(y, b.reshape(C, 1, 1, 1), out=out[:, sl])
            _ws.give(self, buf)
        return out.transpose(1, 0, 2, 3)

    def backward(self, gy):
        x, w = self.inputs[0], self.inputs[1]
        kw = dict(stride=self.stride, dilation=self.dilation, groups=self.groups, pad=self.pad)
        gx = Conv2d.apply(gy, w, out_hw=x.shape[2:], **kw) if x._rg else None
        gw = Conv2dWeightGrad.apply(gy, x, kernel=w.shape[2:], cols=None, **kw) if w._rg else None
        if len(self.inputs) == 2:
            return gx, gw
        gb = _sum(gy, axis=(0, 2, 3)) if self.inputs[2]._rg else None
        return gx, gw, gb


class Conv2dWeightGrad(Function):
    """f = Σ_{n,oh,ow} gy[n,o,oh,ow] x[n,c,oh·s+i·d−p, ow·s+j·d−p] (conv2d's weight gradient, bilinear);
    df/dx = conv_transpose2d(gy, g), df/dgy = conv2d(x, g)."""
    cols = None     # the forward's column matrix of x (lent by Conv2d.backward; returned to the workspace)
    ext = None      # gy as the channel-major matrix (O, N·OH·OW) (lent by Conv2d.backward)

    def forward(self, x, gy):
        xp = self.xp
        N, C = x.shape[:2]
        O = gy.shape[1]
        g = _geom(self, x.shape, gy.shape[2:], self.kernel)
        dt = xp.result_type(x, gy)
        cols, self.cols = self.cols, None
        ext, self.ext = self.ext, None
        gw = None
        whole = cols is not None or ext is not None
        for sl in [slice(0, N)] if whole else g.chunks(N, dt.itemsize):
            c = cols if cols is not None else _im2col(self, g, x[sl], dt)
            e = ext if ext is not None else _extend(self, g, gy[sl], dt)
            part = _matmul(xp, e, c, self.groups, tb=True)
            if ext is None:
                _release(self, e, gy)
            _ws.give(self, c)
            gw = part if gw is None else gw + part
        if gw is None:
            gw = xp.zeros((O, g.K // self.groups), dt)
        return gw.reshape((O, C // self.groups) + tuple(self.kernel))

    def backward(self, ggw):
        x, gy = self.inputs
        kw = dict(stride=self.stride, dilation=self.dilation, groups=self.groups, pad=self.pad)
        gx = ConvTranspose2d.apply(gy, ggw, out_hw=x.shape[2:], **kw) if x._rg else None
        ggy = Conv2d.apply(x, ggw, out_hw=gy.shape[2:], **kw) if gy._rg else None
        return gx, ggy


# --- argument handling -------------------------------------------------------------------------------


def _pair(v, name: str, op: str) -> tuple:
    if isinstance(v, (tuple, list)):
        if len(v) != 2 or not all(isinstance(e, int) for e in v):
            raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
        return int(v[0]), int(v[1])
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    return int(v), int(v)


def _shapes(x, w) -> str:
    return f"input shape {tuple(x.shape)}, weight shape {tuple(w.shape)}"


def _check_common(op, x, w, b, stride, dilation, groups, in_axis):
    """Rank, groups, stride and dilation checks shared by conv2d and conv_transpose2d."""
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W) or 3-D (C, H, W), got {_shapes(x, w)}")
    if w.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D weight, got {_shapes(x, w)}")
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r} ({_shapes(x, w)})")
    if min(stride) < 1:
        raise ValueError(f"{op}: stride must be positive, got {stride} ({_shapes(x, w)})")
    if min(dilation) < 1:
        raise ValueError(f"{op}: dilation must be positive, got {dilation} ({_shapes(x, w)})")
    if b is not None and tuple(b.shape) != (w.shape[in_axis],):
        raise ValueError(f"{op}: bias shape {tuple(b.shape)} does not match {w.shape[in_axis]} output channels "
                         f"({_shapes(x, w)})")


def _unbatched(x, op):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(x).__name__}")
    return x.ndim == 3


def _prologue(op, input, weight, bias, stride, dilation, groups, transposed):
    """Shared argument handling: (unbatched?, batched input, stride pair, dilation pair), after the checks."""
    single = _unbatched(input, op)
    x = reshape(input, (1,) + input.shape) if single else input
    stride, dilation = _pair(stride, "stride", op), _pair(dilation, "dilation", op)
    _check_common(op, x, weight, bias, stride, dilation, groups, transposed)
    return single, x, stride, dilation


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """2-D cross-correlation (PyTorch's ``conv2d``), one fused node.

    Args:
        input: (N, C, H, W), or (C, H, W) for one image.
        weight: (O, C/groups, kh, kw).
        bias: (O,) or None.
        stride, dilation: int or pair, positive.
        padding: int or pair (zeros on both sides), ``"valid"`` (0) or ``"same"`` (stride 1 only; an odd
            total goes to the bottom/right, as in PyTorch).
        groups: input and output channels are split into this many independent groups.

    Returns:
        (N, O, OH, OW) with OH = ⌊(H + 2p − d(kh − 1) − 1)/s⌋ + 1.
    """
    op = "conv2d"
    single, x, stride, dilation = _prologue(op, input, weight, bias, stride, dilation, groups, 0)
    w = weight
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    if Cg * groups != C:
        raise ValueError(f"{op}: input has {C} channels but the weight expects {Cg * groups} "
                         f"({Cg} per group × groups={groups}); {_shapes(x, w)}")
    if O % groups:
        raise ValueError(f"{op}: {O} output channels are not divisible by groups={groups} ({_shapes(x, w)})")
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0), (0, 0))
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' needs stride 1, got stride {stride} ({_shapes(x, w)})")
            th, tw = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
            pads = ((th // 2, th - th // 2), (tw // 2, tw - tw // 2))
        else:
            raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    else:
        ph, pw = _pair(padding, "padding", op)
        if min(ph, pw) < 0:
            raise ValueError(f"{op}: padding must be non-negative, got {(ph, pw)} ({_shapes(x, w)})")
        pads = ((ph, ph), (pw, pw))
    eh, ew = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    hp, wp = H + sum(pads[0]), W + sum(pads[1])
    if eh > hp or ew > wp:
        raise ValueError(f"{op}: kernel {(kh, kw)} (extent {(eh, ew)} with dilation {dilation}) is larger than "
                         f"the padded input {(hp, wp)}; {_shapes(x, w)}, padding {padding!r}")
    out_hw = ((hp - eh) // stride[0] + 1, (wp - ew) // stride[1] + 1)
    keep = is_grad_enabled() and w.requires_grad
    args = (x, w) if bias is None else (x, w, bias)
    y = Conv2d.apply(*args, stride=stride, dilation=dilation, groups=groups, pad=(pads[0][0], pads[1][0]),
                     out_hw=out_hw, keep=keep)
    return reshape(y, y.shape[1:]) if single else y


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """2-D transposed convolution (PyTorch's ``conv_transpose2d``): the gradient of conv2d with respect to
    its input, used for upsampling.

    Args:
        input: (N, C_in, H, W), or (C_in, H, W).
        weight: (C_in, C_out/groups, kh, kw).
        bias: (C_out,) or None.
        stride, padding, dilation: as for the convolution this one transposes.
        output_padding: extra rows/columns added on one side of the output (< stride or dilation).

    Returns:
        (N, C_out, H_out, W_out), H_out = (H − 1)s − 2p + d(kh − 1) + output_padding + 1.
    """
    op = "conv_transpose2d"
    single, x, stride, dilation = _prologue(op, input, weight, None, stride, dilation, groups, 1)
    w = weight
    N, Cin, H, W = x.shape
    if w.shape[0] != Cin:
        raise ValueError(f"{op}: input has {Cin} channels but the weight expects {w.shape[0]} "
                         f"(weight is (C_in, C_out/groups, kh, kw)); {_shapes(x, w)}")
    if Cin % groups:
        raise ValueError(f"{op}: {Cin} input channels are not divisible by groups={groups} ({_shapes(x, w)})")
    cout = w.shape[1] * groups
    if bias is not None and tuple(bias.shape) != (cout,):
        raise ValueError(f"{op}: bias shape {tuple(bias.shape)} does not match {cout} output channels "
                         f"({_shapes(x, w)})")
    ph, pw = _pair(padding, "padding", op)
    oph, opw = _pair(output_padding, "output_padding", op)
    if min(ph, pw, oph, opw) < 0:
        raise ValueError(f"{op}: padding {(ph, pw)} and output_padding {(oph, opw)} must be non-negative")
    if oph >= max(stride[0], dilation[0]) or opw >= max(stride[1], dilation[1]):
        raise ValueError(f"{op}: output_padding {(oph, opw)} must be smaller than stride {stride} or dilation "
                         f"{dilation} ({_shapes(x, w)})")
    kh, kw = w.shape[2:]
    out_hw = ((H - 1) * stride[0] - 2 * ph + dilation[0] * (kh - 1) + oph + 1,
              (W - 1) * stride[1] - 2 * pw + dilation[1] * (kw - 1) + opw + 1)
    if min(out_hw) < 1:
        raise ValueError(f"{op}: output size {out_hw} is not positive (padding {(ph, pw)} too large); "
                         f"{_shapes(x, w)}")
    args = (x, w) if bias is None else (x, w, bias)
    y = ConvTranspose2d.apply(*args, stride=stride, dilation=dilation, groups=groups, pad=(ph, pw),
                              out_hw=out_hw)
    return reshape(y, y.shape[1:]) if single else y


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-D cross-correlation: input (N, C, L) or (C, L), weight (O, C/groups, k); conv2d on height 1."""
    op = "conv1d"
    if not isinstance(input, Tensor) or input.ndim not in (2, 3) or weight.ndim != 3:
        raise ValueError(f"{op}: expected input (N, C, L) or (C, L) and weight (O, C/groups, k), got "
                         f"{_shapes(input, weight)}")

    def one(v, name):
        if isinstance(v, (tuple, list)):
            if len(v) != 1:
                raise ValueError(f"{op}: {name} must be an int or a 1-tuple, got {v!r}")
            v = v[0]
        return v

    pad = padding if isinstance(padding, str) else (0, one(padding, "padding"))
    x = reshape(input, input.shape[:-1] + (1, input.shape[-1]))
    w = reshape(weight, weight.shape[:2] + (1, weight.shape[2]))
    try:
        y = conv2d(x, w, bias, (1, one(stride, "stride")), pad, (1, one(dilation, "dilation")), groups)
    except ValueError as e:
        raise ValueError(f"{op}: {str(e).split(': ', 1)[-1]} (1-D {_shapes(input, weight)})") from None
    return reshape(y, y.shape[:-2] + (y.shape[-1],))


# --- test samples ------------------------------------------------------------------------------------


def _pads_of(padding, kernel, dilation):
    """((top, bottom), (left, right)) for a conv2d padding argument (reference side)."""
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        t = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((e // 2, e - e // 2) for e in t)
    p = (padding, padding) if isinstance(padding, int) else tuple(padding)
    return ((p[0], p[0]), (p[1], p[1]))


def _conv_ref(np, x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Direct loop over kernel offsets, one einsum per group and offset."""
    s = (stride, stride) if isinstance(stride, int) else tuple(stride)
    d = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
    O, Cg, kh, kw = w.shape
    pads = _pads_of(padding, (kh, kw), d)
    xp_ = np.pad(x, ((0, 0), (0, 0)) + pads)
    OH = (xp_.shape[2] - d[0] * (kh - 1) - 1) // s[0] + 1
    OW = (xp_.shape[3] - d[1] * (kw - 1) - 1) // s[1] + 1
    Og = O // groups
    y = np.zeros((x.shape[0], O, OH, OW))
    for gi in range(groups):
        xs = xp_[:, gi * Cg:(gi + 1) * Cg]
        for i in range(kh):
            for j in range(kw):
                r, c = i * d[0], j * d[1]
                win = xs[:, :, r:r + s[0] * (OH - 1) + 1:s[0], c:c + s[1] * (OW - 1) + 1:s[1]]
                y[:, gi * Og:(gi + 1) * Og] += np.einsum("nchw,oc->nohw", win, w[gi * Og:(gi + 1) * Og, :, i, j])
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def _convT_ref(np, x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Scatter every input pixel's kernel-weighted contribution, then crop the padding."""
    s = (stride, stride) if isinstance(stride, int) else tuple(stride)
    d = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
    p = (padding, padding) if isinstance(padding, int) else tuple(padding)
    op = (output_padding, output_padding) if isinstance(output_padding, int) else tuple(output_padding)
    N, Cin, H, W = x.shape
    _, Cog, kh, kw = w.shape
    Ho = (H - 1) * s[0] - 2 * p[0] + d[0] * (kh - 1) + op[0] + 1
    Wo = (W - 1) * s[1] - 2 * p[1] + d[1] * (kw - 1) + op[1] + 1
    full = np.zeros((N, Cog * groups, max(Ho + p[0], (H - 1) * s[0] + d[0] * (kh - 1) + 1),
                     max(Wo + p[1], (W - 1) * s[1] + d[1] * (kw - 1) + 1)))
    Cig = Cin // groups
    for gi in range(groups):
        for i in range(kh):
            for j in range(kw):
                full[:, gi * Cog:(gi + 1) * Cog, i * d[0]:i * d[0] + s[0] * (H - 1) + 1:s[0],
                     j * d[1]:j * d[1] + s[1] * (W - 1) + 1:s[1]] += np.einsum(
                    "nchw,co->nohw", x[:, gi * Cig:(gi + 1) * Cig], w[gi * Cig:(gi + 1) * Cig, :, i, j])
    y = full[:, :, p[0]:p[0] + Ho, p[1]:p[1] + Wo]
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def _wgrad_ref(np, x, gy, stride, pad, dilation, groups, kernel):
    s, d, (pt, pl), (kh, kw) = stride, dilation, pad, kernel
    N, C, H, W = x.shape
    O, OH, OW = gy.shape[1], gy.shape[2], gy.shape[3]
    big = np.zeros((N, C, max(pt + H, (OH - 1) * s[0] + d[0] * (kh - 1) + 1),
                    max(pl + W, (OW - 1) * s[1] + d[1] * (kw - 1) + 1)))
    big[:, :, pt:pt + H, pl:pl + W] = x
    Cg, Og = C // groups, O // groups
    gw = np.zeros((O, Cg, kh, kw))
    for gi in range(groups):
        for i in range(kh):
            for j in range(kw):
                win = big[:, gi * Cg:(gi + 1) * Cg, i * d[0]:i * d[0] + s[0] * (OH - 1) + 1:s[0],
                          j * d[1]:j * d[1] + s[1] * (OW - 1) + 1:s[1]]
                gw[gi * Og:(gi + 1) * Og, :, i, j] = np.einsum("nohw,nchw->oc", gy[:, gi * Og:(gi + 1) * Og], win)
    return gw


def _draw_geometry(d):
    """Small random convolution settings: groups, channels per group, kernel, stride, dilation."""
    groups = d.choice([1, 1, 2])
    cg, og = d.int(1, 2), d.int(1, 2)
    kernel = (d.int(1, 3), d.int(1, 3))
    stride = (d.int(1, 2), d.int(1, 2))
    dilation = (d.int(1, 2), d.int(1, 2)) if d.int(0, 3) == 0 else (1, 1)
    return groups, cg, og, kernel, stride, dilation


def _conv_sample(d):
    groups, cg, og, (kh, kw), stride, dilation = _draw_geometry(d)
    kind = d.int(0, 5)
    if kind == 0 and stride == (1, 1):
        padding = "same"
    elif kind == 1:
        padding = "valid"
    elif kind == 2:
        padding = (d.int(0, 2), d.int(0, 2))
    else:
        padding = d.int(0, 1)
    pads = _pads_of(padding, (kh, kw), dilation)
    H = d.int(max(1, dilation[0] * (kh - 1) + 1 - sum(pads[0])), dilation[0] * (kh - 1) + 3)
    W = d.int(max(1, dilation[1] * (kw - 1) + 1 - sum(pads[1])), dilation[1] * (kw - 1) + 3)
    arrays = [d.array((d.int(1, 2), cg * groups, H, W)), d.array((og * groups, cg, kh, kw))]
    if d.bool():
        arrays.append(d.array((og * groups,)))
    kw_ = dict(stride=stride if d.bool() else (stride[0] if stride[0] == stride[1] else stride), padding=padding,
               dilation=dilation, groups=groups)
    return arrays, kw_


def _convT_sample(d):
    groups, cg, og, (kh, kw), stride, dilation = _draw_geometry(d)
    padding = (d.int(0, 1), d.int(0, 1))
    output_padding = tuple(d.int(0, max(s, dl) - 1) for s, dl in zip(stride, dilation))
    H, W = d.int(1, 3), d.int(1, 3)
    # keep the output non-empty: (H − 1)s − 2p + d(k − 1) + op + 1 ≥ 1
    for ax, (n, k) in enumerate(((H, kh), (W, kw))):
        while (n - 1) * stride[ax] - 2 * padding[ax] + dilation[ax] * (k - 1) + output_padding[ax] < 0:
            padding = tuple(p - 1 if a == ax else p for a, p in enumerate(padding))
    arrays = [d.array((d.int(1, 2), og * groups, H, W)), d.array((og * groups, cg, kh, kw))]
    if d.bool():
        arrays.append(d.array((cg * groups,)))
    return arrays, dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                        dilation=dilation)


def _wgrad_sample(d):
    groups, cg, og, (kh, kw), stride, dilation = _draw_geometry(d)
    pad = (d.int(0, 1), d.int(0, 1))
    H = d.int(max(1, dilation[0] * (kh - 1) + 1 - 2 * pad[0]), dilation[0] * (kh - 1) + 3)
    W = d.int(max(1, dilation[1] * (kw - 1) + 1 - 2 * pad[1]), dilation[1] * (kw - 1) + 3)
    OH = (H + 2 * pad[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    OW = (W + 2 * pad[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    N = d.int(1, 2)
    return [d.array((N, cg * groups, H, W)), d.array((N, og * groups, OH, OW))], \
        dict(stride=stride, pad=pad, dilation=dilation, groups=groups, kernel=(kh, kw))


Conv2d.spec = OpSpec(ref=_conv_ref, sample=_conv_sample, call=lambda *a, **kw: conv2d(*a, **kw))
ConvTranspose2d.spec = OpSpec(ref=_convT_ref, sample=_convT_sample,
                              call=lambda *a, **kw: conv_transpose2d(*a, **kw))
Conv2dWeightGrad.spec = OpSpec(ref=_wgrad_ref, sample=_wgrad_sample,
                               call=lambda x, gy, **kw: Conv2dWeightGrad.apply(x, gy, **kw))


def _conv1d_sample(d):
    groups, cg, og, (_, k), (_, s), (_, dl) = _draw_geometry(d)
    padding = d.choice([0, 1, "same", "valid"]) if s == 1 else d.int(0, 1)
    p = _pads_of(padding, (1, k), (1, dl))[1]
    L = d.int(max(1, dl * (k - 1) + 1 - sum(p)), dl * (k - 1) + 3)
    arrays = [d.array((d.int(1, 2), cg * groups, L)), d.array((og * groups, cg, k))]
    if d.bool():
        arrays.append(d.array((og * groups,)))
    return arrays, dict(stride=s, padding=padding, dilation=dl, groups=groups)


def _conv1d_ref(np, x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    pad = padding if isinstance(padding, str) else (0, padding)
    return _conv_ref(np, x[:, :, None], w[:, :, None], b, (1, stride), pad, (1, dilation), groups)[:, :, 0]


composite("conv1d", OpSpec(ref=_conv1d_ref, sample=_conv1d_sample, call=lambda *a, **kw: conv1d(*a, **kw)))
