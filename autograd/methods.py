"""Tensor's operators and op methods, attached in one place from one declared table.

``Tensor`` sits below the ops and the engine and imports neither; this module, above both, completes it.
The table is the public-op records (``@public(..., method=..., operators=...)`` beside each op, see
``autograd/spec.py``) plus the few methods below that are spelled in terms of other ops.
"""
from __future__ import annotations

from . import factories, ops
from .engine import backward as _backward
from .grad_mode import no_grad
from .spec import public_ops
from .tensor import Tensor


def _swapped(func, name: str):
    def method(self, other):
        return func(other, self)
    method.__name__ = name
    method.__doc__ = f"``other {name}`` this tensor: ``{func.__name__}(other, self)``."
    return method


def backward(self, gradient=None, retain_graph=None, create_graph: bool = False) -> None:
    """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

    Args:
        gradient: upstream gradient, required unless ``self`` has one element.
        retain_graph: keep the graph for another backward (default: ``create_graph``).
        create_graph: record the backward pass, for higher-order gradients.
    """
    _backward([self], None if gradient is None else [gradient], retain_graph, create_graph)


# Elementwise methods that also get PyTorch's in-place form ``name_``: the result computed outside the graph, then
# copied into the tensor by ``copy_`` (which refuses tensors in a graph that needs grad, like every in-place op).
INPLACE = ("abs", "neg", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid", "relu", "clamp", "clip", "pow",
           "floor", "ceil", "round", "trunc", "sign", "square", "reciprocal", "rsqrt", "lerp", "log1p", "expm1",
           "clamp_min", "clamp_max", "remainder", "fmod", "floor_divide", "bitwise_not", "logical_not")


def _inplace(func, name: str):
    def method(self, *args, **kwargs):
        with no_grad():
            out = func(self, *args, **kwargs)
        if out.dtype != self.dtype:
            raise TypeError(f"{name}: the result's dtype {out.dtype} cannot be stored in a {self.dtype} tensor")
        return self.copy_(out)
    method.__name__ = name
    method.__doc__ = f"In-place ``{name[:-1]}``: computes it and writes the result into this tensor."
    return method


def _random_fill(draw: str, name: str):
    def method(self, a: float = 0.0, b: float = 1.0) -> Tensor:
        # the factories' draws (the device's seeded generator, float16 handled), then scaled and shifted
        values = factories.rand_like(self) * (b - a) + a if draw == "uniform" else factories.randn_like(self) * b + a
        return self.copy_(values)
    method.__name__ = name
    method.__doc__ = (f"Fill with draws from U(a, b) (``uniform_(from_=0, to=1)``), from the device's generator."
                      if draw == "uniform" else "Fill with draws from N(mean, std) (``normal_(mean=0, std=1)``).")
    return method


def _new(make):
    """A ``new_*`` method: ``make`` with this tensor's dtype and device unless given (PyTorch's ``new_zeros``...)."""
    def method(self, *args, dtype=None, device=None, requires_grad: bool = False, **kwargs) -> Tensor:
        return make(*args, dtype=self.dtype if dtype is None else dtype,
                    device=self.device if device is None else device, requires_grad=requires_grad, **kwargs)
    method.__name__ = f"new_{make.__name__}"
    method.__doc__ = f"``{make.__name__}(...)`` with this tensor's dtype and device unless given."
    return method


def _T(self) -> Tensor:
    """The dims reversed."""
    return ops.permute(self, *reversed(range(self.ndim)))


def _mT(self) -> Tensor:
    """The last two dims swapped (batched matrices)."""
    return ops.transpose(self, -2, -1)


def _is_cuda(self) -> bool:
    """True on a GPU."""
    return self.device.kind == "cuda"


def cpu(self) -> Tensor:
    return self.to("cpu")


def cuda(self, index: int = 0) -> Tensor:
    return self.to(f"cuda:{index}")


def _pos(self) -> Tensor:
    return self


DERIVED = {
    "backward": backward,
    "T": property(_T),
    "mT": property(_mT),
    "new_zeros": _new(factories.zeros),
    "new_ones": _new(factories.ones),
    "new_empty": _new(factories.empty),
    "new_full": _new(factories.full),
    "new_tensor": _new(factories.tensor),
    "uniform_": _random_fill("uniform", "uniform_"),
    "normal_": _random_fill("normal", "normal_"),
    "is_cuda": property(_is_cuda),
    "cpu": cpu,
    "cuda": cuda,
    "__pos__": _pos,
}


def table() -> dict:
    """Every attribute this module gives Tensor: ``{name: function or property}``."""
    out = {}
    for rec in public_ops().values():
        for name in rec.methods + (rec.aliases if rec.methods else ()) + rec.operators:
            out[name] = rec.func
        for name in rec.roperators:
            out[name] = _swapped(rec.func, name)
    for name in INPLACE:
        if name in out and name + "_" not in out:
            out[name + "_"] = _inplace(out[name], name + "_")
    clash = set(out) & set(DERIVED)
    if clash:
        raise RuntimeError(f"Tensor methods declared twice: {sorted(clash)}")
    out.update(DERIVED)
    return out


def install() -> None:
    for name, value in table().items():
        setattr(Tensor, name, value)


install()
