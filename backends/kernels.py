"""CUDA C++ sources of the fused GPU kernels, as plain text (no CuPy needed to read them).

Each entry of :func:`kernel_sources` is one complete, standalone translation unit: a small common prelude
(math overloads, NaN-propagating max, a block reduction that works for any block size) and ``extern "C"``
kernels instantiated for ``float`` (suffix ``_f32``) and ``double`` (``_f64``). The CuPy backend compiles them
lazily with ``cupy.RawModule``; the tests compile every source with NVRTC without a GPU.

Conventions every kernel follows (and the launchers in ``cupy_backend`` rely on):

- arrays are C-contiguous, sizes and indices are ``long long`` (launch with ``numpy.int64``), flags ``int``
  (``numpy.int32``), scalars of the array's type ``T`` (``numpy.float32`` / ``numpy.float64``), except ``eps``
  of the batch-norm statistics, which is ``double``;
- elementwise kernels use grid-stride loops, so any grid size covers any ``n``; the optimizer kernels update
  all parameters of a group in one launch, finding each element's tensor in a table of offsets and pointers;
- row kernels (softmax cross-entropy) use one block per row and per-channel kernels (batch norm) one block per
  channel, both striding over rows/channels by ``gridDim.x``; their block size may be any value up to 1024 and
  they need ``blockDim.x * sizeof(double)`` bytes of dynamic shared memory;
- sums are accumulated in ``double`` for both types;
- compiled with ``--fmad=false``, so ``a * b + c`` rounds twice as NumPy does and the optimizer updates, which
  apply NumPy's operations in NumPy's order with NumPy's scalar roundings, agree with it closely.
"""
from __future__ import annotations

__all__ = ["kernel_sources", "COMPILE_OPTIONS", "BLOCK", "SUFFIX"]

BLOCK = 256                          # threads per block for every launch
COMPILE_OPTIONS = ("--fmad=false",)
SUFFIX = {"float32": "_f32", "float64": "_f64"}

_PRELUDE = r"""
// ---- common prelude -------------------------------------------------------------------------
__device__ __forceinline__ float  xg_exp(float x)  { return expf(x); }
__device__ __forceinline__ double xg_exp(double x) { return exp(x); }
__device__ __forceinline__ float  xg_log(float x)  { return logf(x); }
__device__ __forceinline__ double xg_log(double x) { return log(x); }
__device__ __forceinline__ float  xg_sqrt(float x)  { return sqrtf(x); }
__device__ __forceinline__ double xg_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float  xg_abs(float x)  { return fabsf(x); }
__device__ __forceinline__ double xg_abs(double x) { return fabs(x); }

// maximum that propagates NaN, as numpy.maximum does
template <typename T>
__device__ __forceinline__ T xg_max(T a, T b) {
    if (a != a) return a;
    if (b != b) return b;
    return a > b ? a : b;
}

// overflow-safe logistic function: e^-|x| never overflows
template <typename T>
__device__ __forceinline__ T xg_sigmoid(T x) {
    T z = xg_exp(-xg_abs(x));
    return x >= T(0) ? T(1) / (T(1) + z) : z / (T(1) + z);
}

// Sum (or NaN-propagating max when is_max) of one value per thread over the block; every thread gets the
// result. Works for any blockDim.x: each round folds the upper half (rounded down) onto the lower half.
// sh holds blockDim.x doubles. Must be called by all threads of the block.
__device__ double xg_block_reduce(double v, double* sh, bool is_max) {
    sh[threadIdx.x] = v;
    __syncthreads();
    unsigned int n = blockDim.x;
    while (n > 1) {
        unsigned int h = (n + 1) >> 1;
        if (threadIdx.x < n - h) {
            double a = sh[threadIdx.x], b = sh[threadIdx.x + h];
            sh[threadIdx.x] = is_max ? xg_max(a, b) : a + b;
        }
        __syncthreads();
        n = h;
    }
    double r = sh[0];
    __syncthreads();            // sh may be reused right after
    return r;
}

#define XG_GRID_STRIDE(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)
"""

_ACTIVATIONS = r"""
// ---- activations and their backward (elementwise) ------------------------------------------
template <typename T>
__device__ void sigmoid_fwd(const T* x, T* y, long long n) {
    XG_GRID_STRIDE(i, n) y[i] = xg_sigmoid(x[i]);
}

// gx = gy * y * (1 - y), y = sigmoid(x)
template <typename T>
__device__ void sigmoid_bwd(const T* gy, const T* y, T* gx, long long n) {
    XG_GRID_STRIDE(i, n) gx[i] = gy[i] * y[i] * (T(1) - y[i]);
}

// gx = gy * (1 - y * y), y = tanh(x)
template <typename T>
__device__ void tanh_bwd(const T* gy, const T* y, T* gx, long long n) {
    XG_GRID_STRIDE(i, n) gx[i] = gy[i] * (T(1) - y[i] * y[i]);
}

// y = x if x > 0 else slope * x
template <typename T>
__device__ void leaky_relu_fwd(const T* x, T* y, T slope, long long n) {
    XG_GRID_STRIDE(i, n) y[i] = x[i] > T(0) ? x[i] : x[i] * slope;
}

// PyTorch's selects: slope 0 (ReLU) gx = x <= 0 ? 0 : gy (gy at NaN x, 0 for any gy where x <= 0);
// another slope gx = x > 0 ? gy : gy * slope (NaN x takes the slope branch)
template <typename T>
__device__ void leaky_relu_bwd(const T* x, const T* gy, T* gx, T slope, long long n) {
    XG_GRID_STRIDE(i, n) {
        const T v = x[i], g = gy[i];
        gx[i] = v > T(0) ? g : slope != T(0) ? g * slope : v <= T(0) ? T(0) : g;
    }
}

// y = x * sigmoid(x)
template <typename T>
__device__ void silu_fwd(const T* x, T* y, long long n) {
    XG_GRID_STRIDE(i, n) y[i] = x[i] * xg_sigmoid(x[i]);
}

// gx = gy * s * (1 + x (1 - s)), s = sigmoid(x)
template <typename T>
__device__ void silu_bwd(const T* x, const T* gy, T* gx, long long n) {
    XG_GRID_STRIDE(i, n) {
        T s = xg_sigmoid(x[i]);
        gx[i] = gy[i] * (s * (x[i] * (T(1) - s) + T(1)));
    }
}

#define XG_ACT(T, S) \
extern "C" __global__ void sigmoid_fwd##S(const T* x, T* y, long long n) { sigmoid_fwd<T>(x, y, n); } \
extern "C" __global__ void sigmoid_bwd##S(const T* gy, const T* y, T* gx, long long n) \
    { sigmoid_bwd<T>(gy, y, gx, n); } \
extern "C" __global__ void tanh_bwd##S(const T* gy, const T* y, T* gx, long long n) \
    { tanh_bwd<T>(gy, y, gx, n); } \
extern "C" __global__ void leaky_relu_fwd##S(const T* x, T* y, T slope, long long n) \
    { leaky_relu_fwd<T>(x, y, slope, n); } \
extern "C" __global__ void leaky_relu_bwd##S(const T* x, const T* gy, T* gx, T slope, long long n) \
    { leaky_relu_bwd<T>(x, gy, gx, slope, n); } \
extern "C" __global__ void silu_fwd##S(const T* x, T* y, long long n) { silu_fwd<T>(x, y, n); } \
extern "C" __global__ void silu_bwd##S(const T* x, const T* gy, T* gx, long long n) \
    { silu_bwd<T>(x, gy, gx, n); }

XG_ACT(float, _f32)
XG_ACT(double, _f64)
"""

_XENT = r"""
// ---- softmax cross-entropy with integer labels ---------------------------------------------
// x: (rows, cols) logits; labels: (rows,) int64, ignore_index marks rows that count nothing.
// Forward, one block per row: m = max_c x, s = sum_c exp(x - m),
//   loss = (log s - (x[y] - m)) * valid   (y replaced by 0 on ignored rows, like the NumPy path; NaN for a
//                                          label outside [0, cols), which the callers rule out beforehand)
//   lse  = m + log s                      (double, kept for the backward)
template <typename T>
__device__ void xent_fwd(const T* x, const long long* labels, T* loss, double* lse,
                         long long rows, long long cols, long long ignore_index) {
    extern __shared__ double xg_sh[];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * cols;
        double m = __longlong_as_double((long long)0xfff0000000000000ULL);  // -inf
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) m = xg_max(m, (double)xr[c]);
        m = xg_block_reduce(m, xg_sh, true);
        double s = 0.0;
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) s += exp((double)xr[c] - m);
        s = xg_block_reduce(s, xg_sh, false);
        if (threadIdx.x == 0) {
            long long y = labels[r];
            bool valid = y != ignore_index;
            bool in_range = y >= 0 && y < cols;                   // callers check; never read out of bounds
            double zy = (double)xr[valid && in_range ? y : 0] - m;
            double nan = __longlong_as_double((long long)0x7ff8000000000000ULL);
            loss[r] = (T)(valid && !in_range ? nan : (log(s) - zy) * (valid ? 1.0 : 0.0));
            lse[r] = m + log(s);
        }
    }
}

// Backward, elementwise over rows * cols: gx = (softmax(x) - onehot(y)) * gy * valid
template <typename T>
__device__ void xent_bwd(const T* x, const long long* labels, const double* lse, const T* gy, T* gx,
                         long long rows, long long cols, long long ignore_index) {
    XG_GRID_STRIDE(i, rows * cols) {
        long long r = i / cols, c = i - r * cols;
        long long y = labels[r];
        bool valid = y != ignore_index;
        T gv = gy[r] * (valid ? T(1) : T(0));
        T p = (T)exp((double)x[i] - lse[r]);
        gx[i] = p * gv - ((valid && c == y) ? gv : T(0));
    }
}

#define XG_XENT(T, S) \
extern "C" __global__ void xent_fwd##S(const T* x, const long long* labels, T* loss, double* lse, \
        long long rows, long long cols, long long ignore_index) \
    { xent_fwd<T>(x, labels, loss, lse, rows, cols, ignore_index); } \
extern "C" __global__ void xent_bwd##S(const T* x, const long long* labels, const double* lse, const T* gy, \
        T* gx, long long rows, long long cols, long long ignore_index) \
    { xent_bwd<T>(x, labels, lse, gy, gx, rows, cols, ignore_index); }

XG_XENT(float, _f32)
XG_XENT(double, _f64)
"""

_BATCHNORM = r"""
// ---- batch normalisation over axis 1 of a contiguous (n, c, s) array ------------------------
// element (i, ch, j) is at (i * c + ch) * s + j; a channel has m = n * s elements.

// Statistics, one block per channel, two passes in double: mean, biased var, rstd = 1/sqrt(var + eps).
template <typename T>
__device__ void bn_stats(const T* x, T* mean, T* var, T* rstd, long long n, long long c, long long s, double eps) {
    extern __shared__ double xg_sh[];
    long long m = n * s;
    for (long long ch = blockIdx.x; ch < c; ch += gridDim.x) {
        double acc = 0.0;
        for (long long k = threadIdx.x; k < m; k += blockDim.x) {
            long long i = k / s, j = k - i * s;
            acc += (double)x[(i * c + ch) * s + j];
        }
        double mu = xg_block_reduce(acc, xg_sh, false) / (double)m;
        acc = 0.0;
        for (long long k = threadIdx.x; k < m; k += blockDim.x) {
            long long i = k / s, j = k - i * s;
            double d = (double)x[(i * c + ch) * s + j] - mu;
            acc += d * d;
        }
        double v = xg_block_reduce(acc, xg_sh, false) / (double)m;
        if (threadIdx.x == 0) {
            mean[ch] = (T)mu;
            var[ch] = (T)v;
            rstd[ch] = (T)(1.0 / sqrt(v + eps));
        }
    }
}

// xhat = (x - mean) * rstd;  y = xhat * w + b when affine, else y = xhat (w and b are not read then)
template <typename T>
__device__ void bn_apply(const T* x, const T* mean, const T* rstd, const T* w, const T* b, T* xhat, T* y,
                         long long total, long long c, long long s, int affine) {
    XG_GRID_STRIDE(i, total) {
        long long ch = (i / s) % c;
        T xh = (x[i] - mean[ch]) * rstd[ch];
        xhat[i] = xh;
        y[i] = affine ? xh * w[ch] + b[ch] : xh;
    }
}

// Per-channel sums for the backward, one block per channel: sum_g = sum g, sum_gx = sum g * xhat.
template <typename T>
__device__ void bn_bwd_reduce(const T* g, const T* xhat, T* sum_g, T* sum_gx, long long n, long long c,
                              long long s) {
    extern __shared__ double xg_sh[];
    long long m = n * s;
    for (long long ch = blockIdx.x; ch < c; ch += gridDim.x) {
        double a = 0.0, b = 0.0;
        for (long long k = threadIdx.x; k < m; k += blockDim.x) {
            long long i = k / s, j = k - i * s;
            long long idx = (i * c + ch) * s + j;
            a += (double)g[idx];
            b += (double)g[idx] * (double)xhat[idx];
        }
        a = xg_block_reduce(a, xg_sh, false);
        b = xg_block_reduce(b, xg_sh, false);
        if (threadIdx.x == 0) {
            sum_g[ch] = (T)a;
            sum_gx[ch] = (T)b;
        }
    }
}

// gx = w * rstd * (g - sum_g / m - xhat * sum_gx / m)   (w = 1 when not affine; inv_m = 1 / m)
template <typename T>
__device__ void bn_bwd_apply(const T* g, const T* xhat, const T* rstd, const T* w, const T* sum_g,
                             const T* sum_gx, T* gx, long long total, long long c, long long s, T inv_m,
                             int affine) {
    XG_GRID_STRIDE(i, total) {
        long long ch = (i / s) % c;
        T scale = affine ? w[ch] * rstd[ch] : rstd[ch];
        gx[i] = scale * (g[i] - sum_g[ch] * inv_m - xhat[i] * (sum_gx[ch] * inv_m));
    }
}

#define XG_BN(T, S) \
extern "C" __global__ void bn_stats##S(const T* x, T* mean, T* var, T* rstd, long long n, long long c, \
        long long s, double eps) { bn_stats<T>(x, mean, var, rstd, n, c, s, eps); } \
extern "C" __global__ void bn_apply##S(const T* x, const T* mean, const T* rstd, const T* w, const T* b, \
        T* xhat, T* y, long long total, long long c, long long s, int affine) \
    { bn_apply<T>(x, mean, rstd, w, b, xhat, y, total, c, s, affine); } \
extern "C" __global__ void bn_bwd_reduce##S(const T* g, const T* xhat, T* sum_g, T* sum_gx, long long n, \
        long long c, long long s) { bn_bwd_reduce<T>(g, xhat, sum_g, sum_gx, n, c, s); } \
extern "C" __global__ void bn_bwd_apply##S(const T* g, const T* xhat, const T* rstd, const T* w, \
        const T* sum_g, const T* sum_gx, T* gx, long long total, long long c, long long s, T inv_m, int affine) \
    { bn_bwd_apply<T>(g, xhat, rstd, w, sum_g, sum_gx, gx, total, c, s, inv_m, affine); }

XG_BN(float, _f32)
XG_BN(double, _f64)
"""

_OPTIM = r"""
// ---- optimizer updates: one launch for all parameters of a group, in place ---------------------
// Each line repeats one NumPy operation of the reference (backends/fused.py) in the same order with the same
// scalars (rounded to T by the caller), so the results agree with NumPy's.
//
// table (int64, on the device): k + 1 offsets (offsets[0] = 0, offsets[k] = total, strictly increasing: no
// empty tensor), then `width` entries per tensor: pointers to its arrays and, for SGD, a flag.
// Thread i updates element i - offsets[j] of tensor j, offsets[j] <= i < offsets[j + 1].
__device__ __forceinline__ int xg_tensor_of(const long long* offsets, int k, long long i) {
    int lo = 0, hi = k - 1;                 // largest j with offsets[j] <= i
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (offsets[mid] <= i) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

// Adam / AdamW (decoupled), optional AMSGrad. Entries per tensor: p, g, m, v, vmax (vmax read only when
// amsgrad). coef per tensor: step_size = lr / (1 - b1^t), bc2_sqrt = sqrt(1 - b2^t) (t: the tensor's step);
// decay = 1 - lr * wd (AdamW).
template <typename T>
__device__ void adam_multi(const long long* table, const T* coef, int k, long long total, T b1, T one_minus_b1,
                           T b2, T one_minus_b2, T wd, T decay, T eps, int decoupled, int has_wd, int amsgrad) {
    XG_GRID_STRIDE(i, total) {
        int j = xg_tensor_of(table, k, i);
        long long e = i - table[j];
        const long long* ent = table + (k + 1) + 5 * (long long)j;
        T* p = (T*)ent[0];
        const T* g = (const T*)ent[1];
        T* m = (T*)ent[2];
        T* v = (T*)ent[3];
        T* vmax = (T*)ent[4];
        T step_size = coef[2 * j], bc2_sqrt = coef[2 * j + 1];
        T pi = p[e];
        T gi = g[e];
        if (has_wd) {
            if (decoupled) pi = pi * decay;
            else gi = pi * wd + gi;
        }
        T mi = m[e] * b1 + gi * one_minus_b1;
        T vi = v[e] * b2 + (gi * gi) * one_minus_b2;
        m[e] = mi;
        v[e] = vi;
        T den;
        if (amsgrad) {
            T vm = xg_max(vmax[e], vi);
            vmax[e] = vm;
            den = xg_sqrt(vm);
        } else {
            den = xg_sqrt(vi);
        }
        den = den / bc2_sqrt + eps;
        p[e] = pi - (mi / den) * step_size;
    }
}

// SGD with optional weight decay and momentum (dampening, Nesterov). Entries per tensor: p, g, buf, first
// (first != 0: the buffer starts as the decayed gradient). buf is read and written only when has_momentum.
template <typename T>
__device__ void sgd_multi(const long long* table, int k, long long total, T lr, T wd, T momentum,
                          T one_minus_damp, int has_wd, int has_momentum, int has_damp, int nesterov) {
    XG_GRID_STRIDE(i, total) {
        int j = xg_tensor_of(table, k, i);
        long long e = i - table[j];
        const long long* ent = table + (k + 1) + 4 * (long long)j;
        T* p = (T*)ent[0];
        const T* g = (const T*)ent[1];
        T* buf = (T*)ent[2];
        bool first = ent[3] != 0;
        T pi = p[e];
        T d = g[e];
        if (has_wd) d = pi * wd + d;
        if (has_momentum) {
            T b;
            if (first) b = d;
            else if (has_damp) b = buf[e] * momentum + d * one_minus_damp;
            else b = buf[e] * momentum + d;
            buf[e] = b;
            d = nesterov ? b * momentum + d : b;
        }
        p[e] = pi - d * lr;
    }
}

#define XG_OPT(T, S) \
extern "C" __global__ void adam_multi##S(const long long* table, const T* coef, int k, long long total, T b1, \
        T one_minus_b1, T b2, T one_minus_b2, T wd, T decay, T eps, int decoupled, int has_wd, int amsgrad) \
    { adam_multi<T>(table, coef, k, total, b1, one_minus_b1, b2, one_minus_b2, wd, decay, eps, decoupled, has_wd, \
                    amsgrad); } \
extern "C" __global__ void sgd_multi##S(const long long* table, int k, long long total, T lr, T wd, T momentum, \
        T one_minus_damp, int has_wd, int has_momentum, int has_damp, int nesterov) \
    { sgd_multi<T>(table, k, total, lr, wd, momentum, one_minus_damp, has_wd, has_momentum, has_damp, nesterov); }

XG_OPT(float, _f32)
XG_OPT(double, _f64)
"""

_SOURCES = {
    "activations": _ACTIVATIONS,
    "softmax_xent": _XENT,
    "batch_norm": _BATCHNORM,
    "optim": _OPTIM,
}

# kernel base names of each source (the compiled names carry a dtype suffix from SUFFIX)
KERNELS = {
    "activations": ("sigmoid_fwd", "sigmoid_bwd", "tanh_bwd", "leaky_relu_fwd", "leaky_relu_bwd", "silu_fwd",
                    "silu_bwd"),
    "softmax_xent": ("xent_fwd", "xent_bwd"),
    "batch_norm": ("bn_stats", "bn_apply", "bn_bwd_reduce", "bn_bwd_apply"),
    "optim": ("adam_multi", "sgd_multi"),
}


def kernel_sources() -> dict[str, str]:
    """Every kernel source by name, each a complete CUDA C++ translation unit (prelude included)."""
    return {name: _PRELUDE + body for name, body in _SOURCES.items()}
