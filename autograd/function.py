"""``Function``: one differentiable op, and the registry of all of them.

An op subclasses :class:`Function`, writes ``forward`` on raw arrays of
``self.xp`` and ``backward`` in Tensor ops (so it can be differentiated again),
and declares its test samples in ``spec``. ``Function.apply`` does the rest:
backend resolution, wrapping outputs, and recording the graph node when some
input requires grad and grad mode is on.
"""
from __future__ import annotations

import operator
import weakref
from dataclasses import replace

from backends import DeviceError
from backends.base import memory_order

from .grad_mode import _mode, enable_grad, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401 (re-exported)
from .spec import OpSpec, composites, public_ops
from .tensor import Tensor, _make

_new = object.__new__
_version_of = operator.attrgetter("_version")     # list(map(...)) of it: the input versions, looped in C

_REGISTRY: dict[str, type] = {}


def _describe(tensors) -> str:
    shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
    dtypes = ", ".join(str(t.dtype) for t in tensors)
    devs = ", ".join(sorted({t._backend.name for t in tensors}))
    return f"input shapes [{shapes}], dtypes [{dtypes}], device {devs}"


class Function:
    """Base of every op. Subclasses define ``forward``, ``backward`` and ``spec``.

    Class attributes:
        spec: the op's :class:`~autograd.spec.OpSpec` (test samples, reference).
        exempt: instead of a spec, the reason an internal helper needs none.
        save_output: keep the forward result so ``backward`` can use ``self.output()``.
        needs_inputs: ``backward`` reads input values, so in-place changes to them are errors.
        elementwise: the op combines its inputs element by element; large inputs of one shape stored in
            different memory orders (a batch-last convolution result and a channel-major array) are then
            copied into one order before ``forward`` (NumPy walks mixed orders many times slower).
    """

    spec = None
    exempt: str | None = None
    save_output = False
    needs_inputs = True
    elementwise = False
    nout = 1            # number of outputs (set per node when forward returns a tuple)
    watched = None      # {output index: weakref} of outputs with hooks or retain_grad
    inputs = None       # recorded input Tensors; None once backward has freed them

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[f"{cls.__module__}.{cls.__qualname__}"] = cls

    @classmethod
    def apply(cls, *inputs: Tensor, **attrs):
        """Run the op on Tensors; returns a Tensor, or a tuple for several outputs."""
        fn = _new(cls)
        if attrs:
            fn.__dict__.update(attrs)
        be = inputs[0]._backend
        record = False
        for t in inputs:
            if t._backend is not be:
                raise DeviceError(f"{cls.__name__}: tensors on different devices ({_describe(inputs)}); "
                                  "move them with .to(device) first")
            if t._rg:
                record = True
        fn.backend = be
        fn.xp = be.xp
        try:
            if len(inputs) == 2:
                a, b = inputs[0].array, inputs[1].array
                if a.size >= ALIGN_MIN and cls.elementwise:
                    a, b = _aligned(be, [a, b])
                out = fn.forward(a, b)
            elif len(inputs) == 1:
                out = fn.forward(inputs[0].array)
            else:
                arrays = [t.array for t in inputs]
                if arrays[0].size >= ALIGN_MIN and cls.elementwise:
                    arrays = _aligned(be, arrays)
                out = fn.forward(*arrays)
        except (ValueError, IndexError, TypeError) as e:
            raise _op_error(cls.__name__, e, inputs) from e
        if not (record and _mode.enabled):
            if type(out) is tuple:
                return tuple([_make(o, be, False) for o in out])
            return _make(out, be, False)
        fn.inputs = inputs
        gen = 0
        for t in inputs:
            if t.generation > gen:
                gen = t.generation
        fn.generation = gen
        gen += 1
        if cls.needs_inputs:
            fn.versions = list(map(_version_of, inputs))
        if type(out) is tuple:
            outs = tuple([_make(o, be, True) for o in out])
            fn.nout = len(outs)
            for i, o in enumerate(outs):
                o.creator, o._idx, o.generation = fn, i, gen
        else:
            outs = _make(out, be, True)
            outs.creator = fn
            outs.generation = gen
        if cls.save_output:
            fn.saved = out
            fn.out_ref = weakref.ref(outs if fn.nout == 1 else outs[0])
        return outs

    def watch(self, t: Tensor) -> None:
        """Remember output ``t`` (it has hooks or retains its grad)."""
        if self.watched is None:
            self.watched = {}
        self.watched[t._idx] = weakref.ref(t)

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, *grads):
        raise NotImplementedError

    def output(self, i: int = 0) -> Tensor:
        """The saved forward output ``i`` as a Tensor attached to this node (for ``save_output`` ops)."""
        data = self.saved[i] if self.nout > 1 else self.saved
        t = _make(data, self.backend, True)
        t.creator, t._idx, t.generation = self, i, self.generation + 1
        return t

    def __repr__(self) -> str:
        return f"<{type(self).__name__} backward node>"


ALIGN_MIN = 1 << 19
"""Inputs with fewer elements are combined as they are stored. Below this size NumPy's mixed-order walk costs no
more than the aligning copy would; above it the walk misses the caches, and the copy plus an aligned op is several
times faster (figures in benchmarks/RESULTS.md)."""


def _aligned(be, arrays: list) -> list:
    """``arrays`` with the large ones of the first one's shape stored in one memory order: an order some of
    them already have, preferring one that the others reach by a plain copy (destination's innermost axis =
    source's outermost: a channel-major array into batch-last order is one fast pass, the reverse is not)."""
    ref = arrays[0]             # callers have checked that it has at least ALIGN_MIN elements
    if ref.ndim < 2:
        return arrays
    big = [i for i, a in enumerate(arrays) if a.shape == ref.shape and a.size >= ALIGN_MIN]
    if len(big) < 2 or all(arrays[i].strides == ref.strides for i in big):
        return arrays
    orders = {i: memory_order(arrays[i]) for i in big}
    kinds = set(orders.values())
    if len(kinds) == 1:
        return arrays
    target = next((o for o in kinds if all(p == o or o[-1] == p[0] for p in kinds)), orders[0])
    for i in big:
        if orders[i] != target:
            arrays[i] = be.relayout(arrays[i], target)
    return arrays


def _op_error(name, e, inputs):
    """Re-raise an array-library error with the op's name, shapes, dtypes and device (an OpError: ``op``,
    ``shapes`` of the inputs)."""
    from .errors import AxisError, OpIndexError, OpTypeError, OpValueError
    detail = f"{e} ({_describe(inputs)})"
    shapes = tuple(tuple(t.shape) for t in inputs)
    if isinstance(e, IndexError) and isinstance(e, ValueError):
        return AxisError(detail, op=name, shapes=shapes)
    for kind, cls in ((IndexError, OpIndexError), (ValueError, OpValueError), (TypeError, OpTypeError)):
        if isinstance(e, kind):
            return cls(detail, op=name, shapes=shapes)
    return e


def registry() -> dict[str, type]:
    """Every Function subclass defined so far, by qualified name."""
    return dict(_REGISTRY)


def all_specs() -> dict[str, OpSpec]:
    """Every op spec, keyed by the op's public name (the class name for ops with no public function of their
    own), plus the composites; a spec's ``call`` is the public function (else the class's ``apply``)."""
    named = {}
    for rec in public_ops().values():
        if rec.op is not None:
            named.setdefault(rec.op, rec.name)
    out = {}
    for cls in _REGISTRY.values():
        if cls.spec is not None:
            key = named.get(cls, cls.__name__)
            spec = cls.spec
            if not spec.name or spec.call is None:       # a copy: the class's record stays as declared
                spec = replace(spec, name=spec.name or key, call=spec.call or cls.apply)
            out[key] = spec
    out.update(composites())
    return out
