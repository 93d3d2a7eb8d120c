"""``Module``, the base of every layer, and the containers ``Sequential``, ``ModuleList`` and ``ModuleDict``.

Assigning a :class:`~nn.Parameter`, a ``Module`` or (for names registered with
``register_buffer``) a Tensor to an attribute registers it, as in PyTorch, so
``parameters()``, ``state_dict()``, ``to()``, ``train()`` ... find it.
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple
from typing import Iterator

import autograd as ag
import backends
from autograd import Tensor

from . import functional as F
from .parameter import Parameter

__all__ = ["Module", "Sequential", "ModuleList", "ModuleDict", "Identity", "Flatten", "StateDictError",
           "IncompatibleKeys"]

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class StateDictError(RuntimeError, KeyError, ValueError):
    """``load_state_dict`` found missing, unexpected or mis-shaped entries (nothing was loaded)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _addindent(text: str, n: int = 2) -> str:
    lines = text.split("\n")
    return lines[0] + "".join("\n" + " " * n + line for line in lines[1:])


class Module:
    """Base class of layers and models.

    Subclasses call ``super().__init__()`` first, create parameters and submodules as attributes, and
    define ``forward``; calling the module runs ``forward``.
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())

    # --- registration ---------------------------------------------------------------------
    def _check_init(self, what: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before {type(self).__name__}.__init__() called "
                                 "super().__init__()")

    def __setattr__(self, name: str, value) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            self._check_init("parameters")
            self._forget(name)
            params[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' of "
                                f"{type(self).__name__} (nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            self._check_init("submodules")
            self._forget(name)
            self._modules[name] = value
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' of "
                                f"{type(self).__name__} (nn.Module or None expected)")
            self._modules[name] = None
        elif params is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' of "
                                f"{type(self).__name__} (Tensor or None expected)")
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        """Drop ``name`` from every registry and the instance dict (before re-registering it)."""
        self.__dict__.pop(name, None)
        for reg in (self._parameters, self._buffers, self._modules):
            reg.pop(name, None)
        self._non_persistent.discard(name)

    def __getattr__(self, name: str):
        # only called when normal lookup fails: parameters, buffers and submodules live in the registries
        # (unrolled: a layer's forward reads its parameters through here on every call)
        d = self.__dict__
        r = d.get("_parameters")
        if r is not None and name in r:
            return r[name]
        r = d.get("_buffers")
        if r is not None and name in r:
            return r[name]
        r = d.get("_modules")
        if r is not None and name in r:
            return r[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for reg in ("_parameters", "_buffers", "_modules"):
            r = self.__dict__.get(reg)
            if r is not None and name in r:
                del r[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    def _check_name(self, name, kind: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name must be a string, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(f"{kind} name {name!r} must be non-empty and contain no '.'")
        if hasattr(self, name) and name not in self._parameters and name not in self._buffers \
                and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists on {type(self).__name__}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder) under ``name``."""
        self._check_init("parameters")
        self._check_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot register '{type(param).__name__}' as parameter '{name}' "
                            "(nn.Parameter or None expected)")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a buffer: state that is saved and moved with the module but not learned (e.g. running means).

        Non-persistent buffers are left out of ``state_dict()``.
        """
        self._check_init("buffers")
        self._check_name(name, "buffer")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot register '{type(tensor).__name__}' as buffer '{name}' (Tensor or None expected)")
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under ``name``."""
        self._check_init("submodules")
        self._check_name(name, "module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._forget(name)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        mod = self
        for part in target.split(".") if target else []:
            if part not in mod._modules:
                raise AttributeError(f"{type(mod).__name__} has no submodule '{part}' (in '{target}')")
            mod = mod._modules[part]
        return mod

    # --- iteration ------------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True):
        """(name, module) for this module and every descendant, depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool = True):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, t in getattr(mod, registry).items():
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield mod_prefix + ("." if mod_prefix else "") + name, t

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter), each shared parameter once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # --- modes and bulk changes ----------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active, batch statistics) on this module and all descendants."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode): mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient (to None; or to zeros with ``set_to_none=False``)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = ag.zeros_like(p.grad)

    def apply(self, fn) -> Module:
        """Call ``fn(m)`` on every descendant, then on this module (e.g. for custom initialisation)."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def _tensors(self):
        """Every parameter and buffer of the module tree (each once)."""
        seen = set()
        for m in self.modules():
            for reg in (m._parameters, m._buffers):
                for t in reg.values():
                    if t is not None and id(t) not in seen:
                        seen.add(id(t))
                        yield t

    def to(self, device=None, dtype=None) -> Module:
        """Move every parameter and buffer to ``device`` and/or cast floating ones to ``dtype``, in place.

        The Parameter objects stay the same (so references held elsewhere, e.g. by an optimizer, remain
        valid); their data, gradients and device change. Integer buffers keep their dtype.
        """
        if dtype is None and device is not None and not isinstance(device, (backends.Backend, backends.device)):
            if not isinstance(device, str):             # to(ag.float64)
                device, dtype = None, device
            else:
                try:
                    backends.parse_device(device)
                except backends.DeviceError:
                    try:                                # to("float64")
                        backends.host.dtype(device)
                    except TypeError:
                        raise backends.DeviceError(f"Module.to: {device!r} is neither a device ('cpu', 'cuda', "
                                                   "'cuda:N') nor a dtype") from None
                    device, dtype = None, device
        be = backends.get_backend(device) if device is not None else None
        dt = None if dtype is None else backends.host.dtype(dtype)
        if dt is not None and dt.kind != "f":
            raise TypeError(f"Module.to/astype: only floating dtypes are allowed, got {dt}")
        for t in self._tensors():
            _move(t, be, dt)
        return self

    def astype(self, dtype) -> Module:
        """Cast floating-point parameters and buffers to ``dtype`` in place."""
        return self.to(dtype=dtype)

    def double(self) -> Module:
        return self.astype("float64")

    def float(self) -> Module:
        return self.astype("float32")

    def half(self) -> Module:
        return self.astype("float16")

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, index: int = 0) -> Module:
        return self.to(f"cuda:{index}")

    # --- state ----------------------------------------------------------------------------
    def _state_items(self, prefix: str = ""):
        """(name, tensor) for every parameter and persistent buffer; shared tensors under every name."""
        for mod_prefix, mod in self.named_modules(prefix=prefix, remove_duplicate=False):
            p = mod_prefix + ("." if mod_prefix else "")
            for name, t in mod._parameters.items():
                if t is not None:
                    yield p + name, t
            for name, t in mod._buffers.items():
                if t is not None and name not in mod._non_persistent:
                    yield p + name, t

    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """An ordered ``{name: tensor}`` of parameters and persistent buffers.

        The tensors are detached and share memory with the module (as in PyTorch); copy them to keep a
        snapshot that later training will not change.
        """
        out = OrderedDict() if destination is None else destination
        for name, t in self._state_items(prefix):
            out[name] = t if keep_vars else t.detach()
        return out

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy values from ``state_dict`` (Tensors or NumPy arrays) into this module's tensors.

        Every key and shape is checked first; on any problem one :class:`StateDictError` lists all missing,
        unexpected and mis-shaped entries and the module is left untouched. Values are cast to each
        existing tensor's dtype and copied onto its device. With ``strict=False`` missing and unexpected
        keys are allowed (and returned); shape mismatches still raise.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"load_state_dict expects a mapping of names to tensors, got {type(state_dict).__name__}")
        own = OrderedDict(self._state_items())
        given = list(state_dict.keys())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in given if k not in own]
        mismatched, bad = [], []
        prepared = []
        for k, t in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            try:
                arr = _as_array(v, t)
            except Exception as e:  # noqa: BLE001  (reported together with the other problems)
                bad.append(f"{k}: {type(v).__name__} could not be converted ({e})")
                continue
            if tuple(arr.shape) != tuple(t.shape):
                mismatched.append(f"{k}: checkpoint shape {tuple(arr.shape)}, model shape {tuple(t.shape)}")
                continue
            prepared.append((t, arr))
        problems = []
        if missing and strict:
            problems.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
        if unexpected and strict:
            problems.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
        if mismatched:
            problems.append("Size mismatch: " + "; ".join(mismatched) + ".")
        if bad:
            problems.append("Bad value(s): " + "; ".join(bad) + ".")
        if problems:
            raise StateDictError(f"Error(s) in loading state_dict for {type(self).__name__} (nothing was loaded):"
                                 "\n\t" + "\n\t".join(problems))
        with ag.no_grad():
            for t, arr in prepared:
                t.array[...] = arr
                t.mark_modified()
        return IncompatibleKeys(missing, unexpected)

    # --- calling ----------------------------------------------------------------------------
    def _input(self, x, like: Tensor | None, what: str = "input") -> Tensor:
        """``x`` as a Tensor for this layer, under the one dtype rule for layers (every layer calls this one check).

        Parameters keep their dtype: a Tensor or array input of any other dtype raises TypeError naming the
        layer and both dtypes (PyTorch's "expected ... dtype" error), so a float64 or integer input never
        promotes a float32 layer. Python numbers and lists carry no dtype and take ``like``'s. With
        ``like=None`` (a layer without parameters or buffers) only the conversion happens.
        """
        if isinstance(x, Tensor) and (like is None or x.array.dtype is like.array.dtype):
            return x        # the common case (dtype objects of one type are shared), in two checks
        if not isinstance(x, Tensor):
            if like is None:
                return ag.as_tensor(x)
            if hasattr(x, "dtype"):
                x = ag.as_tensor(x, device=like.device)
            else:
                return ag.tensor(x, dtype=like.dtype, device=like.device)
        if like is not None and x.array.dtype != like.array.dtype:
            hint = f" or the layer with .astype('{x.dtype}')" if x.array.dtype.kind == "f" else ""
            raise TypeError(f"{self!r}: expected {what} of dtype {like.dtype} (the dtype of its parameters), got "
                            f"{x.dtype} (shape {tuple(x.shape)}); cast the {what} with .astype('{like.dtype}')"
                            + hint)
        return x

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward() method")

    def __call__(self, *args, **kwargs):
        if not self._forward_pre_hooks and not self._forward_hooks:
            return self.forward(*args, **kwargs)        # the common case: no hooks to run
        for hook in list(self._forward_pre_hooks.values()):
            r = hook(self, args)
            if r is not None:
                args = r if isinstance(r, tuple) else (r,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            r = hook(self, args, out)
            if r is not None:
                out = r
        return out

    def register_forward_hook(self, hook):
        """``hook(module, args, output)`` after every forward; a non-None result replaces the output."""
        return _Handle(self._forward_hooks, hook)

    def register_forward_pre_hook(self, hook):
        """``hook(module, args)`` before every forward; a non-None result replaces the arguments."""
        return _Handle(self._forward_pre_hooks, hook)

    # --- printing ---------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside this module's parentheses in ``repr`` (override in layers)."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        for name, m in self._modules.items():
            lines.append(f"({name}): " + _addindent(repr(m), 2))
        if not self._modules:
            return f"{self._get_name()}({extra})"
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


class _Handle:
    _next = 0

    def __init__(self, hooks: OrderedDict, hook):
        _Handle._next += 1
        self.id = _Handle._next
        self._table = hooks
        hooks[self.id] = hook

    def remove(self) -> None:
        self._table.pop(self.id, None)


def _as_array(value, like: Tensor):
    """``value`` (Tensor, NumPy/CuPy array, array-like) as an array on ``like``'s device with its dtype."""
    be = like.device
    src = value.array if isinstance(value, Tensor) else value
    if not hasattr(src, "shape"):
        src = backends.host.asarray(src)
    arr = be.asarray(src)
    return arr.astype(like.dtype, copy=False)


def _move(t: Tensor, be, dtype) -> None:
    """Put ``t``'s data on backend ``be`` and/or cast it to ``dtype``, keeping the object (and its grad)."""
    data = t.array
    changed = False
    if be is not None and be is not t.device:
        data = be.asarray(data)
        changed = True
    if dtype is not None and data.dtype.kind == "f" and data.dtype != dtype:
        data = data.astype(dtype)
        changed = True
    if not changed:
        return
    t.set_(data)
    if t.grad is not None:
        g = t.grad
        garr = (be.asarray(g.array) if be is not None and be is not g.device else g.array)
        if dtype is not None and garr.dtype.kind == "f":
            garr = garr.astype(dtype, copy=False)
        t.grad = ag.as_tensor(garr, device=be if be is not None else g.device)


class Sequential(Module):
    """Modules applied in order: ``Sequential(m1, m2, ...)`` or ``Sequential(OrderedDict(name=m, ...))``."""

    def __init__(self, *modules) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (OrderedDict, dict)):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def _index(self, idx: int) -> str:
        n = len(self._modules)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for {type(self).__name__} of length {n}")
        return list(self._modules)[idx % n]

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(OrderedDict(list(self._modules.items())[idx]))
        return self._modules[self._index(idx)]

    def __setitem__(self, idx: int, module: Module) -> None:
        setattr(self, self._index(idx), module)

    def __delitem__(self, idx) -> None:
        keys = list(self._modules)[idx] if isinstance(idx, slice) else [self._index(idx)]
        for k in keys:
            del self._modules[k]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> Sequential:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        mods = list(self._modules.values())
        n = len(mods)
        if not -n <= index <= n:
            raise IndexError(f"index {index} is out of range for insert into {type(self).__name__} of length {n}")
        mods.insert(index if index >= 0 else index + n, module)
        self._modules.clear()
        for i, m in enumerate(mods):
            self.add_module(str(i), m)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (it has no ``forward``)."""

    def __init__(self, modules=None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, idx: int) -> str:
        n = len(self._modules)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for ModuleList of length {n}")
        return str(idx % n)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return self._modules[self._index(idx)]

    def __setitem__(self, idx: int, module: Module) -> None:
        setattr(self, self._index(idx), module)

    def __delitem__(self, idx) -> None:
        mods = list(self._modules.values())
        del mods[idx]
        self._modules.clear()
        self.extend(mods)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __iadd__(self, modules) -> ModuleList:
        return self.extend(modules)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        mods = list(self._modules.values())
        mods.insert(index, module)
        self._modules.clear()
        self.extend(mods)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(); iterate over it and call its modules")


class ModuleDict(Module):
    """A dict of modules whose parameters are registered."""

    def __init__(self, modules=None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def update(self, modules) -> None:
        items = modules.items() if hasattr(modules, "items") else modules
        for k, m in items:
            self.add_module(k, m)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict has no forward(); index it and call its modules")


class Identity(Module):
    """Returns its input (arguments are accepted and ignored)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    """Merge axes ``start_dim`` .. ``end_dim`` (default: all but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return F.flatten(x, self.start_dim, self.end_dim, _op=self)     # errors name the layer

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
