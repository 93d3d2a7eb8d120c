"""Adam and AdamW (decoupled weight decay), with the AMSGrad variant."""
from __future__ import annotations

import math

import autograd as ag

from .optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam, PyTorch's algorithm.

    ``g = grad + weight_decay * p``; ``m = b1 * m + (1 - b1) * g``; ``v = b2 * v + (1 - b2) * g**2``;
    with ``c1 = 1 - b1**t`` and ``c2 = 1 - b2**t``: ``p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps)``
    (AMSGrad uses the running maximum of ``v``).

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        betas: decay rates (b1, b2) of the first and second moment averages.
        eps: added to the denominator.
        weight_decay: L2 penalty coefficient (added to the gradient).
        amsgrad: use the maximum of past second moments.
    """

    _state_keys = ("step", "exp_avg", "exp_avg_sq")
    _n_scratch = 2
    _decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas, eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))

    def _check_group(self, group: dict) -> None:
        self._check(group, "lr", label="learning rate")
        self._check(group, "eps", label="epsilon")
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Invalid betas: {betas!r} (a pair (beta1, beta2) is expected)")
        for i, b in enumerate(betas):
            self._check({"b": b}, "b", 0.0, 1.0, hi_open=True, label=f"beta parameter at index {i}")
        self._check(group, "weight_decay")

    def _init_state(self, p, hp):
        state = {"step": 0, "exp_avg": ag.zeros_like(p), "exp_avg_sq": ag.zeros_like(p)}
        if hp["amsgrad"]:
            state["max_exp_avg_sq"] = ag.zeros_like(p)
        return state

    def _update(self, param, grad, state, hp, tmp, xp) -> None:
        state["step"] += 1
        step = state["step"]
        lr, wd = hp["lr"], hp["weight_decay"]
        b1, b2 = hp["betas"]
        if self._decoupled:
            if wd != 0:
                xp.multiply(param, 1.0 - lr * wd, out=param)
            g = grad
        else:
            g = self._decayed(param, grad, wd, tmp[0], xp)
        m, v = state["exp_avg"].data, state["exp_avg_sq"].data
        t = tmp[-1]
        xp.multiply(m, b1, out=m)
        xp.multiply(g, 1.0 - b1, out=t)
        xp.add(m, t, out=m)
        xp.multiply(v, b2, out=v)
        xp.multiply(g, g, out=t)
        xp.multiply(t, 1.0 - b2, out=t)
        xp.add(v, t, out=v)
        bc1 = 1.0 - b1 ** step
        bc2_sqrt = math.sqrt(1.0 - b2 ** step)
        if hp["amsgrad"]:
            if "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = ag.zeros_like(state["exp_avg_sq"])
            vmax = state["max_exp_avg_sq"].data
            xp.maximum(vmax, v, out=vmax)
            xp.sqrt(vmax, out=t)
        else:
            xp.sqrt(v, out=t)
        xp.divide(t, bc2_sqrt, out=t)
        xp.add(t, hp["eps"], out=t)
        xp.divide(m, t, out=t)
        xp.multiply(t, lr / bc1, out=t)
        xp.subtract(param, t, out=param)


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay, PyTorch's algorithm.

    ``p *= 1 - lr * weight_decay`` first, then the Adam step on the plain gradient.

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        betas: decay rates (b1, b2) of the first and second moment averages.
        eps: added to the denominator.
        weight_decay: decoupled weight-decay coefficient.
        amsgrad: use the maximum of past second moments.
    """

    _n_scratch = 1
    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
