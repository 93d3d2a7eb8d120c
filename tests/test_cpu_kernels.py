"""The C kernels of the NumPy backend (backends/cpu_kernels.py) against the NumPy formulas they replace.

Every kernel must give bit for bit what ``ArrayFused`` (the formulas) gives, on every layout it accepts, with
ties, signed zeros, infinities and NaN; inputs it does not accept must reach the formulas; and without a
compiler (or with XPGRAD_CPU_KERNELS=0) everything runs on the formulas.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends import cpu_kernels
from backends.fused import ArrayFused, TileArg

FORMULAS = ArrayFused(np)
KERNELS = cpu_kernels.CpuFused()
ROOT = pathlib.Path(__file__).resolve().parents[1]



@pytest.fixture(autouse=True, scope="module")
def _kernels_for_small_arrays():
    """The drawn arrays are small; the kernels skip arrays under MIN_SIZE elements outside these tests."""
    old, cpu_kernels.MIN_SIZE = cpu_kernels.MIN_SIZE, 0
    yield
    cpu_kernels.MIN_SIZE = old


needs_kernels = pytest.mark.skipif(cpu_kernels.library() is None, reason=f"CPU kernels: {cpu_kernels.status()}")

# (N, C, H, W) arrays stored in these axis orders (outermost first): NCHW, batch-last CHWN, channels-last NHWC
LAYOUTS = {"nchw": (0, 1, 2, 3), "chwn": (1, 2, 3, 0), "nhwc": (0, 2, 3, 1)}


def _stored(a, order):
    """``a`` with the same values, stored in axis ``order``."""
    return np.ascontiguousarray(a.transpose(order)).transpose(np.argsort(order))


def _alloc(order):
    def alloc(shape, dtype, result=False):
        return np.empty(tuple(shape[k] for k in order), dtype).transpose(np.argsort(order))
    return alloc


def _values(draw, shape, dtype, special):
    """Floats from a small set (so windows tie), with signed zeros and, when ``special``, ±inf."""
    pool = [-2.0, -1.0, -0.0, 0.0, 0.5, 1.0, 3.0] + ([np.inf, -np.inf] if special else [])
    idx = draw(st.lists(st.integers(0, len(pool) - 1), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    return np.array([pool[i] for i in idx], dtype).reshape(shape)


@st.composite
def _pool_case(draw):
    kh, kw = draw(st.sampled_from([(2, 2), (3, 3), (1, 2), (2, 1), (2, 3)]))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    oh, ow = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    x = _values(draw, (n, c, oh * kh, ow * kw), dtype, draw(st.booleans()))
    g = _values(draw, (n, c, oh, ow), dtype, True)
    return x, g, (kh, kw), draw(st.sampled_from(sorted(LAYOUTS)))


@needs_kernels
@given(case=_pool_case())
def test_max_pool_kernels_equal_the_formulas_bit_for_bit(case):
    x0, g0, (kh, kw), layout = case
    order = LAYOUTS[layout]
    x, g = _stored(x0, order), _stored(g0, order)
    y_ref, where_ref = FORMULAS.max_pool_tiles(x, kh, kw, _alloc(order))
    y, where = KERNELS.max_pool_tiles(x, kh, kw, _alloc(order))
    assert isinstance(where, cpu_kernels.TileCode)              # the kernel ran
    np.testing.assert_array_equal(y, y_ref, strict=True)
    assert (np.signbit(y) == np.signbit(y_ref)).all()
    np.testing.assert_array_equal(where.offsets(np), where_ref.offsets(np))
    with np.errstate(invalid="ignore"):                         # inf·0 in the formula
        gx_ref = FORMULAS.max_pool_tiles_backward(g, where_ref, kh, kw, _alloc(order))
    gx = KERNELS.max_pool_tiles_backward(g, where, kh, kw, _alloc(order))
    np.testing.assert_array_equal(gx, gx_ref, strict=True)      # inf·0 = NaN where the formula makes it
    assert (np.signbit(gx) == np.signbit(gx_ref)).all()
    np.testing.assert_array_equal(x, x0)                        # inputs untouched


@needs_kernels
@pytest.mark.parametrize("spot", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_max_pool_kernel_propagates_nan_and_keeps_its_gradient_in_the_window(spot):
    x = np.zeros((1, 1, 2, 4), np.float32)
    x[(0, 0) + spot] = np.nan
    y, where = KERNELS.max_pool_tiles(x, 2, 2, _alloc(LAYOUTS["nchw"]))
    y_ref, where_ref = FORMULAS.max_pool_tiles(x, 2, 2, _alloc(LAYOUTS["nchw"]))
    assert np.isnan(y[0, 0, 0, 0]) and y[0, 0, 0, 1] == 0
    np.testing.assert_array_equal(where.offsets(np), where_ref.offsets(np))
    gx = KERNELS.max_pool_tiles_backward(np.ones((1, 1, 1, 2), np.float32), where, 2, 2, _alloc(LAYOUTS["nchw"]))
    assert gx[..., :2].sum() == 1 and gx[..., 2:].sum() == 1    # one element of each window


@needs_kernels
def test_max_pool_kernels_pass_other_inputs_to_the_formulas():
    x = np.arange(16.0).reshape(1, 1, 4, 4)[:, :, :, ::-1]      # a reversed view: no block layout
    _, where = KERNELS.max_pool_tiles(x, 2, 2, _alloc(LAYOUTS["nchw"]))
    assert isinstance(where, TileArg)
    xi = np.arange(16, dtype=np.int64).reshape(1, 1, 4, 4)      # no integer kernel
    y, where = KERNELS.max_pool_tiles(xi, 2, 2, _alloc(LAYOUTS["nchw"]))
    assert isinstance(where, TileArg) and y.dtype == np.int64


@needs_kernels
@given(seed=st.integers(0, 2**16), layout=st.sampled_from(sorted(LAYOUTS)),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_relu_backward_kernel_equals_the_formula_bit_for_bit(seed, layout, dtype):
    rng = np.random.default_rng(seed)
    pool = np.array([-2.0, -0.0, 0.0, 1.5, np.inf, -np.inf, np.nan], dtype)
    x = _stored(pool[rng.integers(0, len(pool), (2, 3, 4, 5))], LAYOUTS[layout])
    g = _stored(pool[rng.integers(0, len(pool), (2, 3, 4, 5))], LAYOUTS[layout])
    want = FORMULAS.leaky_relu_backward(x, g)
    got = KERNELS.leaky_relu_backward(x, g)
    np.testing.assert_array_equal(got, want, strict=True)
    assert (np.signbit(got) == np.signbit(want)).all()
    # PyTorch's threshold_backward: +0 where x <= 0 (-0.0 included, g infinite or NaN too), g elsewhere (NaN x)
    torch_s = np.where(x <= 0, dtype(0), g)
    np.testing.assert_array_equal(got, torch_s, strict=True)
    assert (np.signbit(got) == np.signbit(torch_s)).all()
    assert got.strides == g.strides


def test_relu_backward_mixed_layouts_and_slopes_use_the_formulas():
    x = np.linspace(-1, 1, 24).reshape(2, 3, 4)
    g = np.ones((4, 3, 2)).T                                    # another layout than x
    np.testing.assert_array_equal(KERNELS.leaky_relu_backward(x, g), FORMULAS.leaky_relu_backward(x, g))
    np.testing.assert_array_equal(KERNELS.leaky_relu_backward(x, x, 0.1), FORMULAS.leaky_relu_backward(x, x, 0.1))


_PROBE = """
import numpy as np
import autograd as ag, nn.functional as F
from backends import cpu_kernels
x = ag.tensor(np.arange(16384.0, dtype=np.float32).reshape(2, 8, 32, 32), requires_grad=True)   # kernel-sized
F.max_pool2d(F.relu(x), 2).sum().backward()
print(cpu_kernels.status())
print(float(x.grad.sum()))
"""


def _probe(env):
    out = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    return out[0], float(out[1])


def test_without_kernels_the_formulas_run(tmp_path):
    off, grad = _probe({"XPGRAD_CPU_KERNELS": "0"})
    assert off.startswith("off") and grad == 4096.0
    broken, grad = _probe({"CC": "false", "XPGRAD_KERNEL_CACHE": str(tmp_path)})     # a compiler that fails
    assert broken.startswith("unavailable") and grad == 4096.0
    assert not list(tmp_path.glob("*.so")) and not list(tmp_path.glob("*.c"))        # nothing half-written


@needs_kernels
def test_kernels_are_compiled_once_into_the_cache(tmp_path):
    first, grad = _probe({"XPGRAD_KERNEL_CACHE": str(tmp_path)})
    assert first.startswith("compiled") and grad == 4096.0
    (lib,) = tmp_path.glob("cpu_kernels_*.so")
    stamp = lib.stat().st_mtime_ns
    again, _ = _probe({"XPGRAD_KERNEL_CACHE": str(tmp_path)})
    assert again == first and lib.stat().st_mtime_ns == stamp                         # reused, not rebuilt


@st.composite
def _grid_case(draw):
    from autograd.ops._grid import _Grid
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pt, pl = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H, W = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    OH = (H + 2 * pt - dh * (kh - 1) - 1) // sh + 1
    OW = (W + 2 * pl - dw * (kw - 1) - 1) // sw + 1
    if OH < 1 or OW < 1:
        OH, OW, pt, pl, dh, dw, kh, kw = H, W, 0, 0, 1, 1, 1, 1
    C, n = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return _Grid(C, H, W, (kh, kw), (sh, sw), (dh, dw), (pt, pl), (OH, OW)), n, dtype


@needs_kernels
@given(case=_grid_case(), seed=st.integers(0, 2**16))
def test_im2col_and_col2im_kernels_equal_the_formulas_bit_for_bit(case, seed):
    g, n, dtype = case
    rng = np.random.default_rng(seed)
    pool = np.array([-1.5, -0.0, 0.0, 0.25, 3.0, 1e-3], dtype)      # signed zeros: col2im's first term matters
    img = pool[rng.integers(0, len(pool), (g.C, g.H, g.W, n))]
    want, got = np.full((g.K, g.OH * g.OW * n), 7, dtype), np.full((g.K, g.OH * g.OW * n), 9, dtype)
    FORMULAS.im2col(img, want, g)
    KERNELS.im2col(img, got, g)
    np.testing.assert_array_equal(got, want, strict=True)
    cols = pool[rng.integers(0, len(pool), (g.K, g.OH * g.OW * n))] * rng.uniform(0.5, 2, (g.K, 1)).astype(dtype)
    want, got = np.full((g.C, g.H, g.W, n), 7, dtype), np.full((g.C, g.H, g.W, n), 9, dtype)
    FORMULAS.col2im(cols, want, g)
    KERNELS.col2im(cols, got, g)
    np.testing.assert_array_equal(got, want, strict=True)
    assert (np.signbit(got) == np.signbit(want)).all()


@needs_kernels
def test_grid_kernels_pass_strided_arrays_to_the_formulas():
    from autograd.ops._grid import _Grid
    g = _Grid(2, 4, 4, (3, 3), (1, 1), (1, 1), (1, 1), (4, 4))
    img = np.arange(2 * 4 * 4 * 6, dtype=np.float32).reshape(2, 4, 4, 6)[..., ::2]     # strided batch axis
    want, got = np.empty((18, 48), np.float32), np.empty((18, 48), np.float32)
    FORMULAS.im2col(img, want, g)
    KERNELS.im2col(img, got, g)
    np.testing.assert_array_equal(got, want)
    out = np.zeros((2, 4, 4, 6), np.float32)
    KERNELS.col2im(want, out[..., ::2], g)                                              # a strided result
    ref = np.zeros((2, 4, 4, 3), np.float32)
    FORMULAS.col2im(want, ref, g)
    np.testing.assert_array_equal(out[..., ::2], ref)
    assert not out[..., 1::2].any()


_ADAM_HP = st.fixed_dictionaries(dict(
    lr=st.floats(1e-4, 0.1), b1=st.floats(0.0, 0.99), b2=st.floats(0.5, 0.999), eps=st.sampled_from([1e-8, 1e-3]),
    wd=st.sampled_from([0.0, 0.01, 0.3]), amsgrad=st.booleans(), decoupled=st.booleans()))


@needs_kernels
@given(hp=_ADAM_HP, seed=st.integers(0, 2**16), dtype=st.sampled_from([np.float32, np.float64]))
def test_adam_kernel_equals_the_formula_bit_for_bit(hp, seed, dtype):
    runs = []
    for fused in (FORMULAS, KERNELS):
        r = np.random.default_rng(seed)
        ps = [r.uniform(-2, 2, (5, 7)).astype(dtype), r.uniform(-2, 2, (3,)).astype(dtype)]
        state = [[np.zeros_like(p) for p in ps] for _ in range(2)]
        vmax = [np.zeros_like(p) for p in ps] if hp["amsgrad"] else [None, None]
        tmps = [[np.empty_like(p), np.empty_like(p)] for p in ps]
        for t in range(1, 4):
            grads = [r.uniform(-1, 1, p.shape).astype(dtype) for p in ps]
            fused.adam_update_group(ps, grads, *state, vmax, tmps, steps=[t, t], lr=hp["lr"],
                                    betas=(hp["b1"], hp["b2"]), eps=hp["eps"], weight_decay=hp["wd"],
                                    decoupled=hp["decoupled"])
        runs.append(ps + state[0] + state[1] + [v for v in vmax if v is not None])
    assert not np.array_equal(runs[1][0], np.random.default_rng(seed).uniform(-2, 2, (5, 7)).astype(dtype))
    for want, got in zip(*runs):
        np.testing.assert_array_equal(got, want, strict=True)


def test_adam_kernel_leaves_other_layouts_to_the_formula():
    p = np.ones((4, 3))
    g = np.arange(12.0).reshape(3, 4).T                      # transposed gradient: not C-contiguous
    state = [np.zeros_like(p), np.zeros_like(p)]
    want = p.copy()
    FORMULAS.adam_update_group([want], [g], [np.zeros_like(p)], [np.zeros_like(p)], [None], [[np.empty_like(p)] * 2],
                               steps=[1], lr=0.1, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0, decoupled=False)
    KERNELS.adam_update_group([p], [g], *([s] for s in state), [None], [[np.empty_like(p)] * 2], steps=[1], lr=0.1,
                              betas=(0.9, 0.99), eps=1e-8, weight_decay=0.0, decoupled=False)
    np.testing.assert_array_equal(p, want)


@needs_kernels
def test_a_cnn_block_on_the_kernels_passes_gradcheck_to_second_order(monkeypatch):
    """conv → ReLU → max pooling: first and second derivatives against central differences in float64 with
    every kernel of the block in use (the registry's own checks draw arrays too small for the kernels)."""
    import autograd as ag
    import nn.functional as F
    used = []
    real = cpu_kernels._kernel
    monkeypatch.setattr(cpu_kernels, "_kernel", lambda name, dt: used.append(name) or real(name, dt))
    rng = np.random.default_rng(0)
    x = ag.tensor(rng.permutation(2 * 2 * 6 * 6).reshape(2, 2, 6, 6) / 7.0 - 5, requires_grad=True)   # no ties
    w = ag.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    b = ag.tensor(rng.standard_normal(3), requires_grad=True)

    def block(x, w, b):
        return F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), 2)
    assert ag.gradcheck(block, (x, w, b))
    assert ag.gradgradcheck(block, (x, w, b))
    assert {"im2col", "col2im", "relu_backward", "max_pool_tiles", "max_pool_tiles_backward"} <= set(used)


def test_kernels_from_two_threads_at_once_match_one_thread():
    """The kernels keep no state between calls (ctypes releases the GIL during each): two threads training
    small CNNs at once end bit for bit where each ends alone."""
    import threading

    import autograd as ag
    import nn

    def setup(seed):
        # drawn here, one thread at a time: the device's generator is shared, so draws from two threads at once
        # interleave in no fixed order (README, "Threads"); training itself draws nothing
        ag.manual_seed(seed)
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(4 * 8 * 8, 3))
        r = np.random.default_rng(seed)
        x, y = ag.tensor(r.standard_normal((8, 1, 16, 16)).astype(np.float32)), ag.tensor(r.integers(0, 3, 8))
        return model, x, y

    def train(seed, out, model, x, y):
        opt = nn.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(5):
            opt.zero_grad()
            nn.CrossEntropyLoss()(model(x), y).backward()
            opt.step()
        out[seed] = [p.numpy().tobytes() for p in model.parameters()]

    alone, together = {}, {}
    for seed in (1, 2):
        train(seed, alone, *setup(seed))
    threads = [threading.Thread(target=train, args=(seed, together, *setup(seed))) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert together == alone
