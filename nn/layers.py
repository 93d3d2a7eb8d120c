"""Layers: dense, activations, dropout, batch normalisation, embedding (Flatten and Identity live in module.py).

Names, arguments, parameter names/shapes and default initialisation follow
PyTorch, so a PyTorch ``state_dict`` converted to NumPy loads unchanged.
"""
from __future__ import annotations

import autograd as ag
from autograd import Tensor

from . import functional as F
from . import init
from .module import Flatten, Identity, Module  # noqa: F401  (re-exported)
from .parameter import Parameter

__all__ = ["Identity", "Flatten", "Linear", "ReLU", "LeakyReLU", "PReLU", "RReLU", "Sigmoid", "Tanh", "SiLU",
           "Swish", "ELU", "Softplus", "Softmax", "LogSoftmax", "Dropout", "BatchNorm1d", "BatchNorm2d",
           "Embedding"]


def _empty(shape, device, dtype) -> Parameter:
    return Parameter(ag.zeros(*shape, dtype=dtype, device=device))


class Linear(Module):
    """y = x Wᵀ + b with W of shape (out_features, in_features), as one fused node.

    Initialisation as in PyTorch: W ~ kaiming_uniform(a=√5) = U(±1/√in_features), b ~ U(±1/√in_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        if in_features < 0 or out_features < 0:
            raise ValueError(f"Linear: feature counts must be non-negative, got ({in_features}, {out_features})")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = _empty((out_features, in_features), device, dtype)
        if bias:
            self.bias = _empty((out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight
        x = self._input(x, w)
        shape = x.array.shape
        if not shape or shape[-1] != self.in_features:
            raise ValueError(f"{self!r}: expected input of shape (..., {self.in_features}), got shape {x.shape} "
                             f"(last dimension {x.shape[-1] if x.ndim else 'missing'} != in_features="
                             f"{self.in_features})")
        return ag.linear(x, w, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


# --- activations --------------------------------------------------------------------------


class ReLU(Module):
    """max(x, 0)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x, self.inplace)


class LeakyReLU(Module):
    """x where x > 0, else negative_slope·x."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class PReLU(Module):
    """x where x > 0, else a·x with a learnable slope ``weight``: one shared (num_parameters=1) or one per
    channel (axis 1 of the input), initialised to ``init``."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None) -> None:
        super().__init__()
        self.num_parameters = int(num_parameters)
        self.init = init
        self.weight = Parameter(ag.full((self.num_parameters,), init, dtype=dtype, device=device))

    def reset_parameters(self) -> None:
        init.constant_(self.weight, self.init)

    def forward(self, x: Tensor) -> Tensor:
        return ag.prelu(self._input(x, self.weight), self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class RReLU(Module):
    """Randomised leaky ReLU: slope ~ U(lower, upper) per element in training, (lower + upper)/2 in eval."""

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False) -> None:
        super().__init__()
        if not 0 <= lower <= upper:
            raise ValueError(f"RReLU: need 0 <= lower <= upper, got lower={lower}, upper={upper}")
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.rrelu(x, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}"


class Sigmoid(Module):
    """1 / (1 + e^−x)."""

    def forward(self, x: Tensor) -> Tensor:
        return ag.sigmoid(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ag.tanh(x)


class SiLU(Module):
    """x·σ(x), also called Swish."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x, self.inplace)


class Swish(SiLU):
    """x·σ(x) (the same function as :class:`SiLU`)."""


class ELU(Module):
    """x where x > 0, else alpha·(eˣ − 1)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Softplus(Module):
    """log(1 + e^(βx)) / β."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x: Tensor) -> Tensor:
        return ag.softplus(x, self.beta)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(Module):
    """Overflow-safe softmax along ``dim`` (default the last axis)."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return ag.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log softmax along ``dim``."""

    def forward(self, x: Tensor) -> Tensor:
        return ag.log_softmax(x, self.dim)


# --- regularisation -----------------------------------------------------------------------


class Dropout(Module):
    """Inverted dropout: in training zero each element with probability p and scale the rest by 1/(1 − p);
    the identity in evaluation mode."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability p must be in [0, 1], got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class _BatchNorm(Module):
    _ndims: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(ag.ones(num_features, dtype=dtype, device=device))
            self.bias = Parameter(ag.zeros(num_features, dtype=dtype, device=device))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", ag.zeros(num_features, dtype=dtype, device=device))
            self.register_buffer("running_var", ag.ones(num_features, dtype=dtype, device=device))
            self.register_buffer("num_batches_tracked", ag.tensor(0, dtype="int64", device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked.fill_(0)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self._input(x, self.weight if self.weight is not None else self.running_mean)
        if x.ndim not in self._ndims:
            want = " or ".join(f"{n}-D" for n in self._ndims)
            raise ValueError(f"{type(self).__name__}: expected {want} input, got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}): input has {x.shape[1]} channels on axis 1 "
                             f"(shape {x.shape}), expected {self.num_features}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            nbt = self.num_batches_tracked
            nbt.array += 1
            nbt.mark_modified()
            if self.momentum is None:       # cumulative moving average
                momentum = 1.0 / int(nbt.item())
        if self.training or self.running_mean is None:      # batch statistics (updating running ones in training)
            track = self.training
            return F.batch_norm(x, self.running_mean if track else None, self.running_var if track else None,
                                self.weight, self.bias, True, momentum, self.eps)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, momentum,
                            self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs, per channel C."""
    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs, per channel C."""
    _ndims = (4,)


class Embedding(Module):
    """A lookup table: integer indices → rows of ``weight`` (num_embeddings, embedding_dim), init N(0, 1)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None, device=None,
                 dtype=None, _weight: Tensor | None = None) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} must be within num_embeddings "
                                 f"{num_embeddings}")
            padding_idx %= num_embeddings
        self.padding_idx = padding_idx
        if _weight is not None:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight has shape {tuple(_weight.shape)}, expected "
                                 f"({num_embeddings}, {embedding_dim})")
            self.weight = Parameter(_weight)
        else:
            self.weight = _empty((num_embeddings, embedding_dim), device, dtype)
            self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with ag.no_grad():
                self.weight[self.padding_idx] = 0.0

    def forward(self, indices) -> Tensor:
        return F.embedding(indices, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s if self.padding_idx is None else s + f", padding_idx={self.padding_idx}"
