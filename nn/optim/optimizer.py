"""``Optimizer``: parameter groups, per-parameter state, ``step``/``zero_grad`` and checkpoints.

Subclasses give their defaults, check a group's hyperparameters (``_check_group``), create a parameter's
state (``_init_state``) and write the update (``_update``), which runs in place on the raw arrays of the
parameter's backend with ufuncs and ``out=`` (no new arrays per step: allocating them would cost a large
share of a small model's step); SGD, Adam and AdamW override ``_update_group`` to
update all parameters of a group with one fused call (``backend.fused``: one kernel launch on the GPU). The
base class does the bookkeeping:

- ``step`` first checks every gradient (type, shape, dtype, device) and every hyperparameter, and creates
  missing state, so a failing step raises before any parameter is changed;
- the updates run under ``no_grad`` and bump each changed parameter's version counter, so a graph that saved
  the old value refuses to backward;
- temporaries come from a few scratch buffers per (device, dtype), sized once to the largest parameter, so a
  step allocates no new parameter-sized arrays;
- gradients are read, never written (they may be shared between tensors), and never copied to the host.
"""
from __future__ import annotations

import copy
from numbers import Real
from typing import Callable

import autograd as ag
from autograd import Tensor
from backends.fused import decayed_grad

__all__ = ["Optimizer"]


def _describe(p: Tensor) -> str:
    return f"shape {tuple(p.shape)}, dtype {p.dtype}, device {p.device.name}"


class Optimizer:
    """Base class of optimizers.

    Args:
        params: an iterable of Tensors, or of dicts ``{"params": [...], **hyperparameters}`` (parameter groups;
            options missing from a group take the optimizer's defaults).
        defaults: the default hyperparameters.

    Attributes:
        param_groups: list of dicts, each with ``"params"`` (a list of Tensors) and its hyperparameters.
        state: ``{parameter: {name: value}}``, the per-parameter state (moment buffers, step counts).
    """

    _n_scratch = 1          # temporaries (parameter-shaped) the update needs
    _state_keys: tuple = ()  # entries every non-empty state of a parameter must have

    def __init__(self, params, defaults: dict) -> None:
        self.defaults = dict(defaults)
        self.state: dict = {}
        self.param_groups: list[dict] = []
        self._scratch: dict = {}
        try:
            self._add_groups(params)
        except (TypeError, ValueError) as e:       # name the optimizer in every argument error
            raise type(e)(f"{type(self).__name__}: {e}") from None

    def _add_groups(self, params) -> None:
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got a Tensor ({_describe(params)}); wrap it in a list")
        if isinstance(params, dict):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            "but got a dict; pass a list of parameter groups, e.g. [{'params': ...}] "
                            "(for a module use module.parameters())")
        if isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of a set changes between runs; use a list")
        try:
            groups = list(params)
        except TypeError:
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or dicts, "
                            f"but got {type(params).__name__}") from None
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)
        if not any(g["params"] for g in self.param_groups):
            raise ValueError("optimizer got an empty parameter list")

    # --- groups -------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own hyperparameters (e.g. to unfreeze layers while training)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry (a list of Tensors)")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the ordering "
                            "of a set changes between runs; use a list")
        else:
            params = list(params)
        where = f"parameter group {len(self.param_groups)}"
        seen: dict[int, int] = {}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but {where} has a "
                                f"{type(p).__name__} at index {i}")
            if not p.is_leaf:
                raise ValueError(f"can't optimize a non-leaf Tensor ({where}, index {i}, {_describe(p)}); "
                                 "optimize the leaf it was computed from, or .detach() it into a new leaf")
            if p.dtype.kind != "f":
                raise TypeError(f"optimizer can only optimize floating-point Tensors, but {where} index {i} "
                                f"has dtype {p.dtype}")
            if id(p) in seen:
                raise ValueError(f"{where}: the parameter at index {i} ({_describe(p)}) is the same Tensor as "
                                 f"index {seen[id(p)]}; each parameter may appear only once "
                                 "(pass module.parameters(), which lists shared parameters once)")
            seen[id(p)] = i
        for other in self.param_groups:
            if any(id(q) in seen for q in other["params"]):
                raise ValueError("some parameters appear in more than one parameter group")
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_group(group)
        group["params"] = params
        self.param_groups.append(group)

    def _check_group(self, group: dict) -> None:
        """Raise ValueError for invalid hyperparameters of ``group`` (subclasses)."""

    @staticmethod
    def _check(group: dict, name: str, lo: float = 0.0, hi: float | None = None, hi_open: bool = False,
               label: str | None = None) -> None:
        """``lo <= group[name]`` (and ``<= hi`` or ``< hi``) for a real number; NaN fails."""
        v = group[name]
        if type(v) is float and lo <= v and (hi is None or (v < hi if hi_open else v <= hi)):
            return      # the common case, without the slower abstract-class checks below
        label = label or name
        if isinstance(v, Tensor) or isinstance(v, bool) or not isinstance(v, Real):
            raise TypeError(f"Invalid {label} value: {v!r} (a Python number is expected)")
        ok = lo <= v and (hi is None or (v < hi if hi_open else v <= hi))
        if not ok:
            bound = f"[{lo}, {hi})" if hi_open else (f"[{lo}, {hi}]" if hi is not None else f">= {lo}")
            raise ValueError(f"Invalid {label} value: {v} (must be {bound})")

    # --- gradients ------------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients: to None (default), or to new zero Tensors with ``set_to_none=False``.

        Gradients are replaced, never zeroed in place, because one gradient Tensor may be shared.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad = None if set_to_none else ag.zeros_like(p.grad)

    # --- the step -------------------------------------------------------------------------------
    def _hyper(self, group: dict) -> dict:
        """The group's hyperparameters as Python scalars (so float32 arrays stay float32)."""
        hp = {}
        for k, v in group.items():
            if k == "params":
                continue
            if type(v) is float or (type(v) is tuple and all(type(x) is float for x in v)):
                hp[k] = v
            elif isinstance(v, bool) or v is None or isinstance(v, str):
                hp[k] = v
            elif isinstance(v, Real):
                hp[k] = float(v)
            elif isinstance(v, (tuple, list)) and all(isinstance(x, Real) for x in v):
                hp[k] = tuple(float(x) for x in v)
            else:
                hp[k] = v
        return hp

    def _prepare(self):
        """Check every gradient and create missing state; nothing is changed on failure.

        Returns ``[(group, hyperparameters, batches)]`` for the groups with gradients, ``batches`` mapping
        ``(backend, dtype)`` to that group's ``(parameter, gradient)`` pairs in order: what one fused update
        can take at once.
        """
        work = []
        sizes: dict = {}
        for gi, group in enumerate(self.param_groups):
            self._check_group(group)
            hp = self._hyper(group)
            batches: dict = {}
            for pi, p in enumerate(group["params"]):
                g = p.grad
                if g is None:
                    continue
                if not isinstance(g, Tensor):
                    raise TypeError(f"{type(self).__name__}.step: the gradient of parameter {pi} in group {gi} is "
                                    f"a {type(g).__name__}, not a Tensor")
                pd, gd, be = p.array, g.array, p.device
                if gd.shape != pd.shape or gd.dtype != pd.dtype or g.device is not be:
                    raise ValueError(f"{type(self).__name__}.step: the gradient of parameter {pi} in group {gi} "
                                     f"does not match the parameter: gradient {_describe(g)}, parameter "
                                     f"{_describe(p)}; no parameter was changed")
                key = (be, pd.dtype)
                batch = batches.get(key)
                if batch is None:
                    batches[key] = [(p, g)]
                else:
                    batch.append((p, g))
                if pd.size > sizes.get(key, -1):
                    sizes[key] = pd.size
            if batches:
                work.append((group, hp, batches))
        # allocation only from here on: state and scratch buffers
        states = self.state
        for group, hp, batches in work:
            for (be, dt), batch in batches.items():
                for p, _ in batch:
                    state = states.get(p)
                    if not state:
                        with be.activate():
                            states[p] = self._init_state(p, hp)
                    else:
                        self._follow(state, be, dt)
        for key, size in sizes.items():
            bufs = self._scratch.get(key)
            if bufs is None or bufs[0].size < size:
                be, dt = key
                with be.activate():
                    self._scratch[key] = [be.xp.empty(size, dtype=dt) for _ in range(self._n_scratch)]
                self._views = None
        return work

    @staticmethod
    def _follow(state: dict, be, dt) -> None:
        """Move floating state buffers to the parameter's device ``be`` and dtype ``dt`` if it moved
        (``module.to``)."""
        for k, v in state.items():
            if isinstance(v, Tensor) and (v.array.dtype != dt or v.device is not be) and v.array.dtype.kind == "f":
                with be.activate():
                    state[k] = Tensor(be.asarray(v.device.to_host(v.array), dtype=dt), device=be)

    _views = None       # {parameter: (scratch buffers, shape, views)}: what _tmp made, kept while both stand

    def _tmp(self, p: Tensor, bufs: list | None = None) -> list:
        """Parameter-shaped views of the scratch buffers ``bufs`` (default: those of ``p``'s device and dtype),
        no new data; made once per parameter and buffer."""
        pd = p.array
        if bufs is None:
            bufs = self._scratch[(p.device, pd.dtype)]
        views = self._views
        if views is None:
            views = self._views = {}
        hit = views.get(p)
        if hit is not None and hit[0] is bufs and hit[1] == pd.shape:
            return hit[2]
        out = [b[:pd.size].reshape(pd.shape) for b in bufs]
        views[p] = (bufs, pd.shape, out)
        return out

    def step(self, closure: Callable | None = None):
        """Update every parameter that has a gradient; returns ``closure()``'s loss when a closure is given.

        Args:
            closure: re-evaluates the model and returns the loss (it is called with gradients enabled).
        """
        loss = None
        if closure is not None:
            with ag.enable_grad():
                loss = closure()
        work = self._prepare()
        with ag.no_grad():
            for group, hp, batches in work:
                self._update_group(hp, batches)
                for batch in batches.values():
                    for p, _ in batch:
                        p.mark_modified()
        return loss

    def _update_group(self, hp: dict, batches: dict) -> None:
        """Update one group's parameters, ``batches`` as :meth:`_prepare` gives them: ``_update`` for each
        parameter, by default.

        Optimizers with a fused group update (one kernel launch on the GPU) override this.
        """
        states = self.state
        for (be, dt), batch in batches.items():
            bufs = self._scratch[(be, dt)]
            with be.activate():
                for p, g in batch:
                    self._update(p.array, g.array, states[p], hp, self._tmp(p, bufs), be)

    def _init_state(self, p: Tensor, hp: dict) -> dict:
        """The initial state of parameter ``p`` (subclasses)."""
        return {}

    def _update(self, param, grad, state: dict, hp: dict, tmp: list, be) -> None:
        """Update the array ``param`` in place from ``grad`` (subclasses); ``tmp`` holds scratch arrays, ``be`` is
        the parameter's backend (``be.xp`` its array module, ``be.fused`` its fused updates)."""
        raise NotImplementedError

    _decayed = staticmethod(decayed_grad)     # grad + wd * param, into a scratch array

    # --- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}`` (PyTorch's layout).

        Parameters are numbered in order across groups. The state Tensors are shared with the optimizer, not
        copied (save them with ``nn.save`` or copy them to keep a snapshot).
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                s = self.state.get(p)
                if s:
                    state[index[id(p)]] = dict(s)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load hyperparameters and state saved by :meth:`state_dict` (e.g. after ``nn.load``).

        Everything is checked first (group sizes, indices, shapes of state arrays); on a problem a ValueError
        explains it and the optimizer is unchanged. State arrays are copied onto each parameter's device and
        floating ones cast to its dtype.
        """
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict or "state" not in state_dict:
            raise ValueError("optimizer state_dict must be a dict with 'state' and 'param_groups' entries")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter group(s), the optimizer has "
                             f"{len(self.param_groups)}")
        id_map: dict[int, Tensor] = {}
        for gi, (g, sg) in enumerate(zip(self.param_groups, saved_groups)):
            if not isinstance(sg, dict) or "params" not in sg:
                raise ValueError(f"loaded parameter group {gi} is not a dict with a 'params' entry")
            if len(sg["params"]) != len(g["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't match the size of "
                                 f"optimizer's group: group {gi} has {len(sg['params'])} saved parameter(s), the "
                                 f"optimizer's has {len(g['params'])}")
            for i, p in zip(sg["params"], g["params"]):
                id_map[int(i)] = p
        new_groups = []
        for g, sg in zip(self.param_groups, saved_groups):
            ng = {k: copy.deepcopy(v) for k, v in sg.items() if k != "params"}
            ng["params"] = g["params"]
            self._check_group({**g, **ng})
            new_groups.append(ng)
        new_state = {}
        for k, s in state_dict["state"].items():
            try:
                p = id_map[int(k)]
            except (KeyError, ValueError, TypeError):
                raise ValueError(f"loaded optimizer state refers to parameter {k!r}, which is not in any "
                                 "saved parameter group") from None
            if not isinstance(s, dict):
                raise ValueError(f"loaded state of parameter {k} is a {type(s).__name__}, not a dict")
            missing = [name for name in self._state_keys if name not in s]
            if s and missing:
                raise ValueError(f"loaded state of parameter {k} lacks {missing} (saved by another optimizer "
                                 f"than {type(self).__name__}?)")
            new_state[p] = {name: self._load_value(p, k, name, v) for name, v in s.items()}
        self.param_groups = [{**g, **ng} for g, ng in zip(self.param_groups, new_groups)]
        self.state = new_state

    @staticmethod
    def _load_value(p: Tensor, k, name: str, v):
        """A state value moved to ``p``'s device (floating arrays cast to its dtype); shapes are checked."""
        if isinstance(v, Tensor):
            arr = v.array
        elif hasattr(v, "__array_interface__") or hasattr(v, "__cuda_array_interface__"):
            arr = v
        elif name == "step" and isinstance(v, Real) and float(v).is_integer():
            return int(v)
        else:
            return copy.deepcopy(v)
        if arr.ndim == 0 and name == "step":      # PyTorch keeps the step count in a 0-d tensor
            step = arr.item()
            return int(step) if float(step).is_integer() else float(step)
        if arr.ndim and tuple(arr.shape) != tuple(p.shape):
            raise ValueError(f"loaded optimizer state '{name}' of parameter {k} has shape {tuple(arr.shape)}, but "
                             f"the parameter has shape {tuple(p.shape)}")
        dtype = p.dtype if arr.dtype.kind in "fc" else None
        with p.device.activate():
            new = p.device.asarray(arr, dtype=dtype)
            if new is arr:
                new = new.copy()      # never share memory with the loaded dict
        return Tensor(new, device=p.device)

    # --- misc -------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)

    def __getstate__(self):
        d = dict(self.__dict__)
        d["_scratch"] = {}
        d.pop("_views", None)
        return d

