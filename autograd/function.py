"""``Function``: one differentiable op, and the grad-mode switches.

An op subclasses :class:`Function`, writes ``forward`` on raw arrays of
``self.xp`` and ``backward`` in Tensor ops (so it can be differentiated again),
and declares its test samples in ``spec``. ``Function.apply`` does the rest:
backend resolution, wrapping outputs, and recording the graph node when some
input requires grad and grad mode is on.
"""
from __future__ import annotations

import functools
import weakref

from backends import DeviceError

from .tensor import Tensor, _make

_REGISTRY: dict[str, type] = {}


class _GradMode:
    enabled = True


_mode = _GradMode()


def is_grad_enabled() -> bool:
    return _mode.enabled


class _GradSwitch:
    """Context manager and decorator that sets grad mode for its extent."""

    value = True

    def __enter__(self):
        self._prev = _mode.enabled
        _mode.enabled = self.value

    def __exit__(self, *exc):
        _mode.enabled = self._prev

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with type(self)():
                return func(*args, **kwargs)
        return wrapper


class no_grad(_GradSwitch):
    """Ops inside record no graph: for evaluation and in-place updates."""
    value = False


class enable_grad(_GradSwitch):
    """Turn recording back on inside a ``no_grad`` region."""
    value = True


class set_grad_enabled(_GradSwitch):
    def __init__(self, mode: bool):
        self.value = bool(mode)

    def __call__(self, func):
        raise TypeError("set_grad_enabled(mode) is a context manager only")


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
    """

    spec = None
    exempt: str | None = None
    save_output = False
    needs_inputs = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[f"{cls.__module__}.{cls.__qualname__}"] = cls

    @classmethod
    def apply(cls, *inputs: Tensor, **attrs):
        """Run the op on Tensors; returns a Tensor, or a tuple for several outputs."""
        fn = object.__new__(cls)
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
        record = record and _mode.enabled
        fn.xp = be.xp
        fn.backend = be
        try:
            out = fn.forward(*[t.data for t in inputs])
        except (ValueError, IndexError, TypeError) as e:
            raise _op_error(cls.__name__, e, inputs) from e
        if type(out) is tuple:
            outs = tuple([_make(o, be, record) for o in out])
        else:
            outs = _make(out, be, record)
        if record:
            fn.inputs = inputs
            gen = 0
            for t in inputs:
                if t.generation > gen:
                    gen = t.generation
            fn.generation = gen
            if cls.needs_inputs:
                fn.versions = [t._version for t in inputs]
            if cls.save_output:
                fn.saved = out
            if type(outs) is tuple:
                fn.nout = len(outs)
                for i, o in enumerate(outs):
                    o.creator, o._idx, o.generation = fn, i, gen + 1
                fn.outputs = [weakref.ref(o) for o in outs]
            else:
                fn.nout = 1
                outs.creator, outs.generation = fn, gen + 1
                fn.outputs = [weakref.ref(outs)]
            fn.watch = False
        return outs

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


def _op_error(name, e, inputs):
    """Re-raise an array-library error with the op's name, shapes, dtypes and device."""
    from .errors import AxisError
    msg = f"{name}: {e} ({_describe(inputs)})"
    if isinstance(e, IndexError) and isinstance(e, ValueError):
        return AxisError(msg)
    for kind in (IndexError, ValueError, TypeError):
        if isinstance(e, kind):
            return kind(msg)
    return e


def registry() -> dict[str, type]:
    """Every Function subclass defined so far, by qualified name."""
    return dict(_REGISTRY)
