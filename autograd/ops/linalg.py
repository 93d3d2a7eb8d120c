"""Matrix products: ``matmul`` (NumPy's broadcasting rules), PyTorch's fixed-rank ``mm``, ``bmm``, ``mv``, ``dot``,
``outer``, and ``einsum``."""
from __future__ import annotations

import string

from ..function import Function
from ..spec import OpSpec, composite, public
from ..tensor import Tensor
from ._util import const, pair
from .shape import broadcast_to, reshape, sum_to, transpose, unsqueeze


def _matmul_sample(d):
    """Shapes for matmul: 1-D or (batched, broadcast) 2-D operands with a matching inner size."""
    n, k, m = d.int(1, 4), d.int(1, 4), d.int(1, 4)
    batch = d.shape(max_dims=2)
    a = (k,) if d.int(0, 4) == 0 else batch[d.int(0, len(batch)):] + (n, k)
    b = (k,) if d.int(0, 4) == 0 else tuple(1 if d.bool() else s for s in batch) + (k, m)
    return [d.array(a), d.array(b)], {}


def _mT(x: Tensor) -> Tensor:
    """Swap the last two axes."""
    return transpose(x, -2, -1)


class MatMul(Function):
    """f = x @ y (NumPy semantics, batched);  df/dx = g @ yᵀ, df/dy = xᵀ @ g."""
    spec = OpSpec(ref=lambda np, x, y: np.matmul(x, y), nargs=2, sample=_matmul_sample, call=lambda x, y: x @ y)

    def forward(self, x, y):
        if x.ndim == 0 or y.ndim == 0:
            raise ValueError("matmul: operands must be at least 1-D (use * for scalars)")
        return self.xp.matmul(x, y)

    def backward(self, gy):
        x, y = self.inputs
        if y.ndim == 1:              # (..., n, k) @ (k,) -> (..., n)
            g = unsqueeze(gy, -1)
            return g * y, g * x
        if x.ndim == 1:              # (k,) @ (..., k, m) -> (..., m)
            g = unsqueeze(gy, -2)
            return (g * y).sum(axis=-1), unsqueeze(x, -1) * g
        # batch axes that were broadcast are summed back by the engine
        return matmul(gy, _mT(y)), matmul(_mT(x), gy)


@public(MatMul, method=True, operators=('__matmul__',), roperators=('__rmatmul__',))
def matmul(x, y) -> Tensor:
    return MatMul.apply(*pair(x, y))


__all__ = ["matmul", "mm", "bmm", "mv", "dot", "outer", "einsum"]


# --- PyTorch's fixed-rank products ---------------------------------------------------------------------------
def _operands(name: str, a, b, ranks: tuple, what: tuple) -> None:
    """Check two tensors of one dtype with the ranks ``ranks``; the error names the op, shapes and dtypes."""
    for t, r, w in zip((a, b), ranks, what):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: expected a Tensor for {w}, got {type(t).__name__}")
        if t.ndim != r:
            raise ValueError(f"{name}: expected {w} to be {r}-D, got shape {t.shape}")
    if a.dtype != b.dtype:
        raise TypeError(f"{name}: expected both tensors to have the same dtype, got {a.dtype} and {b.dtype}")


@public(method=True)
def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """Matrix product of two 2-D tensors (n, k) @ (k, m) -> (n, m); no broadcasting."""
    _operands("mm", input, mat2, (2, 2), ("input", "mat2"))
    if input.shape[1] != mat2.shape[0]:
        raise ValueError(f"mm: shapes {input.shape} and {mat2.shape} cannot be multiplied "
                         f"({input.shape[1]} != {mat2.shape[0]})")
    return matmul(input, mat2)


@public(method=True)
def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched matrix product of two 3-D tensors (b, n, k) @ (b, k, m) -> (b, n, m); no broadcasting."""
    _operands("bmm", input, mat2, (3, 3), ("input", "mat2"))
    if input.shape[0] != mat2.shape[0] or input.shape[2] != mat2.shape[1]:
        raise ValueError(f"bmm: shapes {input.shape} and {mat2.shape} do not match: expected mat2 of shape "
                         f"({input.shape[0]}, {input.shape[2]}, m)")
    return matmul(input, mat2)


@public(method=True)
def mv(input: Tensor, vec: Tensor) -> Tensor:
    """Matrix-vector product (n, k) @ (k,) -> (n,)."""
    _operands("mv", input, vec, (2, 1), ("input", "vec"))
    if input.shape[1] != vec.shape[0]:
        raise ValueError(f"mv: shapes {input.shape} and {vec.shape} cannot be multiplied "
                         f"({input.shape[1]} != {vec.shape[0]})")
    return matmul(input, vec)


@public(method=True)
def dot(input: Tensor, other: Tensor) -> Tensor:
    """Inner product of two 1-D tensors of one length and dtype (0-d result)."""
    _operands("dot", input, other, (1, 1), ("input", "other"))
    if input.shape != other.shape:
        raise ValueError(f"dot: the vectors have different lengths: shapes {input.shape} and {other.shape}")
    return matmul(input, other)


@public(method=True, aliases=("ger",))
def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """Outer product of two 1-D tensors: out[i, j] = input[i] · vec2[j] (dtypes promote, as in PyTorch)."""
    for t, w in ((input, "input"), (vec2, "vec2")):
        if not isinstance(t, Tensor):
            raise TypeError(f"outer: expected a Tensor for {w}, got {type(t).__name__}")
        if t.ndim != 1:
            raise ValueError(f"outer: expected {w} to be 1-D, got shape {t.shape}")
    return reshape(input, (input.shape[0], 1)) * reshape(vec2, (1, vec2.shape[0]))


def _sizes(d, n):
    return [d.int(0, 3) for _ in range(n)]


def _pair_sample(shape_a, shape_b):
    def sample(d):
        n, k, m, b = _sizes(d, 4)
        env = {"n": n, "k": k, "m": m, "b": b}
        return [d.array(tuple(env[c] for c in shape_a)), d.array(tuple(env[c] for c in shape_b))], {}
    return sample


composite("mm", OpSpec(ref=lambda np, a, b: a @ b, call=lambda a, b: mm(a, b), nargs=2,
                       sample=_pair_sample("nk", "km")))
composite("bmm", OpSpec(ref=lambda np, a, b: a @ b, call=lambda a, b: bmm(a, b), nargs=2,
                        sample=_pair_sample("bnk", "bkm")))
composite("mv", OpSpec(ref=lambda np, a, b: a @ b, call=lambda a, b: mv(a, b), nargs=2, sample=_pair_sample("nk", "k")))
composite("dot", OpSpec(ref=lambda np, a, b: np.dot(a, b), call=lambda a, b: dot(a, b), nargs=2,
                        sample=_pair_sample("k", "k")))
composite("outer", OpSpec(ref=lambda np, a, b: np.outer(a, b), call=lambda a, b: outer(a, b), nargs=2,
                          sample=_pair_sample("n", "m")))


# --- einsum --------------------------------------------------------------------------------------------------
_LETTERS = string.ascii_uppercase + string.ascii_lowercase      # PyTorch's order of implicit output subscripts


def _parse_einsum(equation: str, shapes: list) -> tuple[list, str]:
    """``equation`` as explicit subscripts, one letter per dim: ``(inputs, output)``. Spaces are dropped; ``...``
    becomes letters the equation does not use (right-aligned, broadcast, leading the implicit output); without
    ``->`` the output is ``...`` then the letters used once, in PyTorch's (ASCII) order."""
    if not isinstance(equation, str):
        raise TypeError(f"einsum: the equation must be a string, got {type(equation).__name__}")
    eq = equation.replace(" ", "")
    if eq.count("->") > 1:
        raise ValueError(f"einsum: more than one '->' in {equation!r}")
    lhs, arrow, out = eq.partition("->")
    subs = lhs.split(",")
    if len(subs) != len(shapes):
        raise ValueError(f"einsum: {equation!r} has subscripts for {len(subs)} operand(s), got {len(shapes)} "
                         f"operand(s) of shapes {[tuple(s) for s in shapes]}")
    for part in subs + [out]:
        rest = part.replace("...", "", 1)
        bad = [c for c in rest if c not in _LETTERS]
        if bad:
            raise ValueError(f"einsum: invalid subscript {bad[0]!r} in {equation!r} (letters and one '...' per "
                             "operand only)")
    spare = [c for c in _LETTERS if c not in eq]
    n_ell = 0
    for i, (s, shape) in enumerate(zip(subs, shapes)):
        named = len(s.replace("...", ""))
        if ("..." in s and len(shape) < named) or ("..." not in s and len(shape) != named):
            raise ValueError(f"einsum: operand {i} has {len(shape)} dim(s) (shape {tuple(shape)}) but its subscripts "
                             f"{s!r} name {named}")
        if "..." in s:
            n_ell = max(n_ell, len(shape) - named)
    ell = "".join(spare[:n_ell])
    subs = [s.replace("...", ell[n_ell - (len(shape) - len(s) + 3):]) if "..." in s else s
            for s, shape in zip(subs, shapes)]
    if arrow:
        out = out.replace("...", ell)               # without '...' in the output, those dims are summed
        for c in out:
            if out.count(c) > 1:
                raise ValueError(f"einsum: output subscript {c!r} appears more than once in {equation!r}")
            if not any(c in s for s in subs):
                raise ValueError(f"einsum: output subscript {c!r} does not appear in the inputs of {equation!r}")
    else:
        joined = "".join(subs)
        once = (c for c in set(joined) if joined.count(c) == 1 and c not in ell)
        out = ell + "".join(sorted(once, key=_LETTERS.index))
    sizes: dict = {}
    for i, (s, shape) in enumerate(zip(subs, shapes)):
        seen: dict = {}
        for c, n in zip(s, shape):
            if c in seen and seen[c] != n:
                raise ValueError(f"einsum: subscript {c!r} repeats in operand {i} over dims of different sizes "
                                 f"(shape {tuple(shape)})")
            seen[c] = n
            if n != 1:
                if sizes.get(c, n) != n:
                    raise ValueError(f"einsum: subscript {c!r} has sizes {sizes[c]} and {n} in "
                                     f"{equation!r} (shapes {[tuple(s) for s in shapes]})")
                sizes[c] = n
    return subs, out


def _einsum_sample(d):
    eq = d.choice(["ij,jk->ik", "bij,bjk->bik", "ii", "ii->i", "ij->ji", "i,j->ij", "bi,ij,bj->b", "ij->", "ba",
                   "i,i", "iij->j", "ij,j", "...ij,...jk->...ik", "...i->...", "ij,kj->ikj"])
    lhs = eq.split("->")[0].split(",")
    size = {c: d.int(0, 3) for c in "ijkab"}
    batch = d.shape(max_dims=2, min_side=1, max_side=3)
    shapes = []
    for s in lhs:
        lead = batch[d.int(0, len(batch)):] if "..." in s else ()
        shapes.append(tuple(lead) + tuple(size[c] for c in s.replace("...", "")))
    return [d.array(s) for s in shapes], {"equation": eq}


class Einsum(Function):
    """f = einsum(equation, x1, ..., xn) (explicit subscripts);  df/dxk = einsum of the gradient and the other
    operands into xk's subscripts: a subscript only xk has (summed out) is broadcast back, and a repeated one
    ('ii') puts the gradient on the diagonal."""
    spec = OpSpec(ref=lambda np, *xs, equation: np.einsum(equation, *xs),
                  call=lambda *xs, equation: einsum(equation, *xs), sample=_einsum_sample)

    def forward(self, *xs):
        return self.xp.einsum(f"{','.join(self.subs)}->{self.out}", *xs, optimize=len(xs) > 1)

    def backward(self, gy):
        return tuple(self._grad(k, gy) for k in range(len(self.inputs)))

    def _grad(self, k: int, gy: Tensor):
        x = self.inputs[k]
        if not x.requires_grad:
            return None
        s = self.subs[k]
        others = [i for i in range(len(self.inputs)) if i != k]
        reached = set(self.out).union(*(self.subs[i] for i in others))
        firsts = "".join(c for i, c in enumerate(s) if s.index(c) == i)          # distinct, in order
        got = "".join(c for c in firsts if c in reached)
        g = einsum(",".join([self.out] + [self.subs[i] for i in others]) + "->" + got,
                   gy, *[self.inputs[i] for i in others])
        # one axis per dim of x: the sizes of `got`, size 1 for summed-out subscripts and repeats
        sizes = dict(zip(got, g.shape))
        g = reshape(g, tuple(sizes.get(c, 1) if s.index(c) == i else 1 for i, c in enumerate(s)))
        shape = tuple(gn if gn != 1 else xn for gn, xn in zip(g.shape, x.shape))
        g = broadcast_to(g, shape)
        if len(firsts) < len(s):                    # repeated subscripts: only the diagonal gets a gradient
            xp = x.xp
            mask = xp.ones((1,) * len(s), dtype=bool)
            for i, c in enumerate(s):
                j = s.index(c)
                if j < i:
                    n = x.shape[i]
                    eye = xp.eye(n, dtype=bool).reshape(tuple(n if a in (i, j) else 1 for a in range(len(s))))
                    mask = mask & eye
            g = g * const(mask.astype(g.dtype), g)
        return g if g.shape == x.shape else sum_to(g, x.shape)


@public(Einsum)
def einsum(equation: str, *operands) -> Tensor:
    """Einstein summation, ``torch.einsum``: ``einsum('ij,jk->ik', a, b)`` or ``einsum('ij,jk', [a, b])``.

    Letters name dims (upper and lower case), ``...`` the leading broadcast dims; without ``->`` the output holds
    the letters used once, in alphabetical order (upper case first). Differentiable in every operand.
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum: needs at least one operand")
    for i, t in enumerate(operands):
        if not isinstance(t, Tensor):
            raise TypeError(f"einsum: operand {i} is a {type(t).__name__}, expected a Tensor")
    if len({t.dtype for t in operands}) > 1:
        raise TypeError(f"einsum: operands must have one dtype, got {[str(t.dtype) for t in operands]}")
    subs, out = _parse_einsum(equation, [t.shape for t in operands])
    return Einsum.apply(*operands, subs=subs, out=out)
