"""Learning-rate schedules: step, multi-step, exponential, cosine, linear (warm-up), constant, lambda, sequential.

Each scheduler sets ``group["lr"]`` of its optimizer's parameter groups from the closed form of its
schedule at ``last_epoch`` (the number of ``step()`` calls so far), starting from each group's
``initial_lr`` (recorded on the first scheduler built for the optimizer). Construction performs the first
step, so the learning rate is the schedule's value at 0 right away, as in PyTorch:

    opt = nn.optim.SGD(model.parameters(), lr=0.1)
    warmup = LinearLR(opt, start_factor=0.01, total_iters=5)
    decay = CosineAnnealingLR(opt, T_max=95)
    sched = SequentialLR(opt, [warmup, decay], milestones=[5])
    for epoch in range(100):
        train_one_epoch(...)
        sched.step()
"""
from __future__ import annotations

import math
from bisect import bisect_right
from numbers import Real
from typing import Callable, Sequence

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ConstantLR", "ExponentialLR",
           "CosineAnnealingLR", "LinearLR", "SequentialLR"]


def _real(name: str, value, cls: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{cls}: {name} must be a number, got {type(value).__name__}")
    return float(value)


def _positive_int(name: str, value, cls: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{cls}: {name} must be a positive integer, got {value!r}")
    return value


class LRScheduler:
    """Base class: subclasses give the closed form ``_lr(base_lr, t)`` of their schedule.

    Args:
        optimizer: the optimizer whose parameter groups' ``"lr"`` is set.
        last_epoch: index of the last step when resuming (``-1`` starts afresh); resuming needs
            ``initial_lr`` in every parameter group (restored by the optimizer's ``load_state_dict``).
    """

    def __init__(self, optimizer, last_epoch: int = -1) -> None:
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"{type(self).__name__}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when resuming "
                                   f"{type(self).__name__} with last_epoch={last_epoch}")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        self.step()

    def _lr(self, base_lr: float, t: int) -> float:
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        """The learning rates of the schedule at ``last_epoch`` (closed form)."""
        return [self._lr(base, self.last_epoch) for base in self.base_lrs]

    def step(self, epoch: int | None = None) -> None:
        """Advance one step (or jump to ``epoch``) and set the optimizer's learning rates."""
        self._step_count += 1
        self.last_epoch = self.last_epoch + 1 if epoch is None else int(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last ``step()``."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Everything but the optimizer (numbers and lists, so ``nn.save`` can store it)."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update({k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in state_dict.items()})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, last_lr={getattr(self, '_last_lr', None)})"


_LRScheduler = LRScheduler


class LambdaLR(LRScheduler):
    """``lr = base_lr * lr_lambda(t)``; ``lr_lambda`` is a function or one function per parameter group.

    The functions are not part of ``state_dict()``.
    """

    def __init__(self, optimizer, lr_lambda: Callable | Sequence[Callable], last_epoch: int = -1) -> None:
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"LambdaLR: expected {n} lr_lambdas (one per parameter group), got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * n
        if not all(callable(f) for f in self.lr_lambdas):
            raise TypeError("LambdaLR: lr_lambda must be callable (or a list of callables)")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * f(self.last_epoch) for base, f in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self) -> dict:
        d = super().state_dict()
        d.pop("lr_lambdas", None)
        return d


class StepLR(LRScheduler):
    """``lr = base_lr * gamma ** (t // step_size)``: decay by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self.step_size = _positive_int("step_size", step_size, "StepLR")
        self.gamma = _real("gamma", gamma, "StepLR")
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, t):
        return base_lr * self.gamma ** (t // self.step_size)


class MultiStepLR(LRScheduler):
    """``lr = base_lr * gamma ** (number of milestones <= t)``: decay by ``gamma`` at each milestone."""

    def __init__(self, optimizer, milestones: Sequence[int], gamma: float = 0.1, last_epoch: int = -1) -> None:
        ms = list(milestones)
        if not all(isinstance(m, int) and not isinstance(m, bool) for m in ms):
            raise TypeError(f"MultiStepLR: milestones must be integers, got {milestones!r}")
        self.milestones = sorted(ms)
        self.gamma = _real("gamma", gamma, "MultiStepLR")
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, t):
        return base_lr * self.gamma ** bisect_right(self.milestones, t)


class ConstantLR(LRScheduler):
    """``lr = base_lr * factor`` for ``t < total_iters``, then ``base_lr``."""

    def __init__(self, optimizer, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1) -> None:
        self.factor = _real("factor", factor, "ConstantLR")
        if not 0 <= self.factor <= 1:
            raise ValueError(f"ConstantLR: factor must be in [0, 1], got {factor}")
        if isinstance(total_iters, bool) or not isinstance(total_iters, int) or total_iters < 0:
            raise ValueError(f"ConstantLR: total_iters must be a non-negative integer, got {total_iters!r}")
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, t):
        return base_lr * (self.factor if t < self.total_iters else 1.0)


class ExponentialLR(LRScheduler):
    """``lr = base_lr * gamma ** t``."""

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = _real("gamma", gamma, "ExponentialLR")
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, t):
        return base_lr * self.gamma ** t


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``.

    Goes from ``base_lr`` at 0 to ``eta_min`` at ``T_max`` (and back up after it, as in PyTorch).
    """

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self.T_max = _positive_int("T_max", T_max, "CosineAnnealingLR")
        self.eta_min = _real("eta_min", eta_min, "CosineAnnealingLR")
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, t):
        return self.eta_min + (base_lr - self.eta_min) * (1.0 + math.cos(math.pi * t / self.T_max)) / 2.0


class LinearLR(LRScheduler):
    """``lr = base_lr * (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters)``.

    A linear warm-up with the defaults' ``start_factor < end_factor = 1``.
    """

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5,
                 last_epoch: int = -1) -> None:
        self.start_factor = _real("start_factor", start_factor, "LinearLR")
        self.end_factor = _real("end_factor", end_factor, "LinearLR")
        if not 0 < self.start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= self.end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor}")
        self.total_iters = _positive_int("total_iters", total_iters, "LinearLR")
        super().__init__(optimizer, last_epoch)

    def _lr(self, base_lr, t):
        frac = min(max(t, 0), self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class SequentialLR(LRScheduler):
    """Run ``schedulers[i]`` between ``milestones[i-1]`` and ``milestones[i]``; each restarts from its own
    step 0 at its milestone (e.g. a linear warm-up then a cosine decay).

    Args:
        optimizer: the optimizer all ``schedulers`` were built for.
        schedulers: the schedules in order.
        milestones: increasing step indices where the next schedule takes over (one fewer than schedulers).
    """

    def __init__(self, optimizer, schedulers: Sequence[LRScheduler], milestones: Sequence[int],
                 last_epoch: int = -1) -> None:
        schedulers = list(schedulers)
        milestones = list(milestones)
        if not schedulers:
            raise ValueError("SequentialLR expects at least one scheduler")
        for i, s in enumerate(schedulers):
            if not isinstance(s, LRScheduler) or isinstance(s, SequentialLR):
                raise TypeError(f"SequentialLR: schedulers[{i}] is a {type(s).__name__}, not a learning-rate "
                                "scheduler")
            if s.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: schedulers[{i}] belongs to a different optimizer than the one "
                                 "given")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: expected {len(schedulers) - 1} milestone(s) for {len(schedulers)} "
                             f"schedulers, got {len(milestones)}")
        if any(not isinstance(m, int) or isinstance(m, bool) for m in milestones) or \
                any(b <= a for a, b in zip(milestones, milestones[1:])) or (milestones and milestones[0] < 0):
            raise ValueError(f"SequentialLR: milestones must be increasing non-negative integers, got {milestones}")
        self.optimizer = optimizer
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        # undo the first step every scheduler took when it was built; only the first one starts now
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for s in schedulers:
            s.last_epoch -= 1
        schedulers[0]._initial_step()
        self._last_lr = schedulers[0].get_last_lr()

    def step(self, epoch: int | None = None) -> None:
        if epoch is not None:
            raise TypeError("SequentialLR.step() takes no epoch argument")
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        sched = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            sched.step(0)
        else:
            sched.step()
        self._last_lr = sched.get_last_lr()

    def get_lr(self) -> list[float]:
        return self.get_last_lr()

    def state_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        d["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return d

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        subs = state.pop("_schedulers")
        if len(subs) != len(self._schedulers):
            raise ValueError(f"SequentialLR.load_state_dict: {len(subs)} saved schedulers, this one has "
                             f"{len(self._schedulers)}")
        super().load_state_dict(state)
        for s, sd in zip(self._schedulers, subs):
            s.load_state_dict(sd)
