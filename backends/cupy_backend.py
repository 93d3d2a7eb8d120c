"""CuPy backend: one instance per GPU. Importing this module never fails; using it without CuPy does."""
from __future__ import annotations

import math

import numpy

from .base import Backend, DeviceError
from .buffers import PlainBuffers
from .fused import ArrayFused
from .kernels import BLOCK, COMPILE_OPTIONS, KERNELS, SUFFIX, kernel_sources

try:  # CuPy is optional: the `gpu` extra
    import cupy
    import cupyx
except Exception as exc:  # ImportError, or a CUDA library failing to load
    cupy = None
    cupyx = None
    _import_error = exc
else:
    _import_error = None


def available() -> bool:
    """True when CuPy is importable and at least one CUDA device answers."""
    if cupy is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


class CupyBackend(Backend):
    kind = "cuda"

    def __init__(self, index: int = 0):
        if not available():
            why = f"CuPy could not be imported ({_import_error})" if cupy is None else "no CUDA device is visible"
            raise DeviceError(f"device 'cuda:{index}' is not available: {why}. "
                              "Install the 'gpu' extra on a machine with an NVIDIA GPU, or use device='cpu'.")
        n = cupy.cuda.runtime.getDeviceCount()
        if not 0 <= index < n:
            raise DeviceError(f"device 'cuda:{index}' does not exist; {n} CUDA device(s) visible")
        self.index = index
        self.xp = cupy
        self.buffers = PlainBuffers(cupy)           # CuPy's memory pool already recycles device memory
        self._device = cupy.cuda.Device(index)
        with self._device:
            self._rng = cupy.random.default_rng()
        self.fused = CupyFused(self._device)

    def available(self) -> bool:
        return True

    def activate(self):
        return self._device

    def asarray(self, data, dtype=None):
        with self._device:
            return cupy.asarray(data, dtype=dtype)

    def to_host(self, array):
        return cupy.asnumpy(array)

    def seed(self, seed: int) -> None:
        with self._device:
            self._rng = cupy.random.default_rng(seed)

    @property
    def rng(self):
        return self._rng

    def scatter_add(self, target, index, values) -> None:
        cupyx.scatter_add(target, index, values)

    def synchronize(self) -> None:
        self._device.synchronize()



# --- fused operations as CUDA kernels -------------------------------------------------------------------

_MAX_GRID = 8192        # blocks per launch; the kernels stride over anything larger
_SHARED = BLOCK * 8     # bytes of dynamic shared memory of the block reductions (one double per thread)
_SOURCE_OF = {base: source for source, bases in KERNELS.items() for base in bases}
_FLOATS = ("float32", "float64")
_i64, _i32, _f64 = numpy.int64, numpy.int32, numpy.float64


def _ptr(a) -> int:
    """Device address of a CuPy array's first element."""
    return a.data.ptr


def _blocks(n: int) -> int:
    return min((n + BLOCK - 1) // BLOCK, _MAX_GRID)


class CupyFused(ArrayFused):
    """The fused operations as RawModule kernels on one device (compiled on first use, per source).

    Launch arguments follow ``backends/kernels.py``: pointers of C-contiguous arrays, ``numpy.int64`` sizes,
    ``numpy.int32`` flags and scalars of the array's own type. Inputs the kernels do not cover go to the
    ``ArrayFused`` formulas.
    """

    cache_block = 0     # the formulas' fallback on a GPU: whole arrays (a piece would be another launch)

    def __init__(self, device):
        super().__init__(cupy)
        self._device = device
        self._modules: dict = {}
        self._kernels: dict = {}

    def _kernel(self, base: str, dtype):
        key = (base, dtype.char)
        k = self._kernels.get(key)
        if k is None:
            source = _SOURCE_OF[base]
            with self._device:
                mod = self._modules.get(source)
                if mod is None:
                    mod = self._modules[source] = cupy.RawModule(code=kernel_sources()[source],
                                                                 options=COMPILE_OPTIONS)
                k = self._kernels[key] = mod.get_function(base + SUFFIX[dtype.name])
        return k

    def _launch(self, base: str, dtype, grid: int, args: tuple, shared: int = 0) -> None:
        k = self._kernel(base, dtype)
        with self._device:
            k((grid,), (BLOCK,), args, shared_mem=shared)

    @staticmethod
    def _covered(*arrays) -> bool:
        """One float32/float64 dtype, one shape, at least one element: what the elementwise kernels take."""
        a = arrays[0]
        if a.dtype.name not in _FLOATS or a.size == 0:
            return False
        return all(b.dtype == a.dtype and b.shape == a.shape for b in arrays[1:])

    # --- activations (elementwise) -----------------------------------------------------------------
    def _unary(self, base: str, x, *scalars):
        x = cupy.ascontiguousarray(x)
        y = cupy.empty(x.shape, x.dtype)
        self._launch(base, x.dtype, _blocks(x.size), (x, y) + scalars + (_i64(x.size),))
        return y

    def _binary(self, base: str, a, b, *scalars):
        a, b = cupy.ascontiguousarray(a), cupy.ascontiguousarray(b)
        out = cupy.empty(a.shape, a.dtype)
        self._launch(base, a.dtype, _blocks(a.size), (a, b, out) + scalars + (_i64(a.size),))
        return out

    def sigmoid(self, x):
        if not self._covered(x):
            return super().sigmoid(x)
        return self._unary("sigmoid_fwd", x)

    def sigmoid_backward(self, y, gy):
        if not self._covered(y, gy):
            return super().sigmoid_backward(y, gy)
        return self._binary("sigmoid_bwd", gy, y)

    def tanh_backward(self, y, gy):
        if not self._covered(y, gy):
            return super().tanh_backward(y, gy)
        return self._binary("tanh_bwd", gy, y)

    def leaky_relu(self, x, negative_slope: float):
        if not self._covered(x):
            return super().leaky_relu(x, negative_slope)
        return self._unary("leaky_relu_fwd", x, x.dtype.type(negative_slope))

    def leaky_relu_backward(self, x, gy, negative_slope: float = 0.0):
        if not self._covered(x, gy):
            return super().leaky_relu_backward(x, gy, negative_slope)
        return self._binary("leaky_relu_bwd", x, gy, x.dtype.type(negative_slope))

    def silu(self, x):
        if not self._covered(x):
            return super().silu(x)
        return self._unary("silu_fwd", x)

    def silu_backward(self, x, gy):
        if not self._covered(x, gy):
            return super().silu_backward(x, gy)
        return self._binary("silu_bwd", x, gy)

    # --- softmax cross-entropy: one block per row forward, elementwise backward ----------------------
    def softmax_xent_forward(self, x, labels, ignore_index: int):
        if x.ndim != 2 or not self._covered(x) or labels.shape != (x.shape[0],):
            return super().softmax_xent_forward(x, labels, ignore_index)
        rows, cols = x.shape
        x = cupy.ascontiguousarray(x)
        labels = cupy.ascontiguousarray(labels, dtype=cupy.int64)
        loss = cupy.empty(rows, x.dtype)
        lse = cupy.empty(rows, cupy.float64)
        self._launch("xent_fwd", x.dtype, min(rows, _MAX_GRID),
                     (x, labels, loss, lse, _i64(rows), _i64(cols), _i64(ignore_index)), _SHARED)
        return loss, ("lse", lse, labels)

    def softmax_xent_backward(self, ctx, x, labels, gy, ignore_index: int):
        if ctx[0] != "lse":
            return super().softmax_xent_backward(ctx, x, labels, gy, ignore_index)
        _, lse, labels = ctx
        rows, cols = x.shape
        x = cupy.ascontiguousarray(x)
        gy = cupy.ascontiguousarray(gy, dtype=x.dtype)
        gx = cupy.empty(x.shape, x.dtype)
        self._launch("xent_bwd", x.dtype, _blocks(rows * cols),
                     (x, labels, lse, gy, gx, _i64(rows), _i64(cols), _i64(ignore_index)))
        return gx

    # --- batch norm: per-channel statistics (one block per channel), elementwise apply ---------------
    def batch_norm_forward(self, x, weight, bias, eps: float):
        affine = weight is not None
        if x.ndim < 2 or not self._covered(x) or (affine and not (weight.dtype == bias.dtype == x.dtype)):
            return super().batch_norm_forward(x, weight, bias, eps)
        x = cupy.ascontiguousarray(x)
        n, c = x.shape[:2]
        s = x.size // (n * c)
        dt = x.dtype
        mean, var, rstd = cupy.empty(c, dt), cupy.empty(c, dt), cupy.empty(c, dt)
        self._launch("bn_stats", dt, min(c, _MAX_GRID), (x, mean, var, rstd, _i64(n), _i64(c), _i64(s), _f64(eps)),
                     _SHARED)
        w = cupy.ascontiguousarray(weight) if affine else mean      # not read when not affine
        b = cupy.ascontiguousarray(bias) if affine else mean
        xhat, y = cupy.empty(x.shape, dt), cupy.empty(x.shape, dt)
        self._launch("bn_apply", dt, _blocks(x.size),
                     (x, mean, rstd, w, b, xhat, y, _i64(x.size), _i64(c), _i64(s), _i32(affine)))
        return y, mean, var, ("kernel", xhat, rstd, (n, c, s))

    def batch_norm_backward(self, ctx, gy, weight):
        if ctx[0] != "kernel" or gy.dtype != ctx[1].dtype or gy.shape != ctx[1].shape:
            return super().batch_norm_backward(ctx, gy, weight)
        _, xhat, rstd, (n, c, s) = ctx
        affine = weight is not None
        dt = xhat.dtype
        g = cupy.ascontiguousarray(gy)
        sum_g, sum_gx = cupy.empty(c, dt), cupy.empty(c, dt)
        self._launch("bn_bwd_reduce", dt, min(c, _MAX_GRID), (g, xhat, sum_g, sum_gx, _i64(n), _i64(c), _i64(s)),
                     _SHARED)
        w = cupy.ascontiguousarray(weight, dtype=dt) if affine else rstd   # not read when not affine
        gx = cupy.empty(xhat.shape, dt)
        self._launch("bn_bwd_apply", dt, _blocks(xhat.size),
                     (g, xhat, rstd, w, sum_g, sum_gx, gx, _i64(xhat.size), _i64(c), _i64(s),
                      dt.type(1.0 / (n * s)), _i32(affine)))
        if not affine:
            return gx, None, None
        return gx, sum_gx, sum_g

    # --- optimizer updates: one kernel for all parameters of a group, in place ------------------------
    @staticmethod
    def _group_ok(params, grads, *state_lists) -> bool:
        """One float dtype; every state array like its parameter and C-contiguous (updated in place)."""
        dt = params[0].dtype
        if dt.name not in _FLOATS:
            return False
        for i, p in enumerate(params):
            if p.dtype != dt or not p.flags.c_contiguous or grads[i].shape != p.shape or grads[i].dtype != dt:
                return False
            for states in state_lists:
                a = states[i]
                if a is not None and (a.dtype != dt or a.shape != p.shape or not a.flags.c_contiguous):
                    return False
        return True

    @staticmethod
    def _table(entries, sizes):
        """The int64 launch table: k + 1 offsets, then each tensor's entries (pointers or flags)."""
        k = len(sizes)
        width = len(entries[0])
        table = numpy.empty(k + 1 + width * k, numpy.int64)
        table[0] = 0
        numpy.cumsum(sizes, out=table[1:k + 1])
        table[k + 1:] = numpy.asarray(entries, numpy.int64).reshape(-1)
        return cupy.asarray(table), int(table[k])

    def adam_update(self, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, tmp, *, step: int, lr: float,
                    betas: tuple, eps: float, weight_decay: float, decoupled: bool) -> None:
        self.adam_update_group([param], [grad], [exp_avg], [exp_avg_sq], [max_exp_avg_sq], [tmp], steps=[step],
                               lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, decoupled=decoupled)

    def adam_update_group(self, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, tmps, *, steps, lr: float,
                          betas: tuple, eps: float, weight_decay: float, decoupled: bool) -> None:
        live = [i for i, p in enumerate(params) if p.size]
        if not live:
            return
        amsgrad = max_exp_avg_sqs[live[0]] is not None
        if not self._group_ok(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs) or \
                any((max_exp_avg_sqs[i] is not None) != amsgrad for i in live):
            for i in range(len(params)):      # the formulas, parameter by parameter
                ArrayFused.adam_update(self, params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], max_exp_avg_sqs[i],
                                       tmps[i], step=steps[i], lr=lr, betas=betas, eps=eps,
                                       weight_decay=weight_decay, decoupled=decoupled)
            return
        dt = params[live[0]].dtype
        T = dt.type
        lr, wd, eps = float(lr), float(weight_decay), float(eps)
        b1, b2 = float(betas[0]), float(betas[1])
        keep = [cupy.ascontiguousarray(grads[i]) for i in live]       # alive until the launch is queued
        entries = [(_ptr(params[i]), _ptr(g), _ptr(exp_avgs[i]), _ptr(exp_avg_sqs[i]),
                    _ptr(max_exp_avg_sqs[i]) if amsgrad else 0) for i, g in zip(live, keep)]
        coef = numpy.empty(2 * len(live), dt)
        for j, i in enumerate(live):
            coef[2 * j] = lr / (1.0 - b1 ** steps[i])
            coef[2 * j + 1] = math.sqrt(1.0 - b2 ** steps[i])
        table, total = self._table(entries, [params[i].size for i in live])
        self._launch("adam_multi", dt, _blocks(total),
                     (table, cupy.asarray(coef), _i32(len(live)), _i64(total), T(b1), T(1.0 - b1), T(b2),
                      T(1.0 - b2), T(wd), T(1.0 - lr * wd), T(eps), _i32(decoupled), _i32(wd != 0), _i32(amsgrad)))

    def sgd_update(self, param, grad, buf, tmp, *, lr: float, momentum: float, dampening: float,
                   weight_decay: float, nesterov: bool, first: bool) -> None:
        self.sgd_update_group([param], [grad], [buf], [tmp], firsts=[first], lr=lr, momentum=momentum,
                              dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)

    def sgd_update_group(self, params, grads, bufs, tmps, *, firsts, lr: float, momentum: float,
                         dampening: float, weight_decay: float, nesterov: bool) -> None:
        live = [i for i, p in enumerate(params) if p.size]
        if not live:
            return
        mu, damp, wd = float(momentum), float(dampening), float(weight_decay)
        if not self._group_ok(params, grads, bufs) or any((bufs[i] is not None) != (mu != 0) for i in live):
            for i in range(len(params)):
                ArrayFused.sgd_update(self, params[i], grads[i], bufs[i], tmps[i], lr=lr, momentum=momentum,
                                      dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                                      first=firsts[i])
            return
        dt = params[live[0]].dtype
        T = dt.type
        keep = [cupy.ascontiguousarray(grads[i]) for i in live]
        entries = [(_ptr(params[i]), _ptr(g), _ptr(bufs[i]) if mu != 0 else 0, int(bool(firsts[i])))
                   for i, g in zip(live, keep)]
        table, total = self._table(entries, [params[i].size for i in live])
        self._launch("sgd_multi", dt, _blocks(total),
                     (table, _i32(len(live)), _i64(total), T(lr), T(wd), T(mu), T(1.0 - damp), _i32(wd != 0),
                      _i32(mu != 0), _i32(damp != 0), _i32(nesterov)))
