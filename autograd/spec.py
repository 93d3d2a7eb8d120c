"""Test-sample declarations that live with each op (an OpInfo-like record).

A spec says how to draw valid inputs for an op and what it must equal; the
generated tests in ``tests/test_ops.py`` turn every spec into forward,
gradcheck, gradgradcheck, dtype and no-mutation tests on every backend.
Callables here receive a *drawer* ``d`` (see :class:`autograd.testing.Drawer`) with
``d.shape()``, ``d.shapes_broadcast(n)``, ``d.axis()``, ``d.int()``,
``d.bool()``, ``d.choice()``, ``d.floats()`` and ``d.array()``, so that ops
never import the test framework.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

_COMPOSITES: dict[str, "OpSpec"] = {}


@dataclass
class OpSpec:
    """How to test one op.

    Attributes:
        ref: NumPy reference, ``ref(np, *arrays, **kwargs)``.
        call: the public entry, ``call(*tensors, **kwargs)`` (default: the Function's ``apply``).
        nargs: number of tensor inputs.
        shapes: ``"broadcast"`` (mutually broadcastable), ``"same"``, or ``shapes(d) -> list of shapes``.
        domain: ``(low, high)`` for every input, or a list with one pair per input.
        avoid: points inputs keep at least ``margin`` away from (kinks, poles).
        kwargs: ``kwargs(d, shapes) -> dict`` of keyword arguments.
        sample: ``sample(d) -> (arrays, kwargs)``; replaces shapes/domain/avoid/kwargs when given.
        prepare: ``prepare(np, arrays) -> arrays`` applied to drawn values (e.g. to keep them apart).
        grad_inputs: indices of inputs that are differentiated (default: all).
        rtol, atol, eps: gradcheck tolerances and finite-difference step (float64).
        second_order: run gradgradcheck too.
        skip: ``{backend kind: reason}`` for backends the op cannot run on.
        max_dims: largest rank drawn by the default shape rules.
        check_dtype: float32 inputs must give float32 outputs and gradients (off for casts).
    """

    ref: Callable
    call: Callable | None = None
    nargs: int = 1
    shapes: object = "broadcast"
    domain: object = (-3.0, 3.0)
    avoid: tuple = ()
    margin: float = 0.1
    kwargs: Callable | None = None
    sample: Callable | None = None
    prepare: Callable | None = None
    grad_inputs: tuple | None = None
    rtol: float = 1e-4
    atol: float = 1e-6
    eps: float = 1e-6
    second_order: bool = True
    skip: dict = field(default_factory=dict)
    max_dims: int = 3
    check_dtype: bool = True
    name: str = ""


def composite(name: str, spec: OpSpec) -> OpSpec:
    """Register the spec of a public function built from other ops (no Function of its own)."""
    spec.name = name
    _COMPOSITES[name] = spec
    return spec


def all_specs() -> dict[str, OpSpec]:
    """Every op spec: one per registered Function that has one, plus the composites."""
    from .function import registry
    out = {}
    for qualname, cls in registry().items():
        if cls.spec is not None:
            cls.spec.name = cls.spec.name or cls.__name__
            out[cls.__name__] = cls.spec
            if cls.spec.call is None:
                cls.spec.call = cls.apply
    out.update(_COMPOSITES)
    return out
