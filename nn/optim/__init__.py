"""Optimizers (``SGD``, ``Adagrad``, ``RMSprop``, ``Adadelta``, ``Adam``, ``AdamW``), learning-rate schedules
(``nn.optim.lr_scheduler``) and gradient clipping.

    opt = nn.optim.Adam(model.parameters(), lr=1e-3)
    sched = nn.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    for x, y in loader:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        nn.optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    sched.step()
"""
from .optimizer import Optimizer
from .sgd import SGD
from .adagrad import Adagrad
from .rmsprop import RMSprop
from .adadelta import Adadelta
from .adam import Adam, AdamW
from . import lr_scheduler
from ..utils import clip_grad_norm_, clip_grad_value_

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW", "lr_scheduler",
           "clip_grad_norm_", "clip_grad_value_"]
