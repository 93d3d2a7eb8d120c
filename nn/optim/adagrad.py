"""Adagrad: per-coordinate learning rates from the running sum of squared gradients."""
from __future__ import annotations

import autograd as ag

from .optimizer import Optimizer

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad, PyTorch's algorithm.

    ``g = grad + weight_decay * p``; ``clr = lr / (1 + (t - 1) * lr_decay)``; ``sum += g**2``;
    ``p -= clr * g / (sqrt(sum) + eps)``, with ``sum`` starting at ``initial_accumulator_value``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        lr_decay: learning-rate decay per step.
        weight_decay: L2 penalty coefficient.
        initial_accumulator_value: starting value of the squared-gradient sum.
        eps: added to the denominator.
    """

    _state_keys = ("step", "sum")
    _n_scratch = 2

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10) -> None:
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))

    def _check_group(self, group: dict) -> None:
        self._check(group, "lr", label="learning rate")
        self._check(group, "lr_decay")
        self._check(group, "weight_decay")
        self._check(group, "initial_accumulator_value", label="initial_accumulator_value")
        self._check(group, "eps", label="epsilon")

    def _init_state(self, p, hp):
        return {"step": 0, "sum": ag.full_like(p, hp["initial_accumulator_value"])}

    def _update(self, param, grad, state, hp, tmp, be) -> None:
        xp = be.xp
        state["step"] += 1
        g = self._decayed(param, grad, hp["weight_decay"], tmp[0], xp)
        clr = hp["lr"] / (1.0 + (state["step"] - 1) * hp["lr_decay"])
        s = state["sum"].array
        t = tmp[1]
        xp.multiply(g, g, out=t)
        xp.add(s, t, out=s)
        xp.sqrt(s, out=t)
        xp.add(t, hp["eps"], out=t)
        xp.divide(g, t, out=t)
        xp.multiply(t, clr, out=t)
        xp.subtract(param, t, out=param)
