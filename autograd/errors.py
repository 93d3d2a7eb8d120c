"""Exception types raised by the engine (all subclass the built-in kind a NumPy user expects)."""
from __future__ import annotations


class OpError(Exception):
    """Mixin for errors an op (or a layer) raises about its arguments, with structured fields.

    ``OpValueError("bad thing", op="conv2d", shapes=((1, 3, 8, 8),), value=v)`` reads
    ``"conv2d: bad thing"``; without ``op`` the message is taken as given (the plain form every built-in
    exception has). Fields, all optional (None when not known):

    - ``op``: the op's or layer's name, the message's prefix.
    - ``detail``: the message after the ``"<op>: "`` prefix.
    - ``shapes``: the shapes of the tensors involved, a tuple of tuples.
    - ``value``: the offending argument value.

    The concrete classes stay subclasses of ValueError/TypeError/IndexError, so ``except ValueError``
    catches them as before.
    """

    def __init__(self, *args, op: str | None = None, shapes=None, value=None) -> None:
        detail = args[0] if args else ""
        if op is not None:
            args = (f"{op}: {detail}",) + args[1:]
        super().__init__(*args)
        self.op, self.detail, self.shapes, self.value = op, detail, shapes, value

    def with_op(self, op: str, suffix: str = ""):
        """The same error (same class and fields) reported under ``op`` instead of this error's op, its
        detail followed by ``suffix``: how a composite (conv1d on conv2d) or a layer (``Conv2d(...)`` on
        ``conv2d``) names itself in an error raised by the op it calls. Needs an error raised with ``op``."""
        if self.op is None:
            raise ValueError(f"with_op: {type(self).__name__} was raised without an op: {self}")
        return type(self)(f"{self.detail}{suffix}", op=op, shapes=self.shapes, value=self.value)


class OpValueError(OpError, ValueError):
    """A bad argument value or shape (a ValueError with ``op``, ``detail``, ``shapes``, ``value``)."""


class OpTypeError(OpError, TypeError):
    """An argument of the wrong type (a TypeError with ``op``, ``detail``, ``shapes``, ``value``)."""


class OpIndexError(OpError, IndexError):
    """An index out of range (an IndexError with ``op``, ``detail``, ``shapes``, ``value``)."""


def renamed(e: Exception, op: str, suffix: str = "") -> Exception:
    """``e`` reported under ``op``: ``e.with_op(op, suffix)`` for an error raised with an op, else ``e``
    itself (an error with no op has no prefix to replace)."""
    return e.with_op(op, suffix) if isinstance(e, OpError) and e.op is not None else e


class AxisError(OpError, ValueError, IndexError):
    """An axis argument out of range for the tensor's rank."""


class GraphError(RuntimeError):
    """Misuse of the graph: second backward without ``retain_graph``, in-place change of a saved tensor."""


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree.

    Attributes: ``input_index``, ``element`` (index tuple of the worst element),
    ``analytic``, ``numeric``.
    """

    def __init__(self, msg, input_index=None, element=None, analytic=None, numeric=None):
        super().__init__(msg)
        self.input_index = input_index
        self.element = element
        self.analytic = analytic
        self.numeric = numeric
