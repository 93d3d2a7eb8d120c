"""Optimizers by name (``"adam"``, ``"momentum"``, ...) and a default learning rate for each."""
from __future__ import annotations

from typing import Iterable

__all__ = ["OPTIMIZERS", "make_optimizer"]


# name -> (constructor name in nn.optim, fixed keyword arguments, default learning rate)
OPTIMIZERS: dict[str, tuple[str, dict, float]] = {
    "sgd": ("SGD", {}, 0.1),
    "momentum": ("SGD", {"momentum": 0.9}, 0.01),
    "nesterov": ("SGD", {"momentum": 0.9, "nesterov": True}, 0.01),
    "adagrad": ("Adagrad", {}, 0.01),
    "rmsprop": ("RMSprop", {}, 1e-3),
    "adadelta": ("Adadelta", {}, 1.0),
    "adam": ("Adam", {}, 1e-3),
    "adamw": ("AdamW", {}, 1e-3),
}


def make_optimizer(name: str, params: Iterable, lr: float | None = None, weight_decay: float | None = None,
                   **kwargs):
    """An optimizer by name (see :data:`OPTIMIZERS`): ``momentum``/``nesterov`` are SGD with momentum 0.9.

    ``lr=None`` takes the name's default (Adam 1e-3, SGD 0.1, Adadelta 1.0, ...); ``weight_decay=None`` keeps the
    optimizer's default (0, or 1e-2 for AdamW).
    """
    from .. import optim
    key = name.lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    cls_name, fixed, default_lr = OPTIMIZERS[key]
    kw = dict(fixed, lr=default_lr if lr is None else float(lr), **kwargs)
    if weight_decay is not None:
        kw["weight_decay"] = float(weight_decay)
    return getattr(optim, cls_name)(params, **kw)
