"""Learning-rate schedules: step, multi-step, exponential, cosine, linear (warm-up), constant, lambda, sequential,
one-cycle, and reduce-on-plateau.

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

``ReduceLROnPlateau`` is the exception: it has no closed form, lowers the rates when a monitored metric stops
improving and is stepped with that metric (``sched.step(val_loss)``). ``OneCycleLR`` is meant to be stepped after
every batch, not every epoch.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from numbers import Real
from typing import Callable, Sequence

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ConstantLR", "ExponentialLR",
           "CosineAnnealingLR", "LinearLR", "SequentialLR", "OneCycleLR", "ReduceLROnPlateau"]


def _real(name: str, value, cls: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{cls}: {name} must be a number, got {type(value).__name__}")
    return float(value)


def _positive_int(name: str, value, cls: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{cls}: {name} must be a positive integer, got {value!r}")
    return value


def _non_negative_int(name: str, value, cls: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{cls}: {name} must be a non-negative integer, got {value!r}")
    return value


def _per_group(name: str, value, optimizer, cls: str) -> list[float]:
    """``value`` (a number, or a list or tuple of one number per parameter group) as one float per group."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{cls}: expected {n} values for {name} (one per parameter group), got {len(value)}")
        return [_real(name, v, cls) for v in value]
    return [_real(name, value, cls)] * n


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

    ``state_dict()`` holds the counters and base rates but not the functions (``nn.save`` stores no code):
    build the scheduler with the same ``lr_lambda`` before ``load_state_dict``, which keeps this scheduler's
    functions. PyTorch likewise drops plain functions and lambdas, but saves the attributes of callable objects;
    here those are not saved either.
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

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "lr_lambdas"})


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
            if isinstance(s, ReduceLROnPlateau):
                raise ValueError(f"SequentialLR: schedulers[{i}] is a ReduceLROnPlateau, which is stepped with a "
                                 "metric and has no schedule to sequence")
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


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin): the rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start`` of ``total_steps``, then anneals to ``max_lr / div_factor / final_div_factor``; the momentum
    moves the opposite way between ``max_momentum`` and ``base_momentum``. Step it after every batch.

    With ``three_phase`` the rate goes back down to ``max_lr / div_factor`` over a second ``pct_start`` (momentum
    back up) before the final annealing. The first phase ends at step ``pct_start * total_steps - 1`` (the
    second of three at ``2 * pct_start * total_steps - 2``) and the last at ``total_steps - 1``; within a phase
    the value moves from its start to its end by a half cosine (``anneal_strategy="cos"``) or linearly.

    Args:
        optimizer: the optimizer; with ``cycle_momentum`` its groups need a ``"momentum"`` (SGD, RMSprop) or
            ``"betas"`` (Adam, AdamW: ``betas[0]`` is cycled).
        max_lr: the peak rate, or one per parameter group.
        total_steps: the number of steps of the cycle; or give ``epochs`` and ``steps_per_epoch``.
        pct_start: fraction of the cycle spent raising the rate, in [0, 1].
        anneal_strategy: ``"cos"`` or ``"linear"``.
        cycle_momentum: cycle the momentum inversely to the rate.
        base_momentum, max_momentum: the momentum's bounds (numbers or one per group).
        div_factor: the starting rate is ``max_lr / div_factor``.
        final_div_factor: the final rate is ``max_lr / div_factor / final_div_factor``.
        three_phase: add the symmetric descent to the starting rate before the final annealing.
        last_epoch: the last step's index when resuming (the groups then need ``initial_lr``, ``max_lr``,
            ``min_lr`` and the momentum bounds, restored by the optimizer's ``load_state_dict``).

    Each group holds its ``initial_lr``, ``max_lr``, ``min_lr`` (and ``max_momentum``, ``base_momentum``), as in
    PyTorch, so the optimizer's state dict carries them. As in PyTorch, ``step()`` may be called ``total_steps``
    times after construction (the last call sets a rate past the end of the cycle, for the loop's final
    ``step()``); one more raises ValueError. Unlike PyTorch, a phase of zero length (e.g. ``pct_start *
    total_steps == 1``) yields its end value instead of raising ZeroDivisionError, and an integer ``pct_start``
    is accepted.
    """

    def __init__(self, optimizer, max_lr: float | Sequence[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float | Sequence[float] = 0.85, max_momentum: float | Sequence[float] = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1) -> None:
        cls = "OneCycleLR"
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"{cls}: {type(optimizer).__name__} is not an Optimizer")
        if total_steps is not None:
            self.total_steps = _positive_int("total_steps", total_steps, cls)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (_positive_int("epochs", epochs, cls)
                                * _positive_int("steps_per_epoch", steps_per_epoch, cls))
        else:
            raise ValueError(f"{cls}: give either total_steps or both epochs and steps_per_epoch")
        self.pct_start = _real("pct_start", pct_start, cls)
        if not 0.0 <= self.pct_start <= 1.0:
            raise ValueError(f"{cls}: pct_start must be in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{cls}: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.three_phase = bool(three_phase)
        for name, v in (("div_factor", div_factor), ("final_div_factor", final_div_factor)):
            if not _real(name, v, cls) > 0:
                raise ValueError(f"{cls}: {name} must be positive, got {v!r}")
        max_lrs = _per_group("max_lr", max_lr, optimizer, cls)
        self.cycle_momentum = bool(cycle_momentum)
        self.use_beta1 = "betas" in getattr(optimizer, "defaults", {})
        if self.cycle_momentum:
            if not self.use_beta1 and "momentum" not in getattr(optimizer, "defaults", {}):
                raise ValueError(f"{cls}: {type(optimizer).__name__} has no momentum or betas to cycle; pass "
                                 "cycle_momentum=False")
            max_moms = _per_group("max_momentum", max_momentum, optimizer, cls)
            base_moms = _per_group("base_momentum", base_momentum, optimizer, cls)
        if last_epoch == -1:
            for i, group in enumerate(optimizer.param_groups):
                group["initial_lr"] = max_lrs[i] / float(div_factor)
                group["max_lr"] = max_lrs[i]
                group["min_lr"] = group["initial_lr"] / float(final_div_factor)
                if self.cycle_momentum:
                    if self.use_beta1:
                        group["betas"] = (max_moms[i], *tuple(group["betas"])[1:])
                    else:
                        group["momentum"] = max_moms[i]
                    group["max_momentum"] = max_moms[i]
                    group["base_momentum"] = base_moms[i]
        else:
            keys = ["max_lr", "min_lr"] + (["max_momentum", "base_momentum"] if self.cycle_momentum else [])
            for i, group in enumerate(optimizer.param_groups):
                missing = [k for k in keys if k not in group]
                if missing:
                    raise KeyError(f"{cls}: param_groups[{i}] lacks {missing} when resuming with "
                                   f"last_epoch={last_epoch}")
        super().__init__(optimizer, last_epoch)

    def _phases(self) -> list[tuple[float, str, str, str, str]]:
        """(end step, start lr key, end lr key, start momentum key, end momentum key) of each phase."""
        n, p = self.total_steps, self.pct_start
        if self.three_phase:
            return [(float(p * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                    (float(2 * p * n) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                    (n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        return [(float(p * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _values(self, group: dict, t: int) -> tuple[float, float | None]:
        """(lr, momentum or None) of ``group`` at step ``t``."""
        phases = self._phases()
        start = 0.0
        for i, (end, lr0, lr1, m0, m1) in enumerate(phases):
            if t <= end or i == len(phases) - 1:
                pct = (t - start) / (end - start) if end != start else 1.0
                mom = self._anneal(group[m0], group[m1], pct) if self.cycle_momentum else None
                return self._anneal(group[lr0], group[lr1], pct), mom
            start = end
        raise AssertionError("unreachable")

    def get_lr(self) -> list[float]:
        return [self._values(group, self.last_epoch)[0] for group in self.optimizer.param_groups]

    def step(self, epoch: int | None = None) -> None:
        """Advance one step (or jump to ``epoch``): set the rates and, with ``cycle_momentum``, the momenta.

        Raises ValueError, changing nothing, for a step past ``total_steps``."""
        t = self.last_epoch + 1 if epoch is None else int(epoch)
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {t} times; the specified number of total steps is "
                             f"{self.total_steps}")
        self._step_count += 1
        self.last_epoch = t
        for group in self.optimizer.param_groups:
            lr, mom = self._values(group, t)
            group["lr"] = lr
            if mom is not None:
                if self.use_beta1:
                    group["betas"] = (mom, *tuple(group["betas"])[1:])
                else:
                    group["momentum"] = mom
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


class ReduceLROnPlateau(LRScheduler):
    """Multiply the rates by ``factor`` when a metric has not improved for more than ``patience`` steps.

    ``step(metric)`` takes the monitored value (e.g. the validation loss each epoch). A value is an improvement
    when it beats the best so far by the threshold: ``best * (1 - threshold)`` (``"min"``, ``"rel"``),
    ``best - threshold`` (``"min"``, ``"abs"``), ``best * (1 + threshold)`` or ``best + threshold`` for
    ``"max"``. After ``patience + 1`` steps in a row without improvement each group's rate becomes
    ``max(lr * factor, min_lr)`` (unchanged when that lowers it by ``eps`` or less), then the next ``cooldown``
    steps count no bad steps. There is no closed form: the rates are whatever the groups hold.

    Args:
        optimizer: the optimizer whose groups' ``"lr"`` is reduced.
        mode: ``"min"`` (lower is better) or ``"max"``.
        factor: multiplier of the rate at a reduction, in [0, 1).
        patience: the number of steps without improvement that are tolerated.
        threshold: how much better a value must be to count as an improvement.
        threshold_mode: ``"rel"`` or ``"abs"`` (see above).
        cooldown: steps after a reduction during which bad steps are not counted.
        min_lr: the lowest rate, or one per parameter group.
        eps: reductions by ``eps`` or less are skipped.

    As in PyTorch, construction changes no rate and ``last_epoch`` starts at 0. Unlike PyTorch, a negative
    ``factor``, ``patience``, ``cooldown``, ``threshold``, ``min_lr`` or ``eps`` raises ValueError, and a
    ``step()`` without the metric raises TypeError (``nn.training.fit`` calls ``step()`` without one).
    """

    def __init__(self, optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | Sequence[float] = 0, eps: float = 1e-8) -> None:
        cls = "ReduceLROnPlateau"
        self.factor = _real("factor", factor, cls)
        if self.factor >= 1.0:
            raise ValueError(f"{cls}: factor should be < 1.0, got {factor!r}")
        if self.factor < 0.0:
            raise ValueError(f"{cls}: factor must be non-negative, got {factor!r}")
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"{cls}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if isinstance(min_lr, (list, tuple)):
            self.default_min_lr = None
        else:
            self.default_min_lr = _real("min_lr", min_lr, cls)
        self.min_lrs = _per_group("min_lr", min_lr, optimizer, cls)
        if any(m < 0 for m in self.min_lrs):
            raise ValueError(f"{cls}: min_lr must be non-negative, got {min_lr!r}")
        self.patience = _non_negative_int("patience", patience, cls)
        self.cooldown = _non_negative_int("cooldown", cooldown, cls)
        self.eps = _real("eps", eps, cls)
        if self.eps < 0:
            raise ValueError(f"{cls}: eps must be non-negative, got {eps!r}")
        self.threshold = _real("threshold", threshold, cls)
        if self.threshold < 0:
            raise ValueError(f"{cls}: threshold must be non-negative, got {threshold!r}")
        self._check_modes(mode, threshold_mode)
        self.mode = mode
        self.threshold_mode = threshold_mode
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self._reset()

    @staticmethod
    def _check_modes(mode, threshold_mode) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode {mode!r} is unknown (expected 'min' or 'max')")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold mode {threshold_mode!r} is unknown (expected 'rel' or "
                             "'abs')")

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def _is_better(self, a: float, best: float) -> bool:
        """Whether ``a`` improves on ``best`` by the threshold."""
        if self.mode == "min":
            return a < (best * (1.0 - self.threshold) if self.threshold_mode == "rel" else best - self.threshold)
        return a > (best * (self.threshold + 1.0) if self.threshold_mode == "rel" else best + self.threshold)

    def step(self, metrics=None, epoch: int | None = None) -> None:  # type: ignore[override]
        """Record the monitored value ``metrics`` (a number or a one-element Tensor) and reduce the rates after
        too many steps without improvement."""
        if metrics is None:
            raise TypeError("ReduceLROnPlateau.step() needs the monitored metric, e.g. scheduler.step(val_loss); "
                            "it has no schedule to advance without one")
        try:
            current = float(metrics)
        except (TypeError, ValueError) as e:
            raise TypeError(f"ReduceLROnPlateau.step(): the metric must be a number, got "
                            f"{type(metrics).__name__} ({e})") from None
        self.last_epoch = self.last_epoch + 1 if epoch is None else int(epoch)
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0           # bad steps during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"ReduceLROnPlateau: the optimizer has {len(groups)} parameter groups, "
                                   f"{len(self.min_lrs)} when the scheduler was built with one min_lr per group; "
                                   "set its min_lrs to one per group")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new

    def get_lr(self) -> list[float]:
        """The optimizer's current rates (there is no closed form)."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def load_state_dict(self, state_dict: dict) -> None:
        self._check_modes(state_dict.get("mode", self.mode), state_dict.get("threshold_mode", self.threshold_mode))
        super().load_state_dict(state_dict)
