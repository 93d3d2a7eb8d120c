"""``Tensor``: an array on some backend plus what reverse-mode autodiff needs."""
from __future__ import annotations

import backends
from backends import Backend

from .errors import GraphError
from .grad_mode import is_grad_enabled

_np = backends.host            # host array module, only for dtype objects and host copies
_FLOAT_KINDS = "fc"


class _DefaultDtype:
    value = _np.dtype("float32")


_default_dtype = _DefaultDtype()


def get_default_dtype():
    """The dtype given to Python floats (float32 unless changed)."""
    return _default_dtype.value


def set_default_dtype(dtype) -> None:
    dt = _np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"default dtype must be floating, got {dt}")
    _default_dtype.value = dt


def _is_float(dtype) -> bool:
    return dtype.kind in _FLOAT_KINDS


def _make(data, backend: Backend, requires_grad: bool) -> "Tensor":
    """Fast internal constructor: wraps an array already on ``backend``, no checks.

    Every other attribute keeps its class-level default until it is set.
    """
    t = _new(Tensor)
    t.array = data
    t._backend = backend
    t._rg = requires_grad
    return t


_new = object.__new__

_DATA_KINDS = "biufc"     # bool, signed/unsigned integer, floating, complex: everything else is refused


def _to_array(data, dtype, device, copy: bool, op: str):
    """``(backend, array)`` for Tensor data: copied when ``copy``, otherwise shared where possible.

    Python floats (data without a dtype) take the default dtype; strings, objects and ragged nested
    sequences raise, naming ``op``.
    """
    if isinstance(data, Tensor):
        be = backends.get_backend(device) if device is not None else data._backend
        src = data.array
    else:
        be = backends.get_backend(device) if device is not None else (
            backends.backend_of(data) if hasattr(data, "__array_interface__") or
            hasattr(data, "__cuda_array_interface__") else backends.default_device())
        src = data
    try:
        arr = be.asarray(src, dtype=dtype)
    except ValueError as e:
        if isinstance(data, (list, tuple)):
            raise ValueError(f"{op}: the nested sequence is ragged or has non-numeric elements "
                             f"(sub-sequences of unequal length cannot form an array): {e}") from e
        raise ValueError(f"{op}: cannot convert {type(data).__name__} data to an array"
                         f"{'' if dtype is None else f' of dtype {dtype}'}: {e}") from e
    except TypeError as e:
        raise TypeError(f"{op}: cannot convert {type(data).__name__} data to an array: {e}") from e
    if arr.dtype.kind not in _DATA_KINDS:
        raise TypeError(f"{op}: only bool, integer, floating-point or complex data can form a tensor, got dtype "
                        f"{arr.dtype} (from {type(data).__name__})")
    if dtype is None and not hasattr(data, "dtype") and arr.dtype.kind == "f":
        arr = arr.astype(_default_dtype.value, copy=False)   # Python floats: default dtype
    elif copy and (arr is src or arr.base is not None):     # a new array from asarray owns its memory
        arr = arr.copy()
    return be, arr


class Tensor:
    """An n-dimensional array that records the ops applied to it.

    ``Tensor(data)`` (like ``ag.tensor``) always copies ``data``; ``ag.from_numpy`` and ``ag.as_tensor``
    share memory with an array instead.

    Args:
        data: array-like (nested lists, scalars, NumPy/CuPy arrays, Tensors) of bool, int or float values.
        requires_grad: accumulate gradients into ``.grad`` on ``backward()``.
        dtype: array dtype; Python floats become float32, arrays keep their dtype.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; default is the current default device.

    Attributes:
        array: the NumPy or CuPy array holding the values (what ops compute on; ``.numpy()`` is a host copy).
    """

    # graph bookkeeping defaults (instances override them when set)
    grad = None
    creator = None      # the Function node that produced this tensor (None for leaves)
    _idx = 0            # which output of ``creator`` this is
    generation = 0      # one more than the largest generation of its creator's inputs
    _version = 0        # bumped by every in-place change
    _hooks = None
    _retain = False
    _strided = False    # a permuted/expanded view made by the user (see ops.shape.view)
    __array_priority__ = 1000
    __array_ufunc__ = None   # NumPy defers binary operators to Tensor's reflected methods

    def __init__(self, data, requires_grad: bool = False, dtype=None, device=None):
        be, arr = _to_array(data, dtype, device, copy=True, op="tensor")
        self.array = arr
        self._backend = be
        self._rg = False
        if requires_grad:
            self.requires_grad = True

    # --- attributes ---------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._rg

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value and not _is_float(self.array.dtype):
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        if not value and self.creator is not None:
            raise GraphError("requires_grad can only be switched off on leaf tensors; use .detach()")
        self._rg = bool(value)

    def requires_grad_(self, value: bool = True) -> "Tensor":
        self.requires_grad = value
        return self

    @property
    def is_leaf(self) -> bool:
        return self.creator is None

    @property
    def data(self) -> "Tensor":
        """The values as a new tensor outside the graph, sharing storage (PyTorch's ``.data``): changes made
        through it (``w.data -= lr * g``) reach this tensor and are not recorded. ``.array`` is the raw array."""
        return _make(self.array, self._backend, False)

    @data.setter
    def data(self, value) -> None:
        """``t.data = other``: take ``other``'s values (a Tensor, or a NumPy/CuPy array) as this tensor's storage."""
        arr = value.array if isinstance(value, Tensor) else value
        if arr is not self.array:       # ``t.data -= v`` changed it in place already, then assigns it back
            self.set_(arr)

    @property
    def shape(self) -> tuple:
        return self.array.shape

    @property
    def dtype(self):
        return self.array.dtype

    @property
    def ndim(self) -> int:
        return self.array.ndim

    def size(self, dim: int | None = None):
        """The shape (a tuple), or the size of dim ``dim`` (PyTorch's ``size``; :meth:`numel` counts elements)."""
        if dim is None:
            return self.array.shape
        n = self.array.ndim
        if not -max(n, 1) <= dim < max(n, 1) or isinstance(dim, bool):
            from .errors import AxisError
            raise AxisError(f"size: dim {dim} is out of range for a tensor of shape {self.shape}")
        return self.array.shape[dim] if n else 1

    def numel(self) -> int:
        """The number of elements."""
        return self.array.size

    nelement = numel

    def dim(self) -> int:
        """The number of dims (``ndim``)."""
        return self.array.ndim

    ndimension = dim

    def element_size(self) -> int:
        """Bytes per element."""
        return self.array.itemsize

    def is_floating_point(self) -> bool:
        return self.array.dtype.kind == "f"

    def is_contiguous(self) -> bool:
        """False for the strided views that ``view`` refuses (after transpose, permute or expand)."""
        return not self._strided

    @property
    def device(self) -> Backend:
        """The tensor's backend; compares equal to its device string (``t.device == "cpu"``)."""
        return self._backend

    @property
    def xp(self):
        """The array module of the tensor's device (``numpy`` or ``cupy``)."""
        return self._backend.xp

    @property
    def version(self) -> int:
        """How many times the tensor was changed in place; backward compares it with the value saved."""
        return self._version

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.array.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        body = repr(self.numpy()).replace("array(", "tensor(", 1)
        extra = []
        if self._backend.kind != "cpu":
            extra.append(f"device='{self._backend.name}'")
        if self.creator is not None:
            extra.append(f"grad_fn={type(self.creator).__name__}")
        elif self._rg:
            extra.append("requires_grad=True")
        if extra:
            body = body[:-1] + ", " + ", ".join(extra) + ")"
        return body

    # --- host interop -------------------------------------------------------------------
    def numpy(self):
        """A NumPy copy of the data (a host transfer for GPU tensors)."""
        arr = self._backend.to_host(self.array)
        return arr.copy() if arr is self.array else arr

    def item(self):
        if self.array.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted, got shape {self.shape}")
        return self.array.item()

    def tolist(self):
        return self.numpy().tolist()

    def __array__(self, dtype=None, copy=None):
        arr = self._backend.to_host(self.array)
        return arr if dtype is None else arr.astype(dtype, copy=False)

    def __dlpack__(self, *args, **kwargs):
        return self.array.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.array.__dlpack_device__()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        return bool(self.item())

    # --- graph --------------------------------------------------------------------------
    def detach(self) -> "Tensor":
        """Same data, cut from the graph (no copy)."""
        return _make(self.array, self._backend, False)

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if not self._rg:
            raise GraphError("retain_grad() on a tensor that does not require grad")
        if self.creator is not None:
            self._retain = True
            self.creator.watch(self)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned Tensor replaces it.

        Returns a handle with ``remove()``.
        """
        if not self._rg:
            raise GraphError("cannot register a hook on a tensor that does not require grad")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        if self.creator is not None:
            self.creator.watch(self)
        return _HookHandle(self._hooks, hook)

    # --- in place (under no_grad or on tensors outside the graph) -------------------------
    def _check_inplace(self, op: str, other=None) -> None:
        if is_grad_enabled() and (self._rg or (isinstance(other, Tensor) and other._rg)):
            raise GraphError(f"{op}: in-place change of a tensor that {'requires' if self._rg else 'would need'} "
                             f"grad (shape {self.shape}); do it under no_grad() or use the out-of-place op")

    def _other_array(self, op, other):
        if isinstance(other, Tensor):
            if other._backend is not self._backend:
                raise backends.DeviceError(f"{op}: tensors on different devices ({self._backend.name}, "
                                           f"{other._backend.name})")
            return other.array
        return other

    def _inplace(self, op, ufunc_name, other):
        self._check_inplace(op, other)
        o = self._other_array(op, other)
        try:
            getattr(self.xp, ufunc_name)(self.array, o, out=self.array, casting="same_kind")
        except (ValueError, TypeError) as e:
            raise type(e)(f"{op}: {e} (shapes {self.shape} and {getattr(o, 'shape', ())}, "
                          f"dtypes {self.dtype} and {getattr(o, 'dtype', type(o).__name__)})") from e
        self._version += 1
        return self

    def add_(self, other):
        return self._inplace("add_", "add", other)

    def sub_(self, other):
        return self._inplace("sub_", "subtract", other)

    def mul_(self, other):
        return self._inplace("mul_", "multiply", other)

    def div_(self, other):
        return self._inplace("div_", "true_divide", other)

    def mark_modified(self) -> "Tensor":
        """Record an in-place change made to ``.data`` outside the Tensor API (an ``out=`` ufunc on ``t.array``,
        ``t.array[...] = v``), so a backward that saved this tensor detects it. The in-place methods
        (``add_``, ``copy_``, ``fill_``, ``set_``, ``x[i] = v``) do this themselves."""
        self._version += 1
        return self

    def set_(self, data) -> "Tensor":
        """Make ``data`` (a NumPy or CuPy array) this tensor's array, keeping the object, its grad and graph
        role: how ``Module.to``/``astype`` move and cast parameters in place. The device follows the array."""
        if not hasattr(data, "shape") or not hasattr(data, "dtype"):
            raise TypeError(f"set_: expected a NumPy or CuPy array, got {type(data).__name__}")
        if self._rg and data.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(f"set_: a tensor that requires grad needs floating data, got dtype {data.dtype}")
        self.array = data
        self._backend = backends.backend_of(data)
        self._version += 1
        return self

    def copy_(self, other):
        self._check_inplace("copy_", other)
        src = self._other_array("copy_", other)
        shape = tuple(getattr(src, "shape", ()))
        if shape != self.shape:
            try:
                ok = self.xp.broadcast_shapes(shape, self.shape) == self.shape
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"copy_: source shape {shape} does not broadcast to the destination shape "
                                 f"{self.shape}")
        self.array[...] = src
        self._version += 1
        return self

    def fill_(self, value):
        self._check_inplace("fill_")
        self.array.fill(value)
        self._version += 1
        return self

    def zero_(self):
        return self.fill_(0)

    def __setitem__(self, index, value):
        self._check_inplace("__setitem__", value)
        if isinstance(index, Tensor):
            index = index.array
        elif isinstance(index, tuple):
            index = tuple(i.array if isinstance(i, Tensor) else i for i in index)
        try:
            self.array[index] = self._other_array("__setitem__", value)
        except (ValueError, IndexError) as e:
            raise type(e)(f"__setitem__: {e} (tensor shape {self.shape})") from e
        self._version += 1

    _IOPS = {"+=": ("add", "__add__"), "-=": ("subtract", "__sub__"), "*=": ("multiply", "__mul__"),
             "/=": ("true_divide", "__truediv__")}

    def _iop(self, name, other):
        """``x op= y``: in place outside the graph; recorded out of place (Python rebinds) inside it."""
        ufunc, op = self._IOPS[name]
        if is_grad_enabled():
            if self._rg and self.creator is None:
                raise GraphError(f"in-place {name} on a leaf tensor that requires grad (shape {self.shape}); "
                                 "wrap it in no_grad()")
            if self._rg or (isinstance(other, Tensor) and other._rg):
                return getattr(self, op)(other)
        return self._inplace(name, ufunc, other)

    def __iadd__(self, other):
        return self._iop("+=", other)

    def __isub__(self, other):
        return self._iop("-=", other)

    def __imul__(self, other):
        return self._iop("*=", other)

    def __itruediv__(self, other):
        return self._iop("/=", other)

    # Comparison operators (==, <, ...) come from the op records (autograd/ops/arithmetic.py) like the others;
    # defining __eq__ there would make Tensor unhashable, so keep identity hashing here.
    __hash__ = object.__hash__

    # Operators (+, @, [], ...) and op methods (exp, sum, reshape, to, backward, ...) are attached by
    # autograd/methods.py from the public-op records: Tensor sits below the ops and imports none of them.


class _HookHandle:
    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)
