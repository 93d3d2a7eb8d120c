"""Reverse-mode engine: walks the graph from the outputs in decreasing generation order.

A node's generation is one more than the largest of its inputs', so every
consumer of a tensor has a larger generation than its producer. Popping nodes
from a max-heap on generation therefore visits a node only after all gradient
contributions to its outputs have been summed. No recursion: any depth works.
"""
from __future__ import annotations

import heapq

from .errors import GraphError
from .core import sum_to
from .grad_mode import _mode
from .function import _version_of
from .tensor import Tensor, _make


def _seed(root: Tensor, g) -> Tensor:
    if g is None:
        if root.array.size != 1:
            raise RuntimeError(f"backward: grad can be implicitly created only for one-element outputs; "
                               f"got shape {root.shape}, so pass gradient=")
        one = root.xp.empty(root.array.shape, root.array.dtype)    # empty + fill: two C calls (ones() is Python)
        one.fill(1)
        return _make(one, root._backend, False)
    if not isinstance(g, Tensor):
        g = Tensor(g, dtype=root.dtype, device=root._backend)
    if g.shape != root.shape:
        raise ValueError(f"backward: gradient shape {g.shape} does not match output shape {root.shape}")
    if g._backend is not root._backend:
        raise RuntimeError(f"backward: gradient on {g._backend.name}, output on {root._backend.name}")
    return g


def _run_hooks(t: Tensor, g: Tensor) -> Tensor:
    for hook in list(t._hooks):
        r = hook(g)
        if r is not None:
            if not isinstance(r, Tensor) or r.shape != g.shape:
                raise ValueError(f"hook returned {type(r).__name__} of shape {getattr(r, 'shape', None)}; "
                                 f"expected a Tensor of shape {g.shape}")
            g = r
    return g


def _accumulate(t: Tensor, g: Tensor) -> None:
    """Add ``g`` into a leaf's ``.grad`` (never in place: gradients may be shared between tensors)."""
    if t._hooks:
        g = _run_hooks(t, g)
    t.grad = g if t.grad is None else t.grad + g


_backward_hook = None      # set by autograd.debug while anomaly mode or the profiler is on: hook(fn, grads)


def run_backward(roots, seeds, retain_graph: bool, create_graph: bool, targets=None):
    """Propagate ``seeds`` from ``roots`` through the graph.

    With ``targets`` (a list of tensors) the gradients reaching them are returned
    and no leaf's ``.grad`` is touched; otherwise leaves accumulate into ``.grad``.
    """
    buffers: dict = {}      # node -> list of summed gradients, one per output
    heap: list = []         # (-generation, id, node): largest generation first
    captured = leaf_slot = node_slot = None
    if targets is not None:
        captured = [None] * len(targets)
        leaf_slot = {id(t): i for i, t in enumerate(targets) if t.creator is None}
        node_slot = {(id(t.creator), t._idx): i for i, t in enumerate(targets) if t.creator is not None}

    def deliver(t, g):
        """Add gradient ``g`` for tensor ``t``: into a leaf, a target, or its node's buffer."""
        c = t.creator
        if c is None:
            if captured is None:
                _accumulate(t, g)
            elif id(t) in leaf_slot:
                i = leaf_slot[id(t)]
                captured[i] = g if captured[i] is None else captured[i] + g
            return
        buf = buffers.get(c)
        if buf is None:
            buf = buffers[c] = [None] * c.nout
            heapq.heappush(heap, (-c.generation, id(c), c))
        i = t._idx
        buf[i] = g if buf[i] is None else buf[i] + g

    hook = _backward_hook
    prev = _mode.enabled
    _mode.enabled = create_graph
    push, pop = heapq.heappush, heapq.heappop
    try:
        for r, g in zip(roots, seeds):
            deliver(r, g)
        while heap:
            fn = pop(heap)[2]
            gys = buffers.pop(fn)
            if fn.watched is not None:
                _watched_outputs(fn, gys)
            if node_slot:
                for i, g in enumerate(gys):
                    slot = node_slot.get((id(fn), i))
                    if slot is not None and g is not None:
                        captured[slot] = g if captured[slot] is None else captured[slot] + g
            inputs = fn.inputs
            if inputs is None:
                raise GraphError(f"{type(fn).__name__}: trying to backward through the graph a second time "
                                 "(its saved tensors were freed); pass retain_graph=True to the first backward")
            if fn.needs_inputs and list(map(_version_of, inputs)) != fn.versions:
                for t, v in zip(inputs, fn.versions):
                    if t._version != v:
                        _version_error(fn, t, v)
            if fn.save_output:
                o = fn.out_ref()
                if o is not None and o._version:
                    raise GraphError(f"{type(fn).__name__}: its output (shape {o.shape}) was modified in place "
                                     "after being saved for backward")
            gxs = fn.backward(*gys) if hook is None else hook(fn, gys)
            if type(gxs) is not tuple:
                gxs = (gxs,)
            for t, gx in zip(inputs, gxs):
                if gx is None or not t._rg:
                    continue
                if gx.array.shape != t.array.shape:
                    gx = sum_to(gx, t.array.shape)
                c = t.creator
                if captured is not None:
                    deliver(t, gx)
                elif c is None:         # a leaf: accumulate into .grad
                    _accumulate(t, gx)
                else:                   # an inner node (inlined deliver)
                    buf = buffers.get(c)
                    if buf is None:
                        buf = buffers[c] = [None] * c.nout
                        push(heap, (-c.generation, id(c), c))
                    i = t._idx
                    buf[i] = gx if buf[i] is None else buf[i] + gx
            if not retain_graph:
                fn.inputs = None
                fn.saved = None
            # drop this node's last input, gradients and output before the next node runs, so that arrays
            # nothing else holds can be freed (or recycled by backend.buffers) as early as possible
            t = gx = gxs = o = None
    finally:
        _mode.enabled = prev
    return captured


def _watched_outputs(fn, gys) -> None:
    """Hooks and ``retain_grad`` on the outputs of ``fn``."""
    for i, ref in fn.watched.items():
        t = ref()
        g = gys[i]
        if t is None or g is None:
            continue
        if t._hooks:
            g = gys[i] = _run_hooks(t, g)
        if t._retain:
            t.grad = g if t.grad is None else t.grad + g


def _version_error(fn, t, v):
    raise GraphError(f"{type(fn).__name__}: an input of shape {t.shape} saved for backward was modified "
                     f"in place (version {v} -> {t._version}); clone it before changing it")


def _as_list(x):
    if x is None:
        return None
    return list(x) if isinstance(x, (list, tuple)) else [x]


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph: bool = False) -> None:
    """Accumulate gradients of ``tensors`` into the ``.grad`` of every leaf they depend on."""
    tensors = _as_list(tensors)
    grads = _as_list(grad_tensors) or [None] * len(tensors)
    if len(grads) != len(tensors):
        raise ValueError(f"backward: {len(tensors)} tensors but {len(grads)} gradients")
    for t in tensors:
        if not t._rg:
            raise GraphError(f"backward: tensor of shape {t.shape} does not require grad and has no graph")
    seeds = [_seed(t, g) for t, g in zip(tensors, grads)]
    run_backward(tensors, seeds, create_graph if retain_graph is None else retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         allow_unused: bool = False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated into ``.grad``).

    Args:
        outputs: Tensor or sequence of Tensors to differentiate.
        inputs: Tensor or sequence of Tensors to differentiate with respect to.
        grad_outputs: upstream gradients (required for outputs with more than one element).
        retain_graph: keep the graph (default: ``create_graph``).
        create_graph: record the computation, so the result can be differentiated again.
        allow_unused: return ``None`` for an input the outputs do not depend on instead of raising.

    Returns:
        A tuple with one gradient (or ``None``) per input.
    """
    outputs, inputs = _as_list(outputs), _as_list(inputs)
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: input {i} is {type(t).__name__}, not a Tensor")
        if not t._rg:
            raise GraphError(f"grad: input {i} (shape {t.shape}, dtype {t.dtype}) does not require grad"
                             + ("; integer tensors have no gradient" if t.dtype.kind not in "fc" else ""))
    grads = _as_list(grad_outputs) or [None] * len(outputs)
    for t in outputs:
        if not t._rg:
            raise GraphError(f"grad: output of shape {t.shape} does not require grad and has no graph")
    seeds = [_seed(t, g) for t, g in zip(outputs, grads)]
    result = run_backward(outputs, seeds, create_graph if retain_graph is None else retain_graph,
                          create_graph, targets=inputs)
    for i, g in enumerate(result):
        if g is None and not allow_unused:
            raise GraphError(f"grad: input {i} (shape {inputs[i].shape}) is not part of the graph of the outputs; "
                             "pass allow_unused=True to get None for it")
    return tuple(result)
