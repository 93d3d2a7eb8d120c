"""Parameter initialisers (PyTorch's ``torch.nn.init`` names and formulas).

Each fills its tensor in place without recording a graph, draws from the
tensor's own backend generator (``t.device.rng``, so CuPy tensors are filled
on the GPU) and bumps the tensor's version. Seed with :func:`seed` (or
``ag.manual_seed``) for bit-for-bit reproducible runs on the CPU.
"""
from __future__ import annotations

import math

import autograd as ag
from autograd import Tensor

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_", "eye_", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_", "seed", "default_layer_init_"]


def seed(s: int) -> None:
    """Seed the generators of every backend (same as ``ag.manual_seed``)."""
    ag.manual_seed(s)


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for an activation: linear/conv/sigmoid 1, tanh 5/3, relu √2,
    leaky_relu √(2/(1 + slope²)) (slope ``param``, default 0.01), selu 3/4."""
    linear = ("linear", "identity", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight: dense (out, in) gives (in, out); conv (out, in, kh, kw) multiplies both by
    the receptive field kh·kw."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out can not be computed for a tensor with fewer than 2 dimensions "
                         f"(shape {tuple(tensor.shape)})")
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} not supported, use 'fan_in' or 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _check(tensor, fn: str) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{fn}: expected a Tensor, got {type(tensor).__name__}")
    if tensor.dtype.kind != "f":
        raise TypeError(f"{fn}: only floating-point tensors can be initialised randomly, got {tensor.dtype}")


def _draw_dtype(tensor):
    """Generators draw float32 or float64; other float dtypes (float16) draw float32 and are cast."""
    return tensor.dtype if tensor.dtype.itemsize in (4, 8) else ag.float32


def _write(tensor: Tensor, values) -> Tensor:
    with ag.no_grad():
        tensor.array[...] = values
        tensor.mark_modified()
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with U(a, b)."""
    _check(tensor, "uniform_")
    r = tensor.device.rng.random(tensor.shape, dtype=_draw_dtype(tensor))
    r *= b - a
    r += a
    return _write(tensor, r)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with N(mean, std²)."""
    _check(tensor, "normal_")
    r = tensor.device.rng.standard_normal(tensor.shape, dtype=_draw_dtype(tensor))
    r *= std
    r += mean
    return _write(tensor, r)


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0) -> Tensor:
    """Fill with N(mean, std²) restricted to [a, b] (values outside are redrawn)."""
    _check(tensor, "trunc_normal_")
    rng = tensor.device.rng
    xp = tensor.xp
    r = rng.standard_normal(tensor.shape, dtype=_draw_dtype(tensor)) * std + mean
    for _ in range(100):
        out = (r < a) | (r > b)
        if not bool(out.any()):
            break
        r = xp.where(out, rng.standard_normal(tensor.shape, dtype=r.dtype) * std + mean, r)
    return _write(tensor, xp.clip(r, a, b))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    with ag.no_grad():
        tensor.fill_(val)
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only 2-D tensors are supported, got shape {tuple(tensor.shape)}")
    return _write(tensor, tensor.xp.eye(*tensor.shape, dtype=tensor.dtype))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot: U(±gain·√(6 / (fan_in + fan_out)))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot: N(0, std²), std = gain·√(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """He: U(±gain·√(3 / fan)), gain = calculate_gain(nonlinearity, a)."""
    fan = _calculate_correct_fan(tensor, mode)
    bound = math.sqrt(3.0) * calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """He: N(0, std²), std = gain / √fan (√(2/fan) for relu)."""
    fan = _calculate_correct_fan(tensor, mode)
    return normal_(tensor, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan) if fan else 0.0)


def default_layer_init_(weight: Tensor, bias: Tensor | None = None) -> None:
    """PyTorch's default for dense and convolution layers: weight ~ kaiming_uniform(a=√5), i.e.
    U(±1/√fan_in), and bias ~ U(±1/√fan_in)."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = _calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        uniform_(bias, -bound, bound)
