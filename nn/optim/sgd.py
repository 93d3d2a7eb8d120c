"""Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and weight decay."""
from __future__ import annotations

import autograd as ag

from .optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, PyTorch's algorithm.

    With ``g = grad + weight_decay * p``; when ``momentum != 0`` the buffer is ``b = g`` on the first step and
    ``b = momentum * b + (1 - dampening) * g`` afterwards, and the step uses ``g + momentum * b`` (Nesterov) or
    ``b``; finally ``p -= lr * g``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate.
        momentum: momentum factor.
        dampening: dampening of the momentum.
        weight_decay: L2 penalty coefficient.
        nesterov: Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
    """

    _n_scratch = 2

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check_group(self, group: dict) -> None:
        self._check(group, "lr", label="learning rate")
        self._check(group, "momentum")
        self._check(group, "dampening")
        self._check(group, "weight_decay")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def _update(self, param, grad, state, hp, tmp, xp) -> None:
        g = self._decayed(param, grad, hp["weight_decay"], tmp[0], xp)
        mu = hp["momentum"]
        if mu != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                state["momentum_buffer"] = buf = ag.Tensor(g.copy())
                b = buf.data
            else:
                b = buf.data
                xp.multiply(b, mu, out=b)
                if hp["dampening"] != 0:
                    xp.multiply(g, 1.0 - hp["dampening"], out=tmp[1])
                    xp.add(b, tmp[1], out=b)
                else:
                    xp.add(b, g, out=b)
            if hp["nesterov"]:
                xp.multiply(b, mu, out=tmp[1])
                xp.add(tmp[1], g, out=tmp[1])
                g = tmp[1]
            else:
                g = b
        xp.multiply(g, hp["lr"], out=tmp[1])
        xp.subtract(param, tmp[1], out=param)
