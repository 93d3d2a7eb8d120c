"""Adadelta: step sizes from running averages of squared gradients and squared updates."""
from __future__ import annotations

import autograd as ag

from .optimizer import Optimizer

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    r"""Adadelta, PyTorch's algorithm.

    ``g = grad + weight_decay * p``; ``v = rho * v + (1 - rho) * g**2``;
    ``delta = sqrt(u + eps) / sqrt(v + eps) * g``; ``u = rho * u + (1 - rho) * delta**2``; ``p -= lr * delta``.

    Args:
        params: parameters or parameter groups.
        lr: scale of the update.
        rho: smoothing constant of the running averages.
        eps: added inside the square roots.
        weight_decay: L2 penalty coefficient.
    """

    _state_keys = ("step", "square_avg", "acc_delta")
    _n_scratch = 3

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay))

    def _check_group(self, group: dict) -> None:
        self._check(group, "lr", label="learning rate")
        self._check(group, "rho", 0.0, 1.0)
        self._check(group, "eps", label="epsilon")
        self._check(group, "weight_decay")

    def _init_state(self, p, hp):
        return {"step": 0, "square_avg": ag.zeros_like(p), "acc_delta": ag.zeros_like(p)}

    def _update(self, param, grad, state, hp, tmp, be) -> None:
        xp = be.xp
        state["step"] += 1
        g = self._decayed(param, grad, hp["weight_decay"], tmp[0], xp)
        rho, eps = hp["rho"], hp["eps"]
        v, u = state["square_avg"].array, state["acc_delta"].array
        t, delta = tmp[1], tmp[2]
        xp.multiply(v, rho, out=v)
        xp.multiply(g, g, out=t)
        xp.multiply(t, 1.0 - rho, out=t)
        xp.add(v, t, out=v)
        xp.add(v, eps, out=t)
        xp.sqrt(t, out=t)                          # std
        xp.add(u, eps, out=delta)
        xp.sqrt(delta, out=delta)
        xp.divide(delta, t, out=delta)
        xp.multiply(delta, g, out=delta)
        xp.multiply(u, rho, out=u)
        xp.multiply(delta, delta, out=t)
        xp.multiply(t, 1.0 - rho, out=t)
        xp.add(u, t, out=u)
        xp.multiply(delta, hp["lr"], out=delta)
        xp.subtract(param, delta, out=param)
