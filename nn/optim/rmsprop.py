"""RMSprop, optionally centred and with momentum."""
from __future__ import annotations

import autograd as ag

from .optimizer import Optimizer

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop, PyTorch's algorithm.

    ``g = grad + weight_decay * p``; ``v = alpha * v + (1 - alpha) * g**2``; centred:
    ``m = alpha * m + (1 - alpha) * g`` and ``d = sqrt(v - m**2) + eps``, else ``d = sqrt(v) + eps``; with
    momentum ``b = momentum * b + g / d`` and ``p -= lr * b``, else ``p -= lr * g / d``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        alpha: smoothing constant of the squared-gradient average.
        eps: added to the denominator.
        weight_decay: L2 penalty coefficient.
        momentum: momentum factor.
        centered: normalise by an estimate of the gradient's variance instead of its second moment.
    """

    _state_keys = ("step", "square_avg")
    _n_scratch = 2

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _check_group(self, group: dict) -> None:
        self._check(group, "lr", label="learning rate")
        self._check(group, "eps", label="epsilon")
        self._check(group, "momentum")
        self._check(group, "weight_decay")
        self._check(group, "alpha")

    def _init_state(self, p, hp):
        state = {"step": 0, "square_avg": ag.zeros_like(p)}
        if hp["momentum"] > 0:
            state["momentum_buffer"] = ag.zeros_like(p)
        if hp["centered"]:
            state["grad_avg"] = ag.zeros_like(p)
        return state

    def _update(self, param, grad, state, hp, tmp, be) -> None:
        xp = be.xp
        state["step"] += 1
        g = self._decayed(param, grad, hp["weight_decay"], tmp[0], xp)
        alpha = hp["alpha"]
        v = state["square_avg"].array
        t = tmp[1]
        xp.multiply(v, alpha, out=v)
        xp.multiply(g, g, out=t)
        xp.multiply(t, 1.0 - alpha, out=t)
        xp.add(v, t, out=v)
        if hp["centered"]:
            if "grad_avg" not in state:
                state["grad_avg"] = ag.zeros_like(state["square_avg"])
            m = state["grad_avg"].array
            xp.multiply(m, alpha, out=m)
            xp.multiply(g, 1.0 - alpha, out=t)
            xp.add(m, t, out=m)
            xp.multiply(m, m, out=t)
            xp.subtract(v, t, out=t)
            xp.sqrt(t, out=t)
        else:
            xp.sqrt(v, out=t)
        xp.add(t, hp["eps"], out=t)
        xp.divide(g, t, out=t)                     # g / d
        if hp["momentum"] > 0:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = ag.zeros_like(state["square_avg"])
            b = state["momentum_buffer"].array
            xp.multiply(b, hp["momentum"], out=b)
            xp.add(b, t, out=b)
            xp.multiply(b, hp["lr"], out=t)
        else:
            xp.multiply(t, hp["lr"], out=t)
        xp.subtract(param, t, out=param)
