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

    def _update_group(self, hp, batches) -> None:
        momentum = hp["momentum"] != 0
        for key, batch in batches.items():
            be, scratch = key[0], self._scratch[key]
            params, grads, bufs, tmps, firsts = [], [], [], [], []
            for p, g in batch:
                buf, first = None, False
                if momentum:
                    state = self.state[p]
                    b = state.get("momentum_buffer")
                    if b is None:     # the buffer starts as the (decayed) gradient: filled by the update
                        with be.activate():
                            state["momentum_buffer"] = b = ag.Tensor(be.xp.empty_like(p.array))
                        first = True
                    buf = b.array
                params.append(p.array)
                grads.append(g.array)
                bufs.append(buf)
                tmps.append(self._tmp(p, scratch))
                firsts.append(first)
            with be.activate():
                be.fused.sgd_update_group(params, grads, bufs, tmps, firsts=firsts, lr=hp["lr"],
                                          momentum=hp["momentum"], dampening=hp["dampening"],
                                          weight_decay=hp["weight_decay"], nesterov=hp["nesterov"])
