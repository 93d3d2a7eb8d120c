"""Fused operations (``backends/fused.py``) and their CUDA kernels (``backends/kernels.py``).

Four layers, from what runs everywhere to what needs a GPU:

1. every kernel source compiles with NVRTC for sm_80 and sm_90 (no device touched; skipped only when CuPy's
   NVRTC bindings cannot be imported);
2. the NumPy implementations (the reference of the kernels) against plain textbook formulas, hypothesis-drawn,
   float32 and float64, optimizer updates included;
3. the CuPy launchers on an emulated device: every launch is checked against the kernel's C signature (argument
   count, C types of scalars, dtypes and contiguity of pointers, grid and shared memory; the optimizers' tables
   of offsets and pointers) and executed by a NumPy transcription of the kernel body, then compared with the
   reference;
4. on a GPU (skipped without one): each CuPy fused op against the NumPy one on the same inputs, including sizes
   that exercise the grid-stride loops and block reductions, and Adam/AdamW/SGD steps on cuda against cpu.
"""
from __future__ import annotations

import contextlib
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import backends
from backends import cupy_backend, kernels
from backends.fused import ArrayFused
from backends.fused import _pieces as fused_pieces

REF = backends.cpu.fused
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
SLOPES = [0.0, 0.01, 0.2, -0.5]


def _sig(x):
    return 1 / (1 + np.exp(-x))


@st.composite
def _array(draw, shape, lo=-5.0, hi=5.0):
    return draw(hnp.arrays(np.float64, shape, elements=st.floats(lo, hi, allow_subnormal=False)))


_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)


# --- 1. NVRTC compiles every source (CI, no GPU) -------------------------------------------------------------
def _nvrtc():
    try:
        from cupy.cuda import nvrtc
        nvrtc.getVersion()
    except Exception as exc:            # CuPy missing, or its NVRTC library not installed
        pytest.skip(f"CuPy's NVRTC is not importable ({exc}); install cupy-cuda12x and nvidia-cuda-nvrtc-cu12")
    return nvrtc


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("name", sorted(kernels.kernel_sources()))
def test_kernel_source_compiles_with_nvrtc(name, arch):
    nvrtc = _nvrtc()
    src = kernels.kernel_sources()[name]
    prog = nvrtc.createProgram(src, f"{name}.cu", [], [])
    try:
        try:
            nvrtc.compileProgram(prog, [f"--gpu-architecture={arch}", *kernels.COMPILE_OPTIONS])
        except nvrtc.NVRTCError as e:
            pytest.fail(f"{name} ({arch}) does not compile: {e}\n{nvrtc.getProgramLog(prog)}")
        log = nvrtc.getProgramLog(prog).strip().strip("\x00")
        assert not log, f"{name} ({arch}) compiles with warnings:\n{log}"
        assert len(nvrtc.getCUBIN(prog)) > 0
    finally:
        nvrtc.destroyProgram(prog)


def _signatures() -> dict:
    """{compiled kernel name: [(C type, parameter name), ...]} parsed from the instantiation macros."""
    out = {}
    for src in kernels.kernel_sources().values():
        text = src.replace("\\\n", " ")
        for m in re.finditer(r'extern "C" __global__ void (\w+)##S\((.*?)\)', text, re.S):
            params = [p.strip() for p in " ".join(m.group(2).split()).split(",")]
            for ctype, suffix in (("float", "_f32"), ("double", "_f64")):
                parsed = []
                for p in params:
                    typ, name = p.rsplit(" ", 1)
                    typ = re.sub(r"\bT\b", ctype, typ.replace("const ", "")).replace(" *", "*")
                    if name.startswith("*"):
                        typ, name = typ + "*", name[1:]
                    parsed.append((typ, name))
                out[m.group(1) + suffix] = parsed
    return out


def test_every_listed_kernel_exists_in_its_source_for_both_dtypes():
    sigs = _signatures()
    for source, bases in kernels.KERNELS.items():
        for base in bases:
            for suffix in kernels.SUFFIX.values():
                assert base + suffix in sigs, f"{base}{suffix} is not defined in {source}"
                assert re.search(rf"void {base}##S\(", kernels.kernel_sources()[source])


# --- 2. the NumPy implementations against textbook formulas --------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(data=st.data())
def test_numpy_activations_match_formulas(dtype, data):
    shape = data.draw(_shapes)
    x = data.draw(_array(shape)).astype(dtype)
    gy = data.draw(_array(shape)).astype(dtype)
    slope = data.draw(st.sampled_from(SLOPES))
    x64, g64 = x.astype(np.float64), gy.astype(np.float64)
    s = _sig(x64)
    y = _sig(x64).astype(dtype)
    t = np.tanh(x64).astype(dtype)
    y64, t64 = y.astype(np.float64), t.astype(np.float64)
    cases = [
        (REF.sigmoid(x), s),
        (REF.sigmoid_backward(y, gy), g64 * y64 * (1 - y64)),
        (REF.tanh_backward(t, gy), g64 * (1 - t64 ** 2)),
        (REF.leaky_relu(x, slope), np.where(x64 > 0, x64, slope * x64)),
        (REF.leaky_relu_backward(x, gy, slope), g64 * np.where(x64 > 0, 1.0, slope)),
        (REF.silu(x), x64 * s),
        (REF.silu_backward(x, gy), g64 * (s + x64 * s * (1 - s))),
    ]
    for i, (got, want) in enumerate(cases):
        assert got.dtype == dtype and got.shape == shape, i
        np.testing.assert_allclose(got, want, **TOL[dtype], err_msg=f"case {i}")


def _special_pairs(dtype):
    """Every (x, g) pair of NaN, ±inf, ±0 and ordinary values, as two flat arrays."""
    pool = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.0], dtype)
    return tuple(a.ravel() for a in np.meshgrid(pool, pool, indexing="ij"))


def _assert_bitwise(got, want, err=""):
    np.testing.assert_array_equal(got, want, strict=True, err_msg=err)
    assert (np.signbit(got) == np.signbit(want)).all(), err


@pytest.mark.parametrize("slope", SLOPES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_numpy_relu_backward_is_torch_s_select(dtype, slope):
    """threshold_backward x <= 0 ? +0 : g (g at NaN x, 0 under an infinite or NaN g); leaky_relu_backward
    x > 0 ? g : g * slope (NaN x takes the slope)."""
    x, g = _special_pairs(dtype)
    s = dtype(slope)
    want = np.array([(0.0 if xi <= 0 else gi) if slope == 0 else (gi if xi > 0 else gi * s)
                     for xi, gi in zip(x, g)], dtype)
    _assert_bitwise(REF.leaky_relu_backward(x, g, slope), want)


@st.composite
def _xent_case(draw, max_rows=6, max_cols=7):
    rows, cols = draw(st.integers(1, max_rows)), draw(st.integers(1, max_cols))
    x = draw(_array((rows, cols), -8.0, 8.0))
    labels = np.array(draw(st.lists(st.integers(0, cols - 1), min_size=rows, max_size=rows)), np.int64)
    ignore = draw(st.lists(st.booleans(), min_size=rows, max_size=rows))
    labels[np.array(ignore, bool)] = -100
    gy = draw(_array((rows,)))
    return x, labels, gy


def _xent_ref(x, labels, gy, ignore_index=-100):
    valid = labels != ignore_index
    y = np.where(valid, labels, 0)
    m = x.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]
    loss = (lse - x[np.arange(len(x)), y]) * valid
    p = np.exp(x - lse[:, None])
    onehot = np.zeros_like(x)
    onehot[np.arange(len(x)), y] = 1
    gx = (p - onehot) * (gy * valid)[:, None]
    return loss, gx


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(case=_xent_case())
def test_numpy_softmax_xent_matches_formula(dtype, case):
    x, labels, gy = case
    want_loss, want_gx = _xent_ref(x.astype(dtype).astype(np.float64), labels, gy.astype(dtype).astype(np.float64))
    xd = x.astype(dtype)
    loss, ctx = REF.softmax_xent_forward(xd.copy(), labels, -100)
    gx = REF.softmax_xent_backward(ctx, xd, labels, gy.astype(dtype), -100)
    assert loss.dtype == dtype and gx.dtype == dtype
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else TOL[dtype]
    np.testing.assert_allclose(loss, want_loss, **tol)
    np.testing.assert_allclose(gx, want_gx, **tol)


@st.composite
def _bn_case(draw):
    n, c = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    spatial = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=4))
    shape = (n, c) + spatial
    affine = draw(st.booleans())
    w = draw(_array((c,), 0.5, 2.0)) if affine else None
    b = draw(_array((c,))) if affine else None
    return _spread(draw(_array(shape))), w, b, draw(_array(shape)), draw(st.sampled_from([1e-5, 0.1]))


def _spread(x):
    """Values of each channel at least 0.5 apart: a near-constant channel has rstd up to 1/sqrt(eps), which
    multiplies float32 rounding past any fixed tolerance (an ill-conditioned input, not an error)."""
    xt = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)
    ranks = np.argsort(np.argsort(xt, axis=1, kind="stable"), axis=1, kind="stable")
    xt = xt * 0.2 + 0.5 * ranks
    return np.moveaxis(xt.reshape((x.shape[1], x.shape[0]) + x.shape[2:]), 0, 1)


def _bn_ref(x, w, b, g, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mu, var = x.mean(axis=axes), x.var(axis=axes)
    rstd = 1 / np.sqrt(var + eps)
    xhat = (x - mu.reshape(shape)) * rstd.reshape(shape)
    wr = np.ones_like(mu) if w is None else w
    y = xhat if w is None else xhat * w.reshape(shape) + b.reshape(shape)
    gx = (wr * rstd).reshape(shape) * (g - g.mean(axis=axes, keepdims=True)
                                       - xhat * (g * xhat).mean(axis=axes, keepdims=True))
    return y, mu, var, gx, (g * xhat).sum(axis=axes), g.sum(axis=axes)


def _bn_run(fused, x, w, b, g, eps):
    y, mu, var, ctx = fused.batch_norm_forward(x, w, b, eps)
    gx, gw, gb = fused.batch_norm_backward(ctx, g, w)
    return y, mu, var, gx, gw, gb


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(case=_bn_case())
def test_numpy_batch_norm_matches_formula(dtype, case):
    x, w, b, g, eps = [a.astype(dtype) if isinstance(a, np.ndarray) else a for a in case]
    want = _bn_ref(*[a.astype(np.float64) if isinstance(a, np.ndarray) else a for a in (x, w, b, g)], eps)
    got = _bn_run(REF, x, w, b, g, eps)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)
    for i, (a, e) in enumerate(zip(got, want)):
        if w is None and i >= 4:
            assert a is None
            continue
        assert a.dtype == dtype, i
        np.testing.assert_allclose(a, e, **tol, err_msg=f"output {i}")


# optimizer updates: several steps against the textbook rules, written out in float64
def _adam_textbook(p, grads, lr, b1, b2, eps, wd, amsgrad, decoupled):
    m, v, vmax = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        mhat = m / (1 - b1 ** t)
        vhat = (vmax if amsgrad else v) / (1 - b2 ** t)
        p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return p


def _sgd_textbook(p, grads, lr, mu, damp, wd, nesterov):
    buf = None
    for g in grads:
        g = g + wd * p
        if mu:
            buf = g if buf is None else mu * buf + (1 - damp) * g
            g = g + mu * buf if nesterov else buf
        p = p - lr * g
    return p


def _run_adam(fused, xp, p, grads, hp, tmp=None):
    m, v = xp.zeros_like(p), xp.zeros_like(p)
    vmax = xp.zeros_like(p) if hp["amsgrad"] else None
    tmp = [xp.empty_like(p), xp.empty_like(p)] if tmp is None else tmp
    for t, g in enumerate(grads, 1):
        fused.adam_update(p, g, m, v, vmax, tmp, step=t, lr=hp["lr"], betas=(hp["b1"], hp["b2"]), eps=hp["eps"],
                          weight_decay=hp["wd"], decoupled=hp["decoupled"])
    return p, m, v, vmax


def _run_sgd(fused, xp, p, grads, hp):
    buf = xp.empty_like(p) if hp["mu"] else None
    tmp = [xp.empty_like(p), xp.empty_like(p)]
    for k, g in enumerate(grads):
        fused.sgd_update(p, g, buf, tmp, lr=hp["lr"], momentum=hp["mu"], dampening=hp["damp"],
                         weight_decay=hp["wd"], nesterov=hp["nesterov"], first=k == 0)
    return p, buf


_adam_hp = st.fixed_dictionaries(dict(
    lr=st.floats(1e-4, 0.1), b1=st.floats(0.0, 0.99), b2=st.floats(0.5, 0.999), eps=st.sampled_from([1e-8, 1e-6, 1e-3]),
    wd=st.sampled_from([0.0, 0.01, 0.3]), amsgrad=st.booleans(), decoupled=st.booleans()))


@st.composite
def _sgd_hp(draw):
    nesterov = draw(st.booleans())
    mu = draw(st.floats(0.1, 0.99)) if nesterov else draw(st.sampled_from([0.0, 0.5, 0.9]))
    return dict(lr=draw(st.floats(1e-3, 0.5)), mu=mu, damp=0.0 if nesterov else draw(st.sampled_from([0.0, 0.3])),
                wd=draw(st.sampled_from([0.0, 0.05])), nesterov=nesterov)


@st.composite
def _params_and_grads(draw, steps=3):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=6))
    p = draw(_array(shape, -2.0, 2.0))
    return p, [draw(_array(shape, -1.0, 1.0)) for _ in range(steps)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(pg=_params_and_grads(), hp=_adam_hp)
def test_numpy_adam_update_matches_textbook(dtype, pg, hp):
    p0, grads = pg
    want = _adam_textbook(p0.astype(dtype).astype(np.float64), [g.astype(dtype).astype(np.float64) for g in grads],
                          hp["lr"], hp["b1"], hp["b2"], hp["eps"], hp["wd"], hp["amsgrad"], hp["decoupled"])
    p = p0.astype(dtype)
    got, m, v, vmax = _run_adam(REF, np, p, [g.astype(dtype) for g in grads], hp)
    assert got is p and got.dtype == dtype and m.dtype == dtype
    # float32: the step m/sqrt(v) of a near-zero gradient is sensitive, but never more than lr/(1 - b1) per step
    tol = dict(rtol=1e-4, atol=1e-5 * max(1.0, hp["lr"] * 100)) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got, want, **tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(pg=_params_and_grads(), hp=_sgd_hp())
def test_numpy_sgd_update_matches_textbook(dtype, pg, hp):
    p0, grads = pg
    want = _sgd_textbook(p0.astype(dtype).astype(np.float64), [g.astype(dtype).astype(np.float64) for g in grads],
                         hp["lr"], hp["mu"], hp["damp"], hp["wd"], hp["nesterov"])
    p = p0.astype(dtype)
    got, _ = _run_sgd(REF, np, p, [g.astype(dtype) for g in grads], hp)
    assert got is p and got.dtype == dtype
    np.testing.assert_allclose(got, want, **(dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else TOL[dtype]))


def _cached(block):
    f = ArrayFused(np)
    f.cache_block = block
    return f


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(hp=_adam_hp, sgd=_sgd_hp(), seed=st.integers(0, 2**16), grad_view=st.booleans())
def test_optimizer_updates_in_cache_pieces_equal_whole_arrays(dtype, hp, sgd, seed, grad_view):
    """The CPU updates run piece by piece (``ArrayFused.cache_block``); every element sees the same operations,
    so the result is bitwise that of whole arrays, including a ragged last piece and a transposed (not
    C-contiguous) gradient, which is updated whole."""
    rng = np.random.default_rng(seed)
    p0 = rng.uniform(-2, 2, (7, 11)).astype(dtype)
    grads = [rng.uniform(-1, 1, (11, 7)).astype(dtype).T if grad_view else rng.uniform(-1, 1, (7, 11)).astype(dtype)
             for _ in range(3)]
    runs = {}
    for block in (0, 16):
        f = _cached(block)
        ps = [p0.copy(), p0[:, :2].copy()]          # a big parameter (77 = 4·16 + 13 elements) and a small one
        m, v = [np.zeros_like(p) for p in ps], [np.zeros_like(p) for p in ps]
        vmax = [np.zeros_like(p) for p in ps] if hp["amsgrad"] else [None, None]
        tmps = [[np.empty_like(p), np.empty_like(p)] for p in ps]
        bufs = [np.empty_like(p) for p in ps] if sgd["mu"] else [None, None]
        q = [p.copy() for p in ps]
        for t, g in enumerate(grads, 1):
            gs = [g, g[:, :2]]
            f.adam_update_group(ps, gs, m, v, vmax, tmps, steps=[t, t], lr=hp["lr"], betas=(hp["b1"], hp["b2"]),
                                eps=hp["eps"], weight_decay=hp["wd"], decoupled=hp["decoupled"])
            f.sgd_update_group(q, gs, bufs, tmps, firsts=[t == 1] * 2, lr=sgd["lr"], momentum=sgd["mu"],
                               dampening=sgd["damp"], weight_decay=sgd["wd"], nesterov=sgd["nesterov"])
        runs[block] = ps + m + v + q + [a for a in vmax + bufs if a is not None]
    assert not np.array_equal(runs[0][0], p0)
    for whole, pieces in zip(runs[0], runs[16]):
        np.testing.assert_array_equal(pieces, whole)


def test_cache_pieces_cover_contiguous_arrays_only():
    a, b = np.arange(77.0), np.ones(77)
    parts = fused_pieces(16, a, None, b)
    assert [len(p[0]) for p in parts] == [16, 16, 16, 16, 13] and all(p[1] is None for p in parts)
    parts[-1][2][...] = 5                       # pieces are views: writes reach the arrays
    assert (b[64:] == 5).all() and (b[:64] == 1).all()
    assert len(fused_pieces(16, a[:31], b[:31])) == 1                     # under two pieces: whole
    assert len(fused_pieces(0, a, b)) == 1                                # blocking off
    t = np.ones((11, 7)).T
    assert fused_pieces(16, np.ones((7, 11)), t)[0][1] is t               # a transposed array: whole
    assert cupy_backend.CupyFused.cache_block == 0


# --- 3. the CuPy launchers on an emulated device ---------------------------------------------------------------
_C_SCALARS = {"long long": np.int64, "int": np.int32, "float": np.float32, "double": np.float64}
_C_POINTERS = {"float*": np.float32, "double*": np.float64, "long long*": np.int64}
_SHARED_KERNELS = ("xent_fwd", "bn_stats", "bn_bwd_reduce")
_ELEMENTWISE = kernels.KERNELS["activations"]


def _emulate(name: str, a: dict, memory: dict) -> None:
    """The kernel ``name`` (base name) in NumPy, written from its C body; pointers are flat views, and the
    addresses in the optimizers' launch tables are looked up in ``memory``."""
    if name in ("adam_multi", "sgd_multi"):
        k, table = int(a["k"]), a["table"]
        offsets = table[:k + 1]
        assert offsets[0] == 0 and offsets[k] == a["total"] and (np.diff(offsets) > 0).all(), offsets
        width = 5 if name == "adam_multi" else 4
        assert table.size == k + 1 + width * k
        for j in range(k):
            ent = [int(e) for e in table[k + 1 + width * j: k + 1 + width * (j + 1)]]
            n = int(offsets[j + 1] - offsets[j])
            view = {}
            keys = ("p", "g", "m", "v", "vmax") if name == "adam_multi" else ("p", "g", "buf")
            for key, addr in zip(keys, ent):
                view[key] = memory[addr][:n] if addr else None
                assert addr == 0 or memory[addr].size >= n, f"{name}: tensor {j} {key} is too small"
            scalars = {key: v for key, v in a.items() if not isinstance(v, np.ndarray)}
            if name == "adam_multi":
                view.update(step_size=a["coef"][2 * j], bc2_sqrt=a["coef"][2 * j + 1])
            else:
                view["first"] = ent[3]
            _emulate(name[:-len("_multi")], {**scalars, **view}, memory)
    elif name == "sigmoid_fwd":
        a["y"][:] = _sig(a["x"])
    elif name == "sigmoid_bwd":
        a["gx"][:] = a["gy"] * a["y"] * (1 - a["y"])
    elif name == "tanh_bwd":
        a["gx"][:] = a["gy"] * (1 - a["y"] * a["y"])
    elif name == "leaky_relu_fwd":
        a["y"][:] = np.where(a["x"] > 0, a["x"], a["x"] * a["slope"])
    elif name == "leaky_relu_bwd":     # v > 0 ? g : slope != 0 ? g * slope : v <= 0 ? 0 : g, as the kernel
        x, g, slope = a["x"], a["gy"], a["slope"]
        relu = np.where(x <= 0, g.dtype.type(0), g)
        a["gx"][:] = np.where(x > 0, g, g * slope if slope != 0 else relu)
    elif name == "silu_fwd":
        a["y"][:] = a["x"] * _sig(a["x"])
    elif name == "silu_bwd":
        s = _sig(a["x"])
        a["gx"][:] = a["gy"] * (s * (a["x"] * (1 - s) + 1))
    elif name == "xent_fwd":
        x = a["x"].reshape(int(a["rows"]), int(a["cols"])).astype(np.float64)
        valid = a["labels"] != a["ignore_index"]
        m = x.max(axis=1)
        s = np.exp(x - m[:, None]).sum(axis=1)
        zy = x[np.arange(len(x)), np.where(valid, a["labels"], 0)] - m
        a["loss"][:] = (np.log(s) - zy) * valid
        a["lse"][:] = m + np.log(s)
    elif name == "xent_bwd":
        rows, cols = int(a["rows"]), int(a["cols"])
        x = a["x"].reshape(rows, cols)
        valid = a["labels"] != a["ignore_index"]
        gv = a["gy"] * valid
        p = np.exp(x.astype(np.float64) - a["lse"][:, None]).astype(x.dtype)
        onehot = np.zeros((rows, cols), bool)
        onehot[np.arange(rows), np.where(valid, a["labels"], 0)] = valid
        a["gx"][:] = (p * gv[:, None] - np.where(onehot, gv[:, None], 0)).reshape(-1)
    elif name == "bn_stats":
        x = a["x"].reshape(int(a["n"]), int(a["c"]), int(a["s"])).astype(np.float64)
        mu = x.mean(axis=(0, 2))
        var = ((x - mu[None, :, None]) ** 2).mean(axis=(0, 2))
        a["mean"][:], a["var"][:], a["rstd"][:] = mu, var, 1 / np.sqrt(var + a["eps"])
    elif name == "bn_apply":
        ch = (np.arange(int(a["total"])) // int(a["s"])) % int(a["c"])
        xh = (a["x"] - a["mean"][ch]) * a["rstd"][ch]
        a["xhat"][:] = xh
        a["y"][:] = xh * a["w"][ch] + a["b"][ch] if a["affine"] else xh
    elif name == "bn_bwd_reduce":
        shape = (int(a["n"]), int(a["c"]), int(a["s"]))
        g, xh = a["g"].reshape(shape).astype(np.float64), a["xhat"].reshape(shape).astype(np.float64)
        a["sum_g"][:], a["sum_gx"][:] = g.sum(axis=(0, 2)), (g * xh).sum(axis=(0, 2))
    elif name == "bn_bwd_apply":
        ch = (np.arange(int(a["total"])) // int(a["s"])) % int(a["c"])
        scale = a["w"][ch] * a["rstd"][ch] if a["affine"] else a["rstd"][ch]
        a["gx"][:] = scale * (a["g"] - a["sum_g"][ch] * a["inv_m"] - a["xhat"] * (a["sum_gx"][ch] * a["inv_m"]))
    elif name == "adam":
        p, g = a["p"].copy(), a["g"].copy()
        if a["has_wd"]:
            if a["decoupled"]:
                p = p * a["decay"]
            else:
                g = p * a["wd"] + g
        m = a["m"] * a["b1"] + g * a["one_minus_b1"]
        v = a["v"] * a["b2"] + (g * g) * a["one_minus_b2"]
        a["m"][:], a["v"][:] = m, v
        if a["amsgrad"]:
            a["vmax"][:] = np.maximum(a["vmax"], v)
            den = np.sqrt(a["vmax"])
        else:
            den = np.sqrt(v)
        den = den / a["bc2_sqrt"] + a["eps"]
        a["p"][:] = p - (m / den) * a["step_size"]
    elif name == "sgd":
        p, d = a["p"].copy(), a["g"].copy()
        if a["has_wd"]:
            d = p * a["wd"] + d
        if a["has_momentum"]:
            if a["first"]:
                b = d
            elif a["has_damp"]:
                b = a["buf"] * a["momentum"] + d * a["one_minus_damp"]
            else:
                b = a["buf"] * a["momentum"] + d
            a["buf"][:] = b
            d = b * a["momentum"] + d if a["nesterov"] else b
        a["p"][:] = p - d * a["lr"]
    else:
        raise AssertionError(f"no emulation of {name}")


class _EmulatedDevice:
    """Stands in for ``CupyFused._launch``: checks each launch against the C signature, then runs it."""

    def __init__(self):
        self.sigs = _signatures()
        self.launched = []
        self.memory = {}

    def address(self, a) -> int:
        """Stands in for ``cupy_backend._ptr``: the array's address, remembered for the launch tables."""
        assert a.flags.c_contiguous
        self.memory[a.ctypes.data] = a.reshape(-1)
        return a.ctypes.data

    def __call__(self, base, dtype, grid, args, shared=0):
        name = base + kernels.SUFFIX[np.dtype(dtype).name]
        sig = self.sigs[name]
        assert len(args) == len(sig), f"{name}: {len(args)} arguments for {len(sig)} parameters"
        assert isinstance(grid, int) and grid >= 1, f"{name}: grid {grid!r}"
        assert shared == (kernels.BLOCK * 8 if base in _SHARED_KERNELS else 0), f"{name}: shared memory {shared}"
        named = {}
        for (ctype, pname), arg in zip(sig, args):
            if ctype.endswith("*"):
                assert isinstance(arg, np.ndarray), f"{name}.{pname}: {type(arg).__name__} for {ctype}"
                assert arg.dtype == _C_POINTERS[ctype], f"{name}.{pname}: {arg.dtype} array for {ctype}"
                assert arg.flags.c_contiguous, f"{name}.{pname}: not C-contiguous"
                named[pname] = arg.reshape(-1)
            else:
                assert type(arg) is _C_SCALARS[ctype], f"{name}.{pname}: {type(arg).__name__} for {ctype}"
                named[pname] = arg
        size = max(v.size for v in named.values() if isinstance(v, np.ndarray))
        if base in _ELEMENTWISE or base in ("bn_apply", "bn_bwd_apply"):   # the count covers the largest array
            assert 0 < named.get("total", named.get("n")) == size, name
        self.launched.append(base)
        _emulate(base, named, self.memory)


@pytest.fixture
def emulated(monkeypatch):
    """A ``CupyFused`` whose arrays are NumPy arrays and whose kernels run in ``_emulate``."""
    monkeypatch.setattr(cupy_backend, "cupy", np)
    fused = cupy_backend.CupyFused.__new__(cupy_backend.CupyFused)
    ArrayFused.__init__(fused, np)
    fused._device = contextlib.nullcontext()
    fused._launch = _EmulatedDevice()
    monkeypatch.setattr(cupy_backend, "_ptr", fused._launch.address)
    return fused


def _close(a, b, dtype, err="", big=False):
    if a is None or b is None:
        assert a is None and b is None, err
        return
    assert a.dtype == b.dtype and a.shape == b.shape, err
    # large sums (batch-norm reductions over 160,000 elements) differ by summation order: absolute slack
    if dtype == np.float32:
        tol = dict(rtol=1e-4, atol=2e-3 if big else 1e-5)
    else:
        tol = dict(rtol=1e-10, atol=1e-9 if big else 1e-12)
    np.testing.assert_allclose(a, b, **tol, err_msg=err)


def _all_fused_cases(dtype, seed, big=False):
    """(name, callable(fused, xp_asarray)) pairs covering every fused method; inputs drawn from ``seed``."""
    rng = np.random.default_rng(seed)

    def arr(*shape, lo=-4.0, hi=4.0):
        return rng.uniform(lo, hi, shape).astype(dtype)

    shape = (1000, 3001) if big else (3, 5, 4)
    x, gy = arr(*shape), arr(*shape)
    y, t = _sig(x).astype(dtype), np.tanh(x).astype(dtype)
    rows, cols = ((10000, 1000) if big else (7, 5))
    logits = arr(rows, cols, lo=-10, hi=10)
    labels = rng.integers(0, cols, rows)
    labels[rng.random(rows) < 0.3] = -100
    lgy = arr(rows)
    bshape = (64, 3, 50, 50) if big else (4, 3, 5)
    bx, bg = arr(*bshape), arr(*bshape)
    c = bshape[1]
    w, b = arr(c, lo=0.5, hi=2.0), arr(c)
    pshape = (3_000_000,) if big else (6, 7)
    p0, grads = arr(*pshape, lo=-1, hi=1), [arr(*pshape, lo=-1, hi=1) for _ in range(3)]
    cases = [
        ("sigmoid", lambda f, a: [f.sigmoid(a(x))]),
        ("sigmoid_backward", lambda f, a: [f.sigmoid_backward(a(y), a(gy))]),
        ("tanh_backward", lambda f, a: [f.tanh_backward(a(t), a(gy))]),
        ("silu", lambda f, a: [f.silu(a(x))]),
        ("silu_backward", lambda f, a: [f.silu_backward(a(x), a(gy))]),
        ("non-contiguous input", lambda f, a: [f.sigmoid(a(x).T), f.leaky_relu_backward(a(x).T, a(gy).T, 0.0)]),
    ]
    # PyTorch's ReLU / leaky ReLU backward at NaN x and under infinite or NaN gy (selects, not products)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.0], dtype)
    sx, sg = special[rng.integers(0, len(special), shape)], special[rng.integers(0, len(special), shape)]
    for slope in SLOPES:
        cases += [(f"leaky_relu({slope})", lambda f, a, s=slope: [f.leaky_relu(a(x), s)]),
                  (f"leaky_relu_backward({slope})", lambda f, a, s=slope: [f.leaky_relu_backward(a(x), a(gy), s)]),
                  (f"leaky_relu_backward({slope}) at special points",
                   lambda f, a, s=slope: [f.leaky_relu_backward(a(sx), a(sg), s)])]

    def xent(f, a):
        loss, ctx = f.softmax_xent_forward(a(logits), a(labels), -100)
        return [loss, f.softmax_xent_backward(ctx, a(logits), a(labels), a(lgy), -100)]

    def bn(affine):
        def run(f, a):
            yy, mu, var, ctx = f.batch_norm_forward(a(bx), a(w) if affine else None, a(b) if affine else None, 1e-5)
            gx, gw, gb = f.batch_norm_backward(ctx, a(bg), a(w) if affine else None)
            return [yy, mu, var, gx, gw, gb]
        return run

    cases += [("softmax_xent", xent), ("batch_norm affine", bn(True)), ("batch_norm", bn(False))]
    for hp in [dict(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, amsgrad=False, decoupled=False),
               dict(lr=1e-2, b1=0.8, b2=0.95, eps=1e-6, wd=0.1, amsgrad=True, decoupled=False),
               dict(lr=1e-2, b1=0.9, b2=0.99, eps=1e-8, wd=0.3, amsgrad=False, decoupled=True),
               dict(lr=1e-2, b1=0.9, b2=0.99, eps=1e-8, wd=0.1, amsgrad=True, decoupled=True)]:
        cases.append((f"adam {hp}", lambda f, a, hp=hp: list(_run_adam(f, _xp_of(a), a(p0), [a(g) for g in grads],
                                                                       hp))))
    for hp in [dict(lr=0.1, mu=0.0, damp=0.0, wd=0.0, nesterov=False),
               dict(lr=0.1, mu=0.0, damp=0.0, wd=0.05, nesterov=False),
               dict(lr=0.05, mu=0.9, damp=0.0, wd=0.0, nesterov=False),
               dict(lr=0.05, mu=0.9, damp=0.3, wd=0.01, nesterov=False),
               dict(lr=0.05, mu=0.8, damp=0.0, wd=0.05, nesterov=True)]:
        cases.append((f"sgd {hp}", lambda f, a, hp=hp: list(_run_sgd(f, _xp_of(a), a(p0), [a(g) for g in grads], hp))))
    gshapes = [(2_000_000,), (1000, 1001), (0,), (1,)] if big else [(6, 7), (5,), (0,), (1,)]
    gp0 = [arr(*sh, lo=-1, hi=1) for sh in gshapes]
    ggs = [[arr(*sh, lo=-1, hi=1) for sh in gshapes] for _ in range(3)]

    def group_run(f, a, hp, kind):
        """Three group updates; parameter 1 sits out the second, so step counts differ within the group."""
        xp = _xp_of(a)
        ps = [a(p) for p in gp0]
        st1 = [xp.zeros_like(p) for p in ps]
        st2 = [xp.zeros_like(p) for p in ps]
        st3 = [xp.zeros_like(p) if hp.get("amsgrad") else None for p in ps]
        bufs = [xp.empty_like(p) if hp.get("mu") else None for p in ps]
        tmps = [[xp.empty_like(p), xp.empty_like(p)] for p in ps]
        steps = [0] * len(ps)
        for k in range(3):
            sel = [i for i in range(len(ps)) if not (k == 1 and i == 1)]
            pick = lambda lst: [lst[i] for i in sel]   # noqa: E731
            gk = [a(g) for g in pick(ggs[k])]
            if kind == "adam":
                for i in sel:
                    steps[i] += 1
                f.adam_update_group(pick(ps), gk, pick(st1), pick(st2), pick(st3), pick(tmps), steps=pick(steps),
                                    lr=hp["lr"], betas=(hp["b1"], hp["b2"]), eps=hp["eps"], weight_decay=hp["wd"],
                                    decoupled=hp["decoupled"])
            else:
                firsts = [steps[i] == 0 for i in sel]
                for i in sel:
                    steps[i] += 1
                f.sgd_update_group(pick(ps), gk, pick(bufs), pick(tmps), firsts=firsts, lr=hp["lr"],
                                   momentum=hp["mu"], dampening=hp["damp"], weight_decay=hp["wd"],
                                   nesterov=hp["nesterov"])
        extra = st1 + st2 + [v for v in st3 if v is not None] if kind == "adam" else [b for b in bufs if b is not None]
        return ps + extra

    for hp in [dict(lr=1e-2, b1=0.9, b2=0.999, eps=1e-8, wd=0.1, amsgrad=False, decoupled=False),
               dict(lr=1e-2, b1=0.8, b2=0.99, eps=1e-8, wd=0.2, amsgrad=True, decoupled=True)]:
        cases.append((f"adam group {hp}", lambda f, a, hp=hp: group_run(f, a, hp, "adam")))
    for hp in [dict(lr=0.1, mu=0.0, damp=0.0, wd=0.0, nesterov=False),
               dict(lr=0.05, mu=0.9, damp=0.3, wd=0.01, nesterov=False),
               dict(lr=0.05, mu=0.8, damp=0.0, wd=0.05, nesterov=True)]:
        cases.append((f"sgd group {hp}", lambda f, a, hp=hp: group_run(f, a, hp, "sgd")))
    return cases


def _xp_of(asarray):
    return getattr(asarray, "xp", np)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_cupy_launchers_on_an_emulated_device(emulated, dtype):
    for name, run in _all_fused_cases(dtype, seed=1):
        want = run(REF, np.array)
        got = run(emulated, np.array)
        assert len(got) == len(want)
        for i, (g, w) in enumerate(zip(got, want)):
            _close(g, w, dtype, f"{name}, output {i}")
    assert set(emulated._launch.launched) == {b for bases in kernels.KERNELS.values() for b in bases}


def test_cupy_launchers_fall_back_to_the_formulas_outside_the_kernels(emulated):
    x16 = np.linspace(-3, 3, 12).astype(np.float16).reshape(3, 4)
    np.testing.assert_array_equal(emulated.sigmoid(x16), REF.sigmoid(x16))
    empty = np.zeros((0, 3), np.float32)
    assert emulated.sigmoid(empty).shape == (0, 3)
    loss, ctx = emulated.softmax_xent_forward(empty, np.zeros(0, np.int64), -100)
    assert loss.shape == (0,) and ctx[0] == "exp"
    assert emulated._launch.launched == []


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_emulated_leaky_relu_bwd_is_the_formula_bit_for_bit(emulated, dtype):
    x, g = _special_pairs(dtype)
    for slope in SLOPES:
        _assert_bitwise(emulated.leaky_relu_backward(x, g, slope), REF.leaky_relu_backward(x, g, slope), slope)
    assert emulated._launch.launched == ["leaky_relu_bwd"] * len(SLOPES)


# --- 4. on a GPU -----------------------------------------------------------------------------------------------
gpu = pytest.mark.skipif(not backends.cuda_available(), reason="CuPy or a CUDA GPU is not available")


class _ToCuda:
    """Host array -> CuPy array on cuda:0 (carries ``xp`` for the optimizer runners)."""

    def __init__(self):
        import cupy
        self.xp = cupy

    def __call__(self, a):
        return self.xp.asarray(a)


def _host(a):
    return None if a is None else (a.get() if hasattr(a, "get") else np.asarray(a))


@gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_cuda_leaky_relu_backward_is_the_formula_bit_for_bit(dtype):
    be = backends.get_backend("cuda")
    to_cuda = _ToCuda()
    x, g = _special_pairs(dtype)
    for slope in SLOPES:
        got = _host(be.fused.leaky_relu_backward(to_cuda(x), to_cuda(g), slope))
        _assert_bitwise(got, REF.leaky_relu_backward(x, g, slope), slope)


@gpu
@pytest.mark.parametrize("big", [False, True], ids=["small", "large"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_cuda_fused_ops_match_numpy(dtype, big):
    be = backends.get_backend("cuda")
    to_cuda = _ToCuda()
    for name, run in _all_fused_cases(dtype, seed=2, big=big):
        want = run(REF, np.array)
        got = [_host(g) for g in run(be.fused, to_cuda)]
        assert len(got) == len(want)
        for i, (g, w) in enumerate(zip(got, want)):
            _close(g, w, dtype, f"{name}, output {i}", big)
    be.synchronize()


@gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(case=_xent_case(max_rows=40, max_cols=300))
def test_cuda_softmax_xent_any_row_length(dtype, case):
    be, to_cuda = backends.get_backend("cuda"), _ToCuda()
    x, labels, gy = case
    x, gy = x.astype(dtype), gy.astype(dtype)
    loss, ctx = REF.softmax_xent_forward(x.copy(), labels, -100)
    gx = REF.softmax_xent_backward(ctx, x, labels, gy, -100)
    closs, cctx = be.fused.softmax_xent_forward(to_cuda(x), to_cuda(labels.astype(np.int32)), -100)
    cgx = be.fused.softmax_xent_backward(cctx, to_cuda(x), to_cuda(labels), to_cuda(gy), -100)
    _close(_host(closs), loss, dtype)
    _close(_host(cgx), gx, dtype)


@gpu
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@given(case=_bn_case())
def test_cuda_batch_norm_any_shape(dtype, case):
    be, to_cuda = backends.get_backend("cuda"), _ToCuda()
    x, w, b, g, eps = [a.astype(dtype) if isinstance(a, np.ndarray) else a for a in case]
    want = _bn_run(REF, x, w, b, g, eps)
    got = _bn_run(be.fused, to_cuda(x), None if w is None else to_cuda(w), None if b is None else to_cuda(b),
                  to_cuda(g), eps)
    tol = dict(rtol=1e-3, atol=1e-3) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)
    for i, (a, e) in enumerate(zip(got, want)):
        if e is None:
            assert a is None
        else:
            np.testing.assert_allclose(_host(a), e, **tol, err_msg=f"output {i}")


OPTIM_CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.05)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
]


@gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config", OPTIM_CONFIGS,
                         ids=lambda c: c[0] + "-" + ",".join(f"{k}={v}" for k, v in c[1].items()))
def test_cuda_optimizer_steps_equal_cpu(config, dtype):
    import autograd as ag
    import nn
    from nn import optim
    name, kw = config
    rng = np.random.default_rng(3)
    shapes = [(300, 70), (70,), (5, 3, 3, 3), (1,)]
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    runs = {}
    for dev in ("cpu", "cuda"):
        ps = [nn.Parameter(ag.tensor(a, device=dev)) for a in init]
        opt = getattr(optim, name)(ps, **kw)
        for k in range(5):
            for i, p in enumerate(ps):
                if i == 3 and k % 2:          # no gradient: skipped, so step counts differ within the group
                    p.grad = None
                    continue
                g = (np.sin(init[i] * (k + 1)) + 0.1 * k).astype(dtype)
                # the first gradient is a transposed (non-contiguous) view
                p.grad = ag.tensor(g.T.copy(), device=dev).T if i == 0 else ag.tensor(g, device=dev)
            opt.step()
        runs[dev] = [p.numpy() for p in ps] + [s.numpy() for p in ps for s in opt.state[p].values()
                                               if isinstance(s, ag.Tensor)]
    tol = dict(rtol=2e-6, atol=1e-7) if dtype == "float32" else dict(rtol=1e-13, atol=1e-15)
    for a, b in zip(runs["cuda"], runs["cpu"]):
        np.testing.assert_allclose(a, b, **tol)


@gpu
def test_cuda_training_step_uses_the_kernels_and_matches_cpu():
    """A small model with every fused op on its path: BatchNorm, SiLU, sigmoid, tanh, leaky ReLU, ReLU,
    cross-entropy, Adam — one step on each device, same parameters afterwards."""
    import autograd as ag
    import nn
    import nn.functional as F
    from nn import optim
    rng = np.random.default_rng(4)
    x = rng.standard_normal((32, 10)).astype(np.float64)
    y = rng.integers(0, 4, 32)
    states = {}
    for dev in ("cpu", "cuda"):
        lin1, bn, lin2 = nn.Linear(10, 16), nn.BatchNorm1d(16), nn.Linear(16, 4)
        model = nn.Sequential(lin1, bn, nn.SiLU(), nn.Tanh(), nn.LeakyReLU(0.1), nn.ReLU(), nn.Sigmoid(), lin2)
        if dev == "cpu":
            start = {k: v.numpy().copy() for k, v in model.state_dict().items()}
        model.load_state_dict({k: ag.tensor(v) for k, v in start.items()})
        model = model.double().to(dev)
        opt = optim.Adam(model.parameters(), lr=1e-2)
        loss = F.cross_entropy(model(ag.tensor(x, device=dev)), ag.tensor(y, device=dev))
        loss.backward()
        opt.step()
        states[dev] = {k: v.numpy() for k, v in model.state_dict().items()}
    for k in states["cpu"]:
        np.testing.assert_allclose(states["cuda"][k], states["cpu"][k], rtol=1e-10, atol=1e-12, err_msg=k)
