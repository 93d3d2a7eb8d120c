"""Adam and AdamW (decoupled weight decay), with the AMSGrad variant."""
from __future__ import annotations

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

    def _update_group(self, hp, batches) -> None:
        amsgrad = hp["amsgrad"]
        states = self.state
        for key, batch in batches.items():
            be, scratch = key[0], self._scratch[key]
            params, grads, ms, vs, vmaxs, tmps, steps = [], [], [], [], [], [], []
            for p, g in batch:
                state = states[p]
                state["step"] = step = state["step"] + 1
                vmax = None
                if amsgrad:
                    if "max_exp_avg_sq" not in state:
                        state["max_exp_avg_sq"] = ag.zeros_like(state["exp_avg_sq"])
                    vmax = state["max_exp_avg_sq"].array
                params.append(p.array)
                grads.append(g.array)
                ms.append(state["exp_avg"].array)
                vs.append(state["exp_avg_sq"].array)
                vmaxs.append(vmax)
                tmps.append(self._tmp(p, scratch))
                steps.append(step)
            with be.activate():
                be.fused.adam_update_group(params, grads, ms, vs, vmaxs, tmps, steps=steps, lr=hp["lr"],
                                           betas=hp["betas"], eps=hp["eps"], weight_decay=hp["weight_decay"],
                                           decoupled=self._decoupled)


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
