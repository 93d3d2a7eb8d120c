"""Gradient audit: check a real model's backward pass against finite differences, during training.

For a random unit direction v over all parameters θ, backward gives the directional derivative
⟨∇L(θ), v⟩; a central difference gives (L(θ + εv) − L(θ − εv)) / 2ε. Both are computed in float64 on a
copy of the model in eval mode (dropout off, batch norm on running statistics: a deterministic function
of θ), so the training run itself is untouched. A wrong custom backward, a layer that silently ignores
part of its input, or non-determinism shows up as a disagreement on real data, not only in unit tests.

    report = ag.audit(model, loss_fn, x, y)           # one check now
    auditor = ag.audit(model, loss_fn, every=100)     # or: a check every 100 steps
    for step, (x, y) in enumerate(loader):
        ...; auditor.step(x, y)                       # fit(..., audit_every=100) does this for you
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import backends

from .errors import GradcheckError
from .function import no_grad
from .tensor import Tensor

__all__ = ["audit", "Auditor", "AuditReport", "GradientAuditError"]


class GradientAuditError(GradcheckError):
    """The model's backward pass disagrees with finite differences of its loss."""


@dataclass
class AuditReport:
    """What one audit measured: per direction the backward and finite-difference derivatives."""
    backward: list = field(default_factory=list)
    numeric: list = field(default_factory=list)
    ok: bool = True
    seconds: float = 0.0
    loss: float = float("nan")
    step: int | None = None

    def __str__(self) -> str:
        pairs = ", ".join(f"{b:.6g} vs {n:.6g}" for b, n in zip(self.backward, self.numeric))
        at = f" at step {self.step}" if self.step is not None else ""
        return (f"gradient audit{at}: {'ok' if self.ok else 'MISMATCH'} (directional derivative backward vs "
                f"finite difference: {pairs}; loss {self.loss:.6g}; {self.seconds * 1e3:.0f} ms)")


def _as64(v):
    if isinstance(v, Tensor):
        return v.astype("float64") if v.dtype.kind == "f" else v
    return v


def _loss_value(model, loss_fn, x, y) -> Tensor:
    out = model(x)
    loss = loss_fn(out) if y is None else loss_fn(out, y)
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise TypeError(f"audit: loss_fn must return a one-element Tensor, got {type(loss).__name__} "
                        f"of shape {getattr(loss, 'shape', None)}")
    return loss


def _directions(params, n: int, seed: int) -> list[list]:
    """``n`` random unit directions over all ``params`` (drawn on the host, moved to each parameter's device)."""
    rng = backends.host.random.default_rng(seed)
    out = []
    for _ in range(n):
        parts = [rng.standard_normal(p.shape) for p in params]
        norm = math.sqrt(sum(float((a * a).sum()) for a in parts)) or 1.0
        out.append([p._backend.asarray(a / norm, dtype=p.dtype) for p, a in zip(params, parts)])
    return out


def check_model_gradient(model, loss_fn, x, y=None, directions: int = 2, eps: float = 1e-6, rtol: float = 1e-3,
                         atol: float = 1e-7, seed: int = 0) -> AuditReport:
    """One audit of ``loss_fn(model(x), y)`` (or ``loss_fn(model(x))``): see the module docstring.

    A direction agrees when ``|backward − numeric| ≤ atol + rtol·|numeric|`` with the step ``eps`` or, failing
    that, ``eps / 100`` (a ReLU or max kink inside the step spoils a difference; a wrong backward disagrees at
    every step). The audit passes when some direction agrees: only a disagreement in every direction is
    reported as a mismatch.
    """
    t0 = time.perf_counter()
    twin = copy.deepcopy(model)
    twin.eval()
    if hasattr(twin, "double"):
        twin.double()
    params = [p for p in twin.parameters() if p.requires_grad]
    if not params:
        raise ValueError("audit: the model has no parameter that requires grad")
    x64, y64 = _as64(x), _as64(y)
    for p in params:
        p.grad = None
    loss = _loss_value(twin, loss_fn, x64, y64)
    loss.backward()
    grads = [p.grad.array if p.grad is not None else None for p in params]
    report = AuditReport(loss=float(loss.item()))
    base = [p.array for p in params]
    def central(v, step):
        values = []
        for sign in (1.0, -1.0):
            for p, b, d in zip(params, base, v):
                p.array = b + (sign * step) * d
            values.append(float(_loss_value(twin, loss_fn, x64, y64).item()))
        return (values[0] - values[1]) / (2 * step)

    agree = []
    with no_grad():
        for v in _directions(params, directions, seed):
            analytic = sum(float((g * d).sum()) for g, d in zip(grads, v) if g is not None)
            # a ReLU or max kink within the step spoils a difference; a wrong backward does not go away with a
            # smaller step, so a direction passes when either step agrees
            for step in (eps, eps / 100):
                numeric = central(v, step)
                if abs(analytic - numeric) <= atol + rtol * abs(numeric):
                    break
            report.backward.append(analytic)
            report.numeric.append(numeric)
            agree.append(abs(analytic - numeric) <= atol + rtol * abs(numeric))
        for p, b in zip(params, base):
            p.array = b
    report.ok = any(agree)
    report.seconds = time.perf_counter() - t0
    return report


class Auditor:
    """Runs :func:`check_model_gradient` every ``every`` calls of :meth:`step`; raises on a mismatch
    (``raise_on_mismatch``) and keeps every report in ``reports``."""

    def __init__(self, model, loss_fn, every: int, raise_on_mismatch: bool = True, **options):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"audit: every must be a positive integer, got {every!r}")
        self.model, self.loss_fn, self.every = model, loss_fn, every
        self.raise_on_mismatch, self.options = raise_on_mismatch, options
        self.calls = 0
        self.reports: list[AuditReport] = []

    def step(self, x, y=None) -> AuditReport | None:
        """Count one training step; on every ``every``-th, audit the gradient on this batch."""
        self.calls += 1
        if self.calls % self.every:
            return None
        report = check_model_gradient(self.model, self.loss_fn, x, y, seed=self.calls, **self.options)
        report.step = self.calls
        self.reports.append(report)
        if not report.ok and self.raise_on_mismatch:
            raise GradientAuditError(str(report))
        return report


def audit(model, loss_fn, x=None, y=None, *, every: int | None = None, **options):
    """Audit a model's gradient: with a batch ``x`` (and targets ``y``) once now, returning an
    :class:`AuditReport` (raising :class:`GradientAuditError` on a mismatch unless ``raise_on_mismatch=False``);
    with ``every=N`` and no batch, an :class:`Auditor` to call ``.step(x, y)`` on each training step.

    Options: ``directions`` (2), ``eps`` (1e-6), ``rtol`` (1e-3), ``atol`` (1e-7), ``seed``.
    """
    if x is None:
        if every is None:
            raise TypeError("audit: give a batch (x, y) to audit now, or every=N for an Auditor")
        return Auditor(model, loss_fn, every, **options)
    raise_on = options.pop("raise_on_mismatch", True)
    report = check_model_gradient(model, loss_fn, x, y, **options)
    if not report.ok and raise_on:
        raise GradientAuditError(str(report))
    return report
