"""Turn an op's OpSpec into hypothesis draws.

``Drawer`` wraps hypothesis's ``draw`` with the small vocabulary the specs use,
so op modules never import hypothesis.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


class Drawer:
    def __init__(self, draw):
        self._draw = draw

    def int(self, lo: int, hi: int) -> int:
        return self._draw(st.integers(lo, hi))

    def bool(self) -> bool:
        return self._draw(st.booleans())

    def choice(self, seq):
        return self._draw(st.sampled_from(list(seq)))

    def floats(self, lo: float, hi: float) -> float:
        return self._draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))

    def permutation(self, seq) -> list:
        return self._draw(st.permutations(list(seq)))

    def shape(self, min_dims: int = 0, max_dims: int = 3, min_side: int = 0, max_side: int = 4) -> tuple:
        return self._draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                                           max_side=max_side))

    def shapes_broadcast(self, n: int, max_dims: int = 3, min_side: int = 0) -> list:
        """``n`` mutually broadcastable shapes (0-d, size-1 and empty included)."""
        r = self._draw(hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=max_dims,
                                                         min_side=min_side, max_side=4))
        return list(r.input_shapes)

    def axis(self, ndim: int):
        """None, one axis (possibly negative) or a tuple of distinct axes."""
        if ndim == 0:
            return None
        kind = self.int(0, 2)
        if kind == 0:
            return None
        if kind == 1:
            return self.int(-ndim, ndim - 1)
        return tuple(sorted(self._draw(st.sets(st.integers(0, ndim - 1), min_size=1, max_size=ndim))))

    def index_array(self, n: int, k: int):
        return np.asarray(self._draw(st.lists(st.integers(-n, n - 1), min_size=k, max_size=k)), dtype=np.int64)

    def bool_array(self, shape):
        return self._draw(hnp.arrays(np.bool_, shape))

    def array(self, shape, lo: float = -3.0, hi: float = 3.0, avoid=(), margin: float = 0.1):
        """float64 values in [lo, hi], kept at least ``margin`` from each point in ``avoid``."""
        x = self._draw(hnp.arrays(np.float64, shape, elements=st.floats(lo, hi, allow_nan=False,
                                                                        allow_infinity=False, width=64)))
        for p in avoid:
            near = np.abs(x - p) < margin
            if near.any():
                # push away from p, staying inside [lo, hi]
                up = np.where(p + 2 * margin <= hi, p + 2 * margin, p - 2 * margin)
                x = np.where(near, np.where(x >= p, up, np.where(p - 2 * margin >= lo, p - 2 * margin, up)), x)
        return x


def _per_input(value, n):
    if isinstance(value, list):
        return value
    return [value] * n


def sample_strategy(spec):
    """A strategy giving ``(arrays, kwargs)`` for one op spec."""

    @st.composite
    def strat(draw):
        d = Drawer(draw)
        if spec.sample is not None:
            arrays, kwargs = spec.sample(d)
        else:
            if callable(spec.shapes):
                shapes = spec.shapes(d)
            elif spec.shapes == "broadcast":
                shapes = d.shapes_broadcast(spec.nargs, spec.max_dims)
            elif spec.shapes == "same":
                shapes = [d.shape(max_dims=spec.max_dims)] * spec.nargs
            elif spec.shapes == "nonempty":
                shapes = [d.shape(max_dims=spec.max_dims, min_side=1)] * spec.nargs
            elif spec.shapes == "min1dim":
                shapes = [d.shape(min_dims=1, max_dims=spec.max_dims, min_side=1)] * spec.nargs
            elif spec.shapes == "min2":
                shapes = [d.shape(min_dims=1, max_dims=spec.max_dims, min_side=2, max_side=4)] * spec.nargs
            else:
                raise ValueError(f"unknown shape rule {spec.shapes!r}")
            domains = _per_input(spec.domain, len(shapes))
            avoids = _per_input(spec.avoid, len(shapes))
            arrays = [d.array(s, lo, hi, avoid, spec.margin) for s, (lo, hi), avoid in zip(shapes, domains, avoids)]
            kwargs = spec.kwargs(d, shapes) if spec.kwargs else {}
        if spec.prepare is not None:
            arrays = list(spec.prepare(np, arrays))
        return arrays, kwargs

    return strat()
