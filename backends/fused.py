"""Fused operations: the few hot spots where one kernel beats a chain of array calls.

Every backend has a ``fused`` object with the methods below; ops and optimizers call
``backend.fused.<name>(...)`` on raw arrays and never ask which backend they run on.
:class:`ArrayFused` writes each operation with array-module calls (``xp``): these formulas are the reference
the tests hold every kernel to. Each backend subclasses it and replaces what it has kernels for, falling back
to the formulas for what they do not cover (other dtypes, empty arrays, other layouts): the NumPy backend
with C kernels (``cpu_kernels.CpuFused``: max pooling, ReLU's backward, im2col/col2im, Adam; compiled when a
C compiler exists), the CuPy backend with CUDA kernels from ``backends/kernels.py``
(``cupy_backend.CupyFused``).

Saved state for a backward pass (``ctx``) is opaque to callers: a tuple whose first item names its kind, so
the matching backward knows how it was made (max pooling's record is an object of its kind, with ``offsets``).
"""
from __future__ import annotations

import math

__all__ = ["ArrayFused"]


def decayed_grad(param, grad, wd: float, tmp, xp):
    """L2 weight decay in the gradient: ``grad + wd * param`` written into ``tmp`` (``grad`` itself when
    ``wd == 0``); shared by the fused updates here and the optimizers' own."""
    if wd == 0:
        return grad
    xp.multiply(param, wd, out=tmp)
    xp.add(tmp, grad, out=tmp)
    return tmp


class ArrayFused:
    """Reference implementations in array-module calls; ``xp`` is ``numpy`` or ``cupy``."""

    cache_block = 1 << 16
    """Elements per piece of a multi-pass optimizer update (0: whole arrays). Adam makes about ten passes over
    five parameter-sized arrays; on the CPU a piece of each (5 × 256 KiB) stays in the L2 cache for all of
    them, where whole arrays of the CNN's 3136×128 weight stream through memory on every pass, so the
    blocked update is markedly faster (figures in benchmarks/RESULTS.md)."""

    def __init__(self, xp):
        self.xp = xp

    # --- activations ------------------------------------------------------------------------
    def sigmoid(self, x):
        """1 / (1 + e^-x), overflow-safe (e^-|x| never overflows; the branch is chosen by sign)."""
        xp = self.xp
        z = xp.exp(-xp.abs(x))
        return xp.where(x >= 0, 1 / (1 + z), z / (1 + z))

    def sigmoid_backward(self, y, gy):
        """gy · y (1 − y), y = sigmoid(x)."""
        return gy * y * (1 - y)

    def tanh_backward(self, y, gy):
        """gy · (1 − y²), y = tanh(x)."""
        return gy * (1 - y * y)

    def leaky_relu(self, x, negative_slope: float):
        """x where x > 0, else negative_slope · x."""
        return self.xp.where(x > 0, x, x * x.dtype.type(negative_slope))

    def leaky_relu_backward(self, x, gy, negative_slope: float = 0.0):
        """PyTorch's selects, not products by a mask. Slope 0 is ReLU's backward (threshold_backward):
        x <= 0 ? +0 : gy, so gy at NaN x and +0 where x <= 0 even for an infinite or NaN gy. Another slope:
        x > 0 ? gy : gy · negative_slope (NaN x takes the slope branch). Both in gy's dtype."""
        xp = self.xp
        if negative_slope == 0:
            # gy's bits times 0/1 as unsigned integers of its width: gy's bits exactly, or all zero (+0.0);
            # branch-free, so as fast as the old gy · [x > 0] (NumPy's where with a random mask is slower)
            keep = xp.less_equal(x, 0, out=xp.empty(x.shape, dtype=bool))   # an array even when x is 0-d
            xp.invert(keep, out=keep)                    # [not x <= 0]: true at NaN x (in place: one mask)
            bits = xp.dtype(f"u{gy.dtype.itemsize}")
            return (gy.view(bits) * keep.view(xp.uint8)).view(gy.dtype)
        # gy · (1 or slope), the factor looked up by [x > 0]: gy · 1 is gy bit for bit, so this is the select
        factor = xp.asarray([negative_slope, 1], dtype=gy.dtype)
        return gy * factor.take((x > 0).view(xp.uint8))

    def silu(self, x):
        """x · sigmoid(x)."""
        return x * self.sigmoid(x)

    def silu_backward(self, x, gy):
        """gy · s (1 + x (1 − s)), s = sigmoid(x)."""
        s = self.sigmoid(x)
        return gy * (s * (x * (1 - s) + 1))

    # --- softmax cross-entropy with integer labels ------------------------------------------------
    def softmax_xent_forward(self, x, labels, ignore_index: int):
        """Per-row loss log Σ_c e^(x_c) − x_y (0 where the label is ``ignore_index``) of (M, C) logits.

        Returns ``(loss, ctx)``; ``ctx`` feeds :meth:`softmax_xent_backward`.
        """
        xp = self.xp
        m = x.shape[0]
        z = x - x.max(axis=1, keepdims=True)
        valid = labels != ignore_index
        rows = xp.arange(m)
        zy = z[rows, xp.where(valid, labels, 0)]
        e = xp.exp(z, out=z)
        s = e.sum(axis=1)
        valid = valid.astype(x.dtype)
        return (xp.log(s) - zy) * valid, ("exp", e, s, valid)

    def softmax_xent_backward(self, ctx, x, labels, gy, ignore_index: int):
        """(softmax(x) − onehot(y)) · gy · valid for the per-row gradient ``gy`` of the loss."""
        xp = self.xp
        _, e, s, valid = ctx
        gv = gy * valid
        gx = e * (gv / s)[:, None]
        gx[xp.arange(gx.shape[0]), xp.where(valid > 0, labels, 0)] -= gv
        return gx

    # --- batch normalisation over axis 1 -----------------------------------------------------------
    def batch_norm_forward(self, x, weight, bias, eps: float):
        """Normalise ``x`` (N, C, ...) with its batch statistics over every axis but 1; scale and shift.

        Returns ``(y, mean, var, ctx)`` with the per-channel batch mean and biased variance of shape (C,).
        """
        xp = self.xp
        c = x.shape[1]
        axes = (0,) + tuple(range(2, x.ndim))
        mu = x.mean(axis=axes, keepdims=True)
        xc = x - mu
        var = (xc * xc).mean(axis=axes, keepdims=True)
        rstd = 1 / xp.sqrt(var + x.dtype.type(eps))
        xhat = xc * rstd
        if weight is None:
            y = xhat.copy()
        else:
            shape = (1, c) + (1,) * (x.ndim - 2)
            y = xhat * weight.reshape(shape) + bias.reshape(shape)
        return y, mu.reshape(c), var.reshape(c), ("array", xhat, rstd, axes)

    def batch_norm_backward(self, ctx, gy, weight):
        """``(gx, gweight, gbias)`` for upstream ``gy``; the last two are None when ``weight`` is None."""
        _, xhat, rstd, axes = ctx
        g = gy
        shape = (1, xhat.shape[1]) + (1,) * (xhat.ndim - 2)
        gxhat = g * weight.reshape(shape) if weight is not None else g
        gx = gxhat - gxhat.mean(axis=axes, keepdims=True)
        gx -= xhat * (gxhat * xhat).mean(axis=axes, keepdims=True)
        gx *= rstd
        if weight is None:
            return gx, None, None
        return gx, (g * xhat).sum(axis=axes), g.sum(axis=axes)

    # --- optimizer updates (in place on param and state; tmp: parameter-shaped scratch arrays) -----
    _decayed = staticmethod(decayed_grad)

    def adam_update(self, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, tmp, *, step: int, lr: float,
                    betas: tuple, eps: float, weight_decay: float, decoupled: bool) -> None:
        """One Adam (AdamW when ``decoupled``) step; AMSGrad when ``max_exp_avg_sq`` is an array.

        ``tmp`` holds two scratch arrays (one suffices when ``decoupled``).
        """
        # ArrayFused's own group update, named explicitly: a backend's group update falls back to this method
        ArrayFused.adam_update_group(self, [param], [grad], [exp_avg], [exp_avg_sq], [max_exp_avg_sq], [tmp],
                                     steps=[step], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                     decoupled=decoupled)

    def sgd_update(self, param, grad, buf, tmp, *, lr: float, momentum: float, dampening: float,
                   weight_decay: float, nesterov: bool, first: bool) -> None:
        """One SGD step; ``buf`` is the momentum buffer (None without momentum), set to the gradient when
        ``first``. ``tmp`` holds two scratch arrays."""
        xp = self.xp
        g = self._decayed(param, grad, weight_decay, tmp[0], xp)
        mu = momentum
        if mu != 0:
            b = buf
            if first:
                xp.copyto(b, g)
            else:
                xp.multiply(b, mu, out=b)
                if dampening != 0:
                    xp.multiply(g, 1.0 - dampening, out=tmp[1])
                    xp.add(b, tmp[1], out=b)
                else:
                    xp.add(b, g, out=b)
            if nesterov:
                xp.multiply(b, mu, out=tmp[1])
                xp.add(tmp[1], g, out=tmp[1])
                g = tmp[1]
            else:
                g = b
        xp.multiply(g, lr, out=tmp[1])
        xp.subtract(param, tmp[1], out=param)

    # --- convolution's column matrix (batch-last images; ``grid`` is autograd.ops._grid._Grid) -----------
    def im2col(self, img, mat, grid) -> None:
        """Fill ``mat`` (C·kh·kw, OH·OW·n) with the window entries of batch-last images ``img`` (C, H, W, n):
        row (c, i, j) holds entry (i, j) of every window, zeros where it falls on the padding. One strided
        copy per kernel offset, of the outputs ``grid.clip(i, j)`` says read the image."""
        g = grid
        cols = mat.reshape(g.C, g.kh, g.kw, g.OH, g.OW, img.shape[-1])
        for i in range(g.kh):
            for j in range(g.kw):
                dst = cols[:, i, j]
                c = g.clip(i, j)
                if c is None:
                    dst[...] = 0
                    continue
                ro, co, ri, ci = c
                dst[:, :ro.start] = 0
                dst[:, ro.stop:] = 0
                dst[:, ro, :co.start] = 0
                dst[:, ro, co.stop:] = 0
                dst[:, ro, co] = img[:, ri, ci]

    def weight_grad(self, cols, e):
        """A convolution's weight gradient (O, K) = ``e`` (O, P) @ ``cols`` (K, P)ᵀ, for the batch-last gradient
        matrix ``e`` and the column matrix ``cols`` (computed as (cols @ eᵀ)ᵀ: OpenBLAS runs that shape ~15 %
        faster than e @ colsᵀ)."""
        return self.xp.matmul(cols, e.T).T

    def col2im(self, cols, out, grid) -> None:
        """The adjoint of :meth:`im2col`: ``out`` (C, H, W, n) = the sum, over kernel offsets in
        :func:`col2im_order`, of each offset's entries of ``cols`` (C·kh·kw, OH·OW·n) added at the image
        positions they were read from (entries on the padding are dropped)."""
        g = grid
        c6 = cols.reshape(g.C, g.kh, g.kw, g.OH, g.OW, out.shape[-1])
        full, rest = col2im_order(g)
        if full is None:
            out.fill(0)
        else:
            i, j, (ro, co, _, _) = full
            out[...] = c6[:, i, j, ro, co]
        for i, j, (ro, co, ri, ci) in rest:
            out[:, ri, ci] += c6[:, i, j, ro, co]

    # --- max pooling over windows that tile the input exactly (stride = kernel, no padding) -----------
    def max_pool_tiles(self, x, kh: int, kw: int, alloc):
        """Max pooling of (N, C, H, W) ``x`` over kh×kw windows that tile it: ``(y, where)``, ``where`` the
        record of each window's first maximum in row-major order (NaN propagates to ``y``). ``alloc(shape,
        dtype, result=False)`` makes (N, C, ·, ·) arrays in ``x``'s memory order (``result``: the op's output).

        Two passes over long runs of memory: per window row the maximum of its kw columns and the first
        column holding it, then per window the maximum of its kh row maxima and the first row holding it."""
        xp = self.xp
        N, C, H, W = x.shape
        OH, OW = H // kh, W // kw
        x6 = x.reshape(N, C, OH, kh, OW, kw)
        rows = alloc((N, C, H, OW), x.dtype).reshape(N, C, OH, kh, OW)
        cols = _first_max(xp, [x6[..., j] for j in range(kw)], rows,
                          lambda dt: alloc((N, C, H, OW), dt).reshape(N, C, OH, kh, OW))
        y = alloc((N, C, OH, OW), x.dtype, True)
        first_row = _first_max(xp, [rows[:, :, :, i] for i in range(kh)], y, lambda dt: alloc((N, C, OH, OW), dt))
        return y, TileArg(first_row, cols, kw)

    def max_pool_tiles_backward(self, g, where, kh: int, kw: int, alloc):
        """Adjoint of :meth:`max_pool_tiles`: (N, C, OH, OW) ``g`` (in the input's memory order) sent to each
        window's recorded first maximum, zeros elsewhere (each input element is written once)."""
        xp = self.xp
        N, C, OH, OW = g.shape
        out = alloc((N, C, OH * kh, OW * kw), g.dtype, True)
        o6 = out.reshape(N, C, OH, kh, OW, kw)
        rows = alloc((N, C, OH * kh, OW), g.dtype).reshape(N, C, OH, kh, OW)
        for i in range(kh):
            xp.multiply(g, _mask(xp, where.rows, i), out=rows[:, :, :, i])
        for j in range(kw):
            xp.multiply(rows, _mask(xp, where.cols, j), out=o6[..., j])
        return out

    # --- the same for all parameters of an optimizer group (one kernel launch on the GPU) ----------
    def adam_update_group(self, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, tmps, *, steps, lr: float,
                          betas: tuple, eps: float, weight_decay: float, decoupled: bool) -> None:
        """:meth:`adam_update` for each parameter; lists of arrays (``max_exp_avg_sqs`` entries None without
        AMSGrad), ``steps`` the step count of each parameter."""
        xp, hyper = self.xp, (float(lr), float(betas[0]), float(betas[1]), float(eps), float(weight_decay))
        scalars: dict = {}
        for i in range(len(params)):
            p, t = params[i], steps[i]
            c = scalars.get((p.dtype, t))
            if c is None:
                c = scalars[(p.dtype, t)] = _adam_scalars(xp, p.dtype, t, *hyper)
            self._adam_one(p, grads[i], exp_avgs[i], exp_avg_sqs[i], max_exp_avg_sqs[i], tmps[i], c, decoupled,
                           hyper[4] != 0)

    def _adam_one(self, p, grad, m, v, vmax, tmps, scalars, decoupled: bool, has_wd: bool) -> None:
        """One parameter's step of :meth:`adam_update_group` (``scalars`` from :func:`_adam_scalars`)."""
        for pg, g, mg, vg, vm, *tmp in _pieces(self.cache_block, p, grad, m, v, vmax, *tmps):
            _adam(self.xp, pg, g, mg, vg, vm, tmp, scalars, decoupled, has_wd)

    def sgd_update_group(self, params, grads, bufs, tmps, *, firsts, lr: float, momentum: float,
                         dampening: float, weight_decay: float, nesterov: bool) -> None:
        """:meth:`sgd_update` for each parameter; ``bufs`` entries None without momentum, ``firsts`` flags."""
        for i in range(len(params)):
            for p, g, buf, *tmp in _pieces(self.cache_block, params[i], grads[i], bufs[i], *tmps[i]):
                self.sgd_update(p, g, buf, tmp, lr=lr, momentum=momentum, dampening=dampening,
                                weight_decay=weight_decay, nesterov=nesterov, first=firsts[i])


def _pieces(block: int, *arrays):
    """``arrays`` (None entries stay None) as matching flat pieces of ``block`` elements, or whole when they are
    small, blocking is off (``block`` 0) or one of them is not C-contiguous (a flat view of it would be a copy,
    and writes to it would be lost)."""
    live = [a for a in arrays if a is not None]
    n = live[0].size
    if not block or n < 2 * block or any(a.size != n or not a.flags.c_contiguous for a in live):
        return [arrays]
    flat = [None if a is None else a.reshape(-1) for a in arrays]
    return [[None if a is None else a[s:s + block] for a in flat] for s in range(0, n, block)]


def _adam_scalars(xp, dtype, step: int, lr: float, b1: float, b2: float, eps: float, wd: float) -> list:
    """The scalars of one Adam step as 0-d arrays of the parameters' dtype: a ufunc takes those faster than
    Python floats, and rounds them the same way. The bias corrections c1 = 1 − b1^t, c2 = 1 − b2^t are folded
    into two of them: ``p -= (lr √c2 / c1) · m / (√v + eps √c2)`` is PyTorch's ``p -= lr / c1 · m / (√v / √c2
    + eps)`` with one array pass fewer (and that pass an array division)."""
    bc2_sqrt = math.sqrt(1.0 - b2 ** step)
    values = (b1, 1.0 - b1, b2, 1.0 - b2, eps * bc2_sqrt, lr * bc2_sqrt / (1.0 - b1 ** step), wd, 1.0 - lr * wd)
    return [xp.array(v, dtype) for v in values]


def _adam(xp, param, grad, m, v, vmax, tmp, scalars, decoupled: bool, has_wd: bool) -> None:
    """One parameter's Adam step of :meth:`ArrayFused.adam_update_group`, with :func:`_adam_scalars`."""
    b1, one_b1, b2, one_b2, eps, step_size, wd, decay = scalars
    if decoupled:
        if has_wd:
            xp.multiply(param, decay, out=param)
        g = grad
    else:
        g = decayed_grad(param, grad, wd, tmp[0], xp) if has_wd else grad
    t = tmp[-1]
    xp.multiply(m, b1, out=m)
    xp.multiply(g, one_b1, out=t)
    xp.add(m, t, out=m)
    xp.multiply(v, b2, out=v)
    xp.square(g, out=t)             # square(g), not g * g: NumPy's multiply of an array by itself is slower
    xp.multiply(t, one_b2, out=t)
    xp.add(v, t, out=v)
    if vmax is not None:
        xp.maximum(vmax, v, out=vmax)
        v = vmax
    xp.sqrt(v, out=t)
    xp.add(t, eps, out=t)
    xp.divide(m, t, out=t)
    xp.multiply(t, step_size, out=t)
    xp.subtract(param, t, out=param)


class TileArg:
    """Where :meth:`ArrayFused.max_pool_tiles` found each window's first maximum: ``rows`` (N, C, OH, OW), the
    window row, and ``cols`` (N, C, OH, kh, OW), the first maximal column of every window row (bool when
    there are two, else int8)."""

    def __init__(self, rows, cols, kw: int):
        self.rows, self.cols, self.kw = rows, cols, kw

    def offsets(self, xp):
        """The row-major window offsets (N, C, OH, OW), int8."""
        arg = xp.zeros(self.rows.shape, "int8")
        r = self.rows.astype("int8")
        for i in range(self.cols.shape[3]):
            xp.copyto(arg, self.cols[:, :, :, i].astype("int8") + i * self.kw, where=r == i)
        return arg


def _first_max(xp, views, m, alloc):
    """Write the elementwise maximum of ``views`` into ``m`` (NaN propagates) and return the index of the first
    view holding it (bool for two views, else int8), from ``alloc(dtype)``."""
    if len(views) == 1:
        m[...] = views[0]
        code = alloc("int8")
        code.fill(0)
        return code
    xp.maximum(views[0], views[1], out=m)
    for v in views[2:]:
        xp.maximum(m, v, out=m)
    behind = alloc("bool")
    xp.not_equal(views[0], m, out=behind)
    if len(views) == 2:
        return behind
    code = alloc("int8")
    code[...] = behind
    for v in views[1:-1]:
        behind &= v != m
        code += behind
    return code


def _mask(xp, code, k: int):
    """``code == k`` as 0/1 (uint8, so a product with it stays in the float type and runs unbuffered)."""
    if code.dtype == xp.bool_:
        return (code if k == 1 else ~code).view(xp.uint8)
    return (code == k).view(xp.uint8)


def col2im_order(grid):
    """The order in which :meth:`ArrayFused.col2im` sums kernel offsets: ``(full, rest)``, ``full`` the first
    offset whose windows cover the whole image (the centre of a 'same' convolution; assigned first, so the
    result needs no zero fill) or None, ``rest`` the other offsets that read the image, in row-major order;
    each as ``(i, j, grid.clip(i, j))``."""
    parts = [(i, j, grid.clip(i, j)) for i in range(grid.kh) for j in range(grid.kw)]
    parts = [p for p in parts if p[2] is not None]
    for k, (_, _, (ro, co, ri, ci)) in enumerate(parts):
        if ri.step == 1 and ci.step == 1 and (ri.start, ri.stop, ci.start, ci.stop) == (0, grid.H, 0, grid.W):
            return parts[k], parts[:k] + parts[k + 1:]
    return None, parts
