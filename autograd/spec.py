"""The records that live with each op: its test spec (OpInfo-like) and its public names.

``@public`` declares an op's public function once; ``autograd/methods.py`` makes the Tensor methods and
operators from these records and ``nn.functional`` takes the ``functional`` ones. A spec says how to draw
valid inputs for an op and what it must equal; the
generated tests in ``tests/test_ops.py`` turn every spec into forward,
gradcheck, gradgradcheck, dtype and no-mutation tests on every backend.
Callables here receive a *drawer* ``d`` (see :class:`autograd.testing.Drawer`) with
``d.shape()``, ``d.shapes_broadcast(n)``, ``d.axis()``, ``d.int()``,
``d.bool()``, ``d.choice()``, ``d.floats()`` and ``d.array()``, so that ops
never import the test framework.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field, replace
from typing import Callable

_COMPOSITES: dict[str, "OpSpec"] = {}   # public functions without a Function of their own, by name


@dataclass(frozen=True)
class OpSpec:
    """How to test one op. Frozen once made: the tools that need another variant (a name, an entry point) take
    a copy with ``dataclasses.replace``, so checking one op can never change what another op's checks test.

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
    """Register the spec of a public function built from other ops (no Function of its own); returns the
    registered record (``spec`` named ``name``)."""
    spec = replace(spec, name=name)
    _COMPOSITES[name] = spec
    return spec


def composites() -> dict[str, OpSpec]:
    return dict(_COMPOSITES)


@dataclass(frozen=True)
class Public:
    """One public op: the function ``autograd.<name>`` and the other names it is reached by.

    Attributes:
        name: the function's name (``ag.exp``).
        func: the function.
        op: the Function class whose spec tests it (None for composites, whose spec is registered by name).
        methods: Tensor method names bound to ``func`` (``x.exp()``).
        operators: Tensor operators bound to ``func`` (``__add__``); ``roperators`` with swapped operands.
        functional: also ``nn.functional.<name>`` (same signature there).
        export: also ``autograd.<name>`` (False for method-only entries such as ``Tensor.to``).
        aliases: other names of the same function, exported and (when it has methods) bound as methods alike:
            NumPy's spellings (``concatenate``, ``absolute``) and PyTorch's synonyms (``clip`` for ``clamp``).
        kwarg_aliases: ``{alias: parameter}`` of the keyword arguments accepted under another name
            (:data:`KWARG_ALIASES` restricted to the function's parameters).
    """
    name: str
    func: Callable
    op: type | None = None
    methods: tuple = ()
    operators: tuple = ()
    roperators: tuple = ()
    functional: bool = False
    export: bool = True
    aliases: tuple = ()
    kwarg_aliases: tuple = ()


KWARG_ALIASES = {"axis": "dim", "keepdims": "keepdim", "ddof": "correction", "a_min": "min", "a_max": "max"}
"""NumPy's keyword names and the PyTorch parameter each one means: a public function with the PyTorch parameter
(and not the NumPy one) accepts both. ``ddof`` is PyTorch's ``correction`` (divide by n − ddof)."""


def _accepting_aliases(func: Callable, aliases: dict) -> Callable:
    """``func`` also taking its keyword arguments under the names in ``aliases`` ({alias: parameter})."""
    @functools.wraps(func)
    def call(*args, **kwargs):
        if kwargs and not aliases.keys().isdisjoint(kwargs):
            for alias in aliases.keys() & kwargs.keys():
                name = aliases[alias]
                if name in kwargs:
                    raise TypeError(f"{func.__name__}() got both {name!r} and its alias {alias!r}")
                kwargs[name] = kwargs.pop(alias)
        return func(*args, **kwargs)
    return call


def _kwarg_aliases(func: Callable) -> dict:
    params = inspect.signature(func).parameters
    return {alias: name for alias, name in KWARG_ALIASES.items() if name in params and alias not in params}


_PUBLIC: dict[str, Public] = {}


def public(op: type | None = None, *, method=False, operators=(), roperators=(), functional: bool = False,
           export: bool = True, spec: OpSpec | None = None, aliases: tuple = ()):
    """Decorator declaring a public op function: the one record from which ``autograd.<name>``, its Tensor
    methods and operators and its ``nn.functional`` name are made (see ``autograd/methods.py``).

    Args:
        op: the Function class it applies; its spec (class attribute) then tests this function.
        method: True for a Tensor method of the same name, a name, or a tuple of names.
        operators, roperators: Tensor operators calling it with (self, other) / (other, self).
        functional: export it as ``nn.functional.<name>`` too.
        export: export it as ``autograd.<name>``.
        spec: for a composite (no Function of its own), its test spec.
        aliases: other names for the function (and its methods), see :class:`Public`.

    The function returned takes NumPy's keyword names too (:data:`KWARG_ALIASES`), so the op's own code is
    written once, with PyTorch's names.
    """
    def deco(func):
        name = func.__name__
        methods = (name,) if method is True else (method,) if isinstance(method, str) else tuple(method or ())
        if name in _PUBLIC:
            raise ValueError(f"public op {name!r} is declared twice")
        kw = _kwarg_aliases(func)
        if kw:
            func = _accepting_aliases(func, kw)
        _PUBLIC[name] = Public(name, func, op, methods, tuple(operators), tuple(roperators), functional, export,
                               tuple(aliases), tuple(kw.items()))
        if spec is not None:
            composite(name, replace(spec, call=spec.call or func))
        elif op is not None and getattr(op, "spec", None) is not None:
            op.spec = replace(op.spec, call=op.spec.call or func, name=op.spec.name or name)
        return func
    return deco


def public_ops() -> dict[str, Public]:
    """Every public op record, by name."""
    return dict(_PUBLIC)
