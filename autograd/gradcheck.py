"""Gradient checking against central finite differences.

For a random upstream gradient u, backward gives the vector-Jacobian product
uᵀJ. Numerically, each entry of uᵀJ is d/dxⱼ (u·f(x)) ≈ (u·f(x+εeⱼ) − u·f(x−εeⱼ)) / 2ε.
Small inputs are checked element by element (so a failure names the worst
element); large ones along random directions v, comparing uᵀJv both ways.
"""
from __future__ import annotations

import backends

from .engine import grad as _grad
from .errors import GradcheckError
from .tensor import Tensor, _make

_np = backends.host


def _outputs(out) -> list:
    if isinstance(out, Tensor):
        return [out]
    return [o for o in out if isinstance(o, Tensor)]


def _host(t: Tensor):
    return _np.asarray(t._backend.to_host(t.array), dtype=_np.float64)


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, full_limit: int = 200, n_directions: int = 4,
              seed: int = 0) -> bool:
    """Check the gradients of ``fn(*inputs)`` w.r.t. the inputs that require grad.

    Use float64 inputs: finite differences in float32 are too coarse.

    Args:
        fn: function of Tensors returning a Tensor or a sequence of Tensors.
        inputs: a Tensor or sequence of Tensors (and other constants, passed through).
        eps: finite-difference step.
        atol, rtol: an element passes when |analytic − numeric| ≤ atol + rtol·|numeric|.
        raise_exception: raise :class:`GradcheckError` on failure (else return False).
        full_limit: inputs with at most this many elements are checked element by element.
        n_directions: random directions for larger inputs.
        seed: seeds the random upstream gradients and directions.

    Returns:
        True when every gradient matches.
    """
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    rng = _np.random.default_rng(seed)
    diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff:
        raise ValueError("gradcheck: no input requires grad")
    outs = _outputs(fn(*inputs))
    us = [rng.standard_normal(o.shape) for o in outs]
    live = [k for k, o in enumerate(outs) if o.requires_grad]
    if live:
        grads = _grad([outs[k] for k in live], [inputs[i] for i in diff],
                      grad_outputs=[Tensor(us[k], dtype=outs[k].dtype, device=outs[k].device) for k in live],
                      allow_unused=True)
    else:
        grads = [None] * len(diff)

    def objective(i, array) -> float:
        """u · f(x) with input i replaced by ``array``."""
        args = list(inputs)
        x = inputs[i]
        args[i] = _make(x._backend.asarray(array.astype(x.dtype)), x._backend, False)
        args[i].requires_grad = True        # fn may itself differentiate (gradgradcheck)
        total = 0.0
        for o, u in zip(_outputs(fn(*args)), us):
            total += float(_np.sum(_host(o) * u))
        return total

    for pos, i in enumerate(diff):
        x = inputs[i]
        g = grads[pos]
        if g is not None and (g.shape != x.shape or g.dtype != x.dtype):
            return _fail(raise_exception, f"gradcheck: gradient of input {i} has shape {g.shape} dtype {g.dtype}, "
                                          f"input has shape {x.shape} dtype {x.dtype}", i)
        analytic = _np.zeros(x.shape) if g is None else _host(g)
        x0 = _host(x)
        if x0.size <= full_limit:
            numeric = _np.zeros(x0.size)
            flat = x0.ravel()
            for j in range(x0.size):
                hi, lo = flat.copy(), flat.copy()
                hi[j] += eps
                lo[j] -= eps
                numeric[j] = (objective(i, hi.reshape(x0.shape)) - objective(i, lo.reshape(x0.shape))) / (2 * eps)
            numeric = numeric.reshape(x0.shape)
            err = _np.abs(analytic - numeric) - (atol + rtol * _np.abs(numeric))
            if err.size and (err.max() > 0 or not _np.all(_np.isfinite(analytic))):
                j = int(_np.nanargmax(_np.where(_np.isfinite(err), err, _np.inf)))
                el = _np.unravel_index(j, x0.shape)
                return _fail(raise_exception,
                             f"gradcheck: input {i}, element {tuple(int(e) for e in el)}: analytic "
                             f"{analytic[el]:.8g} vs numeric {numeric[el]:.8g} (worst of {x0.size})",
                             i, el, analytic[el], numeric[el])
        else:
            for _ in range(n_directions):
                v = rng.standard_normal(x0.shape)
                num = (objective(i, x0 + eps * v) - objective(i, x0 - eps * v)) / (2 * eps)
                ana = float(_np.sum(analytic * v))
                if not abs(ana - num) <= atol * _np.sqrt(x0.size) + rtol * abs(num):
                    return _fail(raise_exception,
                                 f"gradcheck: input {i} (size {x0.size}), random direction: analytic "
                                 f"{ana:.8g} vs numeric {num:.8g}", i, None, ana, num)
    return True


def _fail(raise_exception, msg, i, element=None, analytic=None, numeric=None) -> bool:
    if raise_exception:
        raise GradcheckError(msg, i, element, analytic, numeric)
    return False


def gradgradcheck(fn, inputs, grad_outputs=None, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  raise_exception: bool = True, **kwargs) -> bool:
    """Check second derivatives: gradcheck of (inputs, u) ↦ uᵀ ∂fn/∂inputs, built with ``create_graph``."""
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    outs = [o for o in _outputs(fn(*inputs)) if o.requires_grad]
    rng = _np.random.default_rng(kwargs.get("seed", 0) + 1)
    if grad_outputs is None:
        grad_outputs = [Tensor(rng.standard_normal(o.shape), dtype=o.dtype, device=o.device, requires_grad=True)
                        for o in outs]
    n_in = len(inputs)

    def first_derivative(*args):
        xs, us = list(args[:n_in]), list(args[n_in:])
        ys = [o for o in _outputs(fn(*xs)) if o.requires_grad]
        gs = _grad(ys, [xs[i] for i in diff], grad_outputs=us, create_graph=True, allow_unused=True)
        return [g for g in gs if g is not None]

    return gradcheck(first_derivative, inputs + list(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception, **kwargs)
