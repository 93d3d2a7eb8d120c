"""Test samples and naive NumPy references of the convolution and pooling ops (their ``spec`` records).

The references are written for clarity, not speed: a loop over kernel offsets (or output positions) with one
einsum or reduction each, in float64, so that they share nothing with the fused im2col/window code they check.
The samplers draw small valid geometries (groups, stride, dilation, padding modes, ceil mode) with the
drawer ``d`` of :mod:`autograd.spec`. Nothing here runs outside the tests.
"""
from __future__ import annotations

from ._grid import _Geom, _out_size


# --- convolution -----------------------------------------------------------------------------------------


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


# --- pooling ---------------------------------------------------------------------------------------------


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
    if d.int(0, 2) == 0:    # windows that tile the input exactly (stride = kernel): the two-pass path
        kernel = (d.int(1, 3), d.int(1, 3))
        x_shape = (d.int(1, 2), d.int(1, 2), kernel[0] * d.int(1, 2), kernel[1] * d.int(1, 2))
        return [d.array(x_shape)], dict(kernel_size=kernel, stride=None, padding=(0, 0), dilation=(1, 1),
                                        ceil_mode=False)
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
