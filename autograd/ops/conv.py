"""2-D convolution (cross-correlation) and transposed convolution as fused ops: im2col + one matrix product.

Three Functions, each the adjoint of the others, so every backward is again made of them and differentiates
to any order:

    Conv2d(x, w)            y = w ⋆ x                         (N, C, H, W) → (N, O, OH, OW)
    ConvTranspose2d(y, w)   x = wᵀ ⋆ y, the adjoint of Conv2d in x   (N, O, OH, OW) → (N, C, H, W)
    Conv2dWeightGrad(x, y)  w = the adjoint of Conv2d in w        → (O, C/groups, kh, kw)

conv2d's input gradient is ConvTranspose2d, conv_transpose2d's input gradient is Conv2d, and both weight
gradients are Conv2dWeightGrad.

Column layout (batch-last). The input is read as batch-last images (C, H, W, N) (convolution results are
stored that way, so this is a view; other inputs are copied once): for every kernel offset (i, j) the
outputs whose window entry lies inside the image form one strided slice (C, OH', OW', N) of it whose
innermost run is (OW', N), contiguous at stride 1, so im2col is kh·kw copies over long runs into the column
matrix (C·kh·kw, OH·OW·N), with zeros where a window reads the padding, and col2im is kh·kw vectorised adds
straight into the result (the offset that covers the whole image, the centre of a 'same' convolution, is
assigned first, so nothing needs zeros). Padding is never materialised. (A channel-major (C, N, H, W)
layout makes NumPy loop over one short image row at a time; batch-last cut the CNN step's convolution time
by a fifth.) The matrices hold no padding columns: every product does only useful work, and the forward's
result is already a contiguous (O, OH, OW, N) block, on which the elementwise ops that follow run as one
long loop. Every product is then one float32 GEMM:

    forward   y  = W (O, C·kh·kw) @ cols (C·kh·kw, OH·OW·N)
    weight    gW = gy (O, OH·OW·N) @ colsᵀ
    input     cols = Wᵀ @ gy, then col2im

(groups make these one batched product over the groups).

Memory: the column matrix holds C·kh·kw · N·OH·OW elements, i.e. C·kh·kw/O times the output. When it
would exceed ``COL_BUFFER_BYTES`` the batch is processed in chunks of images (one product per chunk). When
the weight requires grad the forward's column matrix is kept for the weight gradient (only when it fits in
one chunk) and released by the backward pass. Large transients (batch-last copies, column matrices, extended
gradients) and results come from the backend's buffers (``self.backend.buffers``, see :mod:`backends.buffers`):
recycled per thread on the CPU, where fresh multi-megabyte arrays cost a page fault per 4 KiB, and a result
only once nothing references it any more; plain allocations from CuPy's memory pool on a GPU.

Where the pieces are: the grid geometry in :mod:`autograd.ops._grid`, im2col and col2im as the backend's fused
operations (``ArrayFused.im2col``/``col2im``, C kernels on the CPU), the test samples and naive references in
:mod:`autograd.ops._references`.

Layout: results are stored batch-last, (C, H, W, N) in memory and seen as (N, C, H, W), because that is
the order the products produce them in; elementwise ops and pooling keep that order, and the next
convolution reads them in place.
"""
from __future__ import annotations

from ..errors import OpTypeError, OpValueError, renamed
from ..function import Function, is_grad_enabled
from ..spec import OpSpec, composite, public
from ..tensor import Tensor
from ._grid import _extend, _Grid, _im2col, _release
from ._references import (_conv1d_ref, _conv1d_sample, _conv_ref, _conv_sample, _convT_ref, _convT_sample,
                          _wgrad_ref, _wgrad_sample)
from ._util import const, int_pair
from .reduction import sum as _sum
from .shape import reshape
from .support import check_padding, check_positive, check_same_padding

__all__ = ["conv2d", "conv_transpose2d", "conv1d"]

COL_BUFFER_BYTES = 256 * 2**20
"""Largest column matrix built at once; bigger batches are split into chunks of images."""


# --- grouped products ----------------------------------------------------------------------------------


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
# Outputs are laid out batch-last in memory ((C, H, W, N) storage, seen as (N, C, H, W)): that is the
# order the products produce, so no transposing copy is made; elementwise ops keep that order.


class Conv2d(Function):
    """f = Σ_{c,i,j} w[o,c,i,j] x[n,c,oh·s+i·d−p, ow·s+j·d−p] + b[o];  df/dx = conv_transpose2d(g, w),
    df/dw = Σ_{n,oh,ow} g · x-window (Conv2dWeightGrad), df/db = Σ g."""
    spec = OpSpec(ref=_conv_ref, sample=_conv_sample, call=lambda *a, **kw: conv2d(*a, **kw))
    keep = False
    saved = None

    def forward(self, x, w, b=None):
        xp = self.xp
        N, O = x.shape[0], w.shape[0]
        g = _geom(self, x.shape, self.out_hw, w.shape[2:])
        dt = xp.result_type(x, w)
        wm = w.reshape(O, -1)
        chunks = g.chunks(N, dt.itemsize, COL_BUFFER_BYTES)
        if len(chunks) == 1:
            # y = [W | b] @ [cols; 1]: the bias rides in the product instead of a pass over the result
            fold = b is not None and self.groups == 1
            cols = _im2col(self, g, x, dt, ones=fold)
            if fold:
                wm = xp.concatenate([wm, b.reshape(O, 1).astype(dt, copy=False)], axis=1)
            y = _matmul(xp, wm, cols, self.groups, out=self.backend.buffers.result((O, cols.shape[1]), dt))
            if b is not None and not fold:
                y += b.reshape(O, 1)
            if self.keep:
                self.saved = cols        # for the weight gradient; handed back to the workspace there
            else:
                self.backend.buffers.give(cols)
            return y.reshape(O, g.OH, g.OW, N).transpose(3, 0, 1, 2)
        out = self.backend.buffers.result((O,) + tuple(self.out_hw) + (N,), dt)
        for sl in chunks:
            n = sl.stop - sl.start
            cols = _im2col(self, g, x[sl], dt)
            y = _matmul(xp, wm, cols, self.groups).reshape(O, g.OH, g.OW, n)
            self.backend.buffers.give(cols)
            if b is None:
                out[..., sl] = y
            else:
                xp.add(y, b.reshape(O, 1, 1, 1), out=out[..., sl])
        return out.transpose(3, 0, 1, 2)

    def backward(self, gy):
        x, w = self.inputs[0], self.inputs[1]
        b = self.inputs[2] if len(self.inputs) == 3 else None
        cols, self.saved = self.saved, None
        kw = dict(stride=self.stride, dilation=self.dilation, groups=self.groups, pad=self.pad)
        ext = None
        if not is_grad_enabled():
            # plain backward: both products read the same batch-last gradient matrix; build it once
            g = _geom(self, x.shape, self.out_hw, w.shape[2:])
            if len(g.chunks(x.shape[0], gy.array.dtype.itemsize, COL_BUFFER_BYTES)) == 1:
                ext = _extend(self, g, gy.array, gy.array.dtype)
        gx = ConvTranspose2d.apply(gy, w, out_hw=x.shape[2:], ext=ext, **kw) if x._rg else None
        box = {} if ext is not None and b is not None and b._rg else None
        gw = Conv2dWeightGrad.apply(x, gy, kernel=w.shape[2:], cols=cols, ext=ext, bias_box=box, **kw) \
            if w._rg else None
        gb = None
        if box:
            gb = const(box["gb"], gy)
        elif b is not None and b._rg:
            # Σ over the batch-last rows as one matrix-vector product (BLAS), ~3x a pairwise row sum
            gb = const(ext @ self.xp.ones(ext.shape[1], ext.dtype), gy) if ext is not None else \
                _sum(gy, dim=(0, 2, 3))
        _release(self, ext, gy.array)
        return (gx, gw) if b is None else (gx, gw, gb)


class ConvTranspose2d(Function):
    """f = the adjoint of conv2d in x: f[n,c,h,w] = Σ x[n,o,oh,ow] w[o,c,i,j] over h = oh·s+i·d−p (+ b[c]);
    df/dx = conv2d(g, w), df/dw = Conv2dWeightGrad(g, x), df/db = Σ g."""
    spec = OpSpec(ref=_convT_ref, sample=_convT_sample, call=lambda *a, **kw: conv_transpose2d(*a, **kw))
    ext = None      # x already as the batch-last matrix (O, OH·OW·N) (lent by Conv2d.backward)

    def forward(self, x, w, b=None):
        xp = self.xp
        N, Cin = x.shape[:2]
        C = w.shape[1] * self.groups
        H, W = self.out_hw
        g = _geom(self, (N, C, H, W), x.shape[2:], w.shape[2:])
        dt = xp.result_type(x, w)
        wm = w.reshape(Cin, -1)
        out = self.backend.buffers.result((C, H, W, N), dt)
        ext, self.ext = self.ext, None
        for sl in [slice(0, N)] if ext is not None else g.chunks(N, dt.itemsize, COL_BUFFER_BYTES):
            e = ext if ext is not None else _extend(self, g, x[sl], dt)
            cols = self.backend.buffers.take((g.K, e.shape[1]), dt)
            _matmul(xp, wm, e, self.groups, ta=True, out=cols)
            if ext is None:
                _release(self, e, x)
            self.backend.fused.col2im(cols, out[..., sl], g)
            self.backend.buffers.give(cols)
        if b is not None:
            out += b.reshape(C, 1, 1, 1)
        return out.transpose(3, 0, 1, 2)

    def backward(self, gy):
        x, w = self.inputs[0], self.inputs[1]
        kw = dict(stride=self.stride, dilation=self.dilation, groups=self.groups, pad=self.pad)
        gx = Conv2d.apply(gy, w, out_hw=x.shape[2:], **kw) if x._rg else None
        gw = Conv2dWeightGrad.apply(gy, x, kernel=w.shape[2:], cols=None, **kw) if w._rg else None
        if len(self.inputs) == 2:
            return gx, gw
        gb = _sum(gy, dim=(0, 2, 3)) if self.inputs[2]._rg else None
        return gx, gw, gb


class Conv2dWeightGrad(Function):
    """f = Σ_{n,oh,ow} gy[n,o,oh,ow] x[n,c,oh·s+i·d−p, ow·s+j·d−p] (conv2d's weight gradient, bilinear);
    df/dx = conv_transpose2d(gy, g), df/dgy = conv2d(x, g)."""
    spec = OpSpec(ref=_wgrad_ref, sample=_wgrad_sample,
                  call=lambda x, gy, **kw: Conv2dWeightGrad.apply(x, gy, **kw))
    cols = None     # the forward's column matrix of x (lent by Conv2d.backward; returned to the workspace)
    ext = None      # gy as the batch-last matrix (O, OH·OW·N) (lent by Conv2d.backward)
    bias_box = None  # a dict that receives the bias gradient as well when ``cols`` has the forward's row of ones

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
        box, self.bias_box = self.bias_box, None
        for sl in [slice(0, N)] if whole else g.chunks(N, dt.itemsize, COL_BUFFER_BYTES):
            mat = cols if cols is not None else _im2col(self, g, x[sl], dt)
            e = ext if ext is not None else _extend(self, g, gy[sl], dt)
            if self.groups == 1:
                # [gW | gb] = gy [cols; 1]ᵀ: with the forward's row of ones the bias gradient is one more column
                ones = box is not None and mat.shape[0] == g.K + 1
                part = self.backend.fused.weight_grad(mat if ones else mat[:g.K], e)
                if ones:
                    box["gb"], part = part[:, g.K].copy(), part[:, :g.K]
            else:
                part = _matmul(xp, e, mat[:g.K], self.groups, tb=True)
            if ext is None:
                _release(self, e, gy)
            self.backend.buffers.give(mat)
            gw = part if gw is None else gw + part
        if gw is None:
            gw = xp.zeros((O, g.K // self.groups), dt)
        return xp.ascontiguousarray(gw).reshape((O, C // self.groups) + tuple(self.kernel))

    def backward(self, ggw):
        x, gy = self.inputs
        kw = dict(stride=self.stride, dilation=self.dilation, groups=self.groups, pad=self.pad)
        gx = ConvTranspose2d.apply(gy, ggw, out_hw=x.shape[2:], **kw) if x._rg else None
        ggy = Conv2d.apply(x, ggw, out_hw=gy.shape[2:], **kw) if gy._rg else None
        return gx, ggy


# --- argument handling and the public functions ---------------------------------------------------------


def _shapes(x, w) -> str:
    return f"input shape {tuple(x.shape)}, weight shape {tuple(w.shape)}"


def _dims(x, w) -> tuple:
    """The ``shapes`` field of a convolution's error."""
    return tuple(x.shape), tuple(w.shape)


def _check_common(op, x, w, b, stride, dilation, groups, in_axis):
    """Rank, groups, stride and dilation checks shared by conv2d and conv_transpose2d."""
    if x.ndim != 4:
        raise OpValueError(f"expected a 4-D input (N, C, H, W) or 3-D (C, H, W), got {_shapes(x, w)}",
                           op=op, shapes=_dims(x, w))
    if w.ndim != 4:
        raise OpValueError(f"expected a 4-D weight, got {_shapes(x, w)}", op=op, shapes=_dims(x, w))
    if not isinstance(groups, int) or groups < 1:
        raise OpValueError(f"groups must be a positive int, got {groups!r} ({_shapes(x, w)})",
                           op=op, shapes=_dims(x, w))
    check_positive(op, f" ({_shapes(x, w)})", _dims(x, w), stride=stride, dilation=dilation)
    if b is not None and tuple(b.shape) != (w.shape[in_axis],):
        raise OpValueError(f"bias shape {tuple(b.shape)} does not match {w.shape[in_axis]} output channels "
                           f"({_shapes(x, w)})", op=op, shapes=_dims(x, w))


def _unbatched(x, op):
    if not isinstance(x, Tensor):
        raise OpTypeError(f"input must be a Tensor, got {type(x).__name__}", op=op)
    return x.ndim == 3


def _prologue(op, input, weight, bias, stride, dilation, groups, transposed):
    """Shared argument handling: (unbatched?, batched input, stride pair, dilation pair), after the checks."""
    single = _unbatched(input, op)
    x = reshape(input, (1,) + input.shape) if single else input
    stride, dilation = int_pair(stride, "stride", op), int_pair(dilation, "dilation", op)
    _check_common(op, x, weight, bias, stride, dilation, groups, transposed)
    return single, x, stride, dilation


@public(functional=True)
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
        raise OpValueError(f"input has {C} channels but the weight expects {Cg * groups} "
                           f"({Cg} per group × groups={groups}); {_shapes(x, w)}", op=op, shapes=_dims(x, w))
    if O % groups:
        raise OpValueError(f"{O} output channels are not divisible by groups={groups} ({_shapes(x, w)})",
                           op=op, shapes=_dims(x, w))
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0), (0, 0))
        elif padding == "same":
            check_same_padding(op, stride, f" ({_shapes(x, w)})", _dims(x, w))
            th, tw = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
            pads = ((th // 2, th - th // 2), (tw // 2, tw - tw // 2))
        else:
            raise OpValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}", op=op)
    else:
        ph, pw = int_pair(padding, "padding", op)
        check_padding(op, (ph, pw), f" ({_shapes(x, w)})", _dims(x, w))
        pads = ((ph, ph), (pw, pw))
    eh, ew = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    hp, wp = H + sum(pads[0]), W + sum(pads[1])
    if eh > hp or ew > wp:
        raise OpValueError(f"kernel {(kh, kw)} (extent {(eh, ew)} with dilation {dilation}) is larger than "
                           f"the padded input {(hp, wp)}; {_shapes(x, w)}, padding {padding!r}",
                           op=op, shapes=_dims(x, w))
    out_hw = ((hp - eh) // stride[0] + 1, (wp - ew) // stride[1] + 1)
    keep = is_grad_enabled() and w.requires_grad
    args = (x, w) if bias is None else (x, w, bias)
    y = Conv2d.apply(*args, stride=stride, dilation=dilation, groups=groups, pad=(pads[0][0], pads[1][0]),
                     out_hw=out_hw, keep=keep)
    return reshape(y, y.shape[1:]) if single else y


@public(functional=True)
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
        raise OpValueError(f"input has {Cin} channels but the weight expects {w.shape[0]} "
                           f"(weight is (C_in, C_out/groups, kh, kw)); {_shapes(x, w)}", op=op, shapes=_dims(x, w))
    if Cin % groups:
        raise OpValueError(f"{Cin} input channels are not divisible by groups={groups} ({_shapes(x, w)})",
                           op=op, shapes=_dims(x, w))
    cout = w.shape[1] * groups
    if bias is not None and tuple(bias.shape) != (cout,):
        raise OpValueError(f"bias shape {tuple(bias.shape)} does not match {cout} output channels "
                           f"({_shapes(x, w)})", op=op, shapes=_dims(x, w))
    ph, pw = int_pair(padding, "padding", op)
    oph, opw = int_pair(output_padding, "output_padding", op)
    if min(ph, pw, oph, opw) < 0:
        raise OpValueError(f"padding {(ph, pw)} and output_padding {(oph, opw)} must be non-negative", op=op)
    if oph >= max(stride[0], dilation[0]) or opw >= max(stride[1], dilation[1]):
        raise OpValueError(f"output_padding {(oph, opw)} must be smaller than stride {stride} or dilation "
                           f"{dilation} ({_shapes(x, w)})", op=op, shapes=_dims(x, w))
    kh, kw = w.shape[2:]
    out_hw = ((H - 1) * stride[0] - 2 * ph + dilation[0] * (kh - 1) + oph + 1,
              (W - 1) * stride[1] - 2 * pw + dilation[1] * (kw - 1) + opw + 1)
    if min(out_hw) < 1:
        raise OpValueError(f"output size {out_hw} is not positive (padding {(ph, pw)} too large); "
                           f"{_shapes(x, w)}", op=op, shapes=_dims(x, w))
    args = (x, w) if bias is None else (x, w, bias)
    y = ConvTranspose2d.apply(*args, stride=stride, dilation=dilation, groups=groups, pad=(ph, pw),
                              out_hw=out_hw)
    return reshape(y, y.shape[1:]) if single else y


@public(functional=True)
def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups: int = 1) -> Tensor:
    """1-D cross-correlation: input (N, C, L) or (C, L), weight (O, C/groups, k); conv2d on height 1."""
    op = "conv1d"
    if not isinstance(input, Tensor) or input.ndim not in (2, 3) or weight.ndim != 3:
        raise OpValueError(f"expected input (N, C, L) or (C, L) and weight (O, C/groups, k), got "
                           f"{_shapes(input, weight)}", op=op, shapes=_dims(input, weight))

    def one(v, name):
        if isinstance(v, (tuple, list)):
            if len(v) != 1:
                raise OpValueError(f"{name} must be an int or a 1-tuple, got {v!r}", op=op)
            v = v[0]
        return v

    pad = padding if isinstance(padding, str) else (0, one(padding, "padding"))
    x = reshape(input, input.shape[:-1] + (1, input.shape[-1]))
    w = reshape(weight, weight.shape[:2] + (1, weight.shape[2]))
    try:
        y = conv2d(x, w, bias, (1, one(stride, "stride")), pad, (1, one(dilation, "dilation")), groups)
    except ValueError as e:
        raise renamed(e, op, f" (1-D {_shapes(input, weight)})") from None
    return reshape(y, y.shape[:-2] + (y.shape[-1],))


composite("conv1d", OpSpec(ref=_conv1d_ref, sample=_conv1d_sample, call=lambda *a, **kw: conv1d(*a, **kw)))
