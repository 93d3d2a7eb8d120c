"""``Parameter``: a leaf Tensor that a Module registers as learnable."""
from __future__ import annotations

from autograd import Tensor


class Parameter(Tensor):
    """A Tensor that requires grad by default and is collected by ``Module.parameters()``."""

    def __init__(self, data, requires_grad: bool = True, dtype=None, device=None):
        super().__init__(data.detach() if isinstance(data, Tensor) and not dtype and not device else data,
                         requires_grad=requires_grad, dtype=dtype, device=device)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
