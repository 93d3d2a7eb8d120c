"""Convolution and pooling layers (PyTorch's names, argument orders, defaults and parameter shapes).

``Conv2d.weight`` is (out_channels, in_channels/groups, kh, kw) and ``ConvTranspose2d.weight`` is
(in_channels, out_channels/groups, kh, kw), both initialised as in PyTorch (kaiming_uniform with a = √5,
which is U(±1/√fan_in), and the bias U(±1/√fan_in)), so a PyTorch ``state_dict`` converted to NumPy loads
unchanged and computes the same function. Every layer names itself and the shapes in its errors.
"""
from __future__ import annotations


from autograd import Tensor
from autograd.errors import renamed
from autograd.ops.support import check_padding, check_positive, check_same_padding, int_tuple

from . import functional as F
from . import init
from .layers import _empty
from .module import Module

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
           "AdaptiveAvgPool2d"]


def _reraise(layer: Module, e: ValueError) -> ValueError:
    """The op's error (an OpError), reported under the layer's repr instead of the op's name."""
    return renamed(e, repr(layer))


class _ConvNd(Module):
    """Shared construction, initialisation, checks and repr of the convolution layers."""

    _dims = 2
    _transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride, padding, dilation, groups: int,
                 bias: bool, padding_mode: str, output_padding=0, device=None, dtype=None) -> None:
        super().__init__()
        name, n = type(self).__name__, self._dims
        for what, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(v, int) or isinstance(v, bool) or v < (1 if what == "groups" else 0):
                raise ValueError(f"{name}: {what} must be a {'positive' if what == 'groups' else 'non-negative'} "
                                 f"int, got {v!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{name}({in_channels}, {out_channels}): in_channels and out_channels must both be "
                             f"divisible by groups={groups}")
        if padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = int_tuple(kernel_size, n, "kernel_size", name)
        self.stride = int_tuple(stride, n, "stride", name)
        self.dilation = int_tuple(dilation, n, "dilation", name)
        self.output_padding = int_tuple(output_padding, n, "output_padding", name)
        self.padding_mode = padding_mode
        if isinstance(padding, str):
            if padding not in ("same", "valid") or self._transposed:
                allowed = "an int or a tuple of ints" + ("" if self._transposed else ", 'valid' or 'same'")
                raise ValueError(f"{name}: padding must be {allowed}, got {padding!r}")
            if padding == "same":
                check_same_padding(name, self.stride)
            self.padding = padding
        else:
            self.padding = int_tuple(padding, n, "padding", name)
        desc = f"{name}({in_channels}, {out_channels}, kernel_size={self.kernel_size}, stride={self.stride})"
        check_positive(desc, kernel_size=self.kernel_size, stride=self.stride, dilation=self.dilation)
        if not isinstance(self.padding, str):
            check_padding(desc, self.padding)
        if self._transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = _empty(shape, device, dtype)
        if bias:
            self.bias = _empty((out_channels,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_layer_init_(self.weight, self.bias)

    def _check_input(self, x: Tensor) -> Tensor:
        x = self._input(x, self.weight)
        n = self._dims
        if x.ndim not in (n + 1, n + 2):
            layout = ("(N, C, L) or (C, L)" if n == 1 else "(N, C, H, W) or (C, H, W)")
            raise ValueError(f"{self!r}: expected a {n + 2}-D input {layout}, got shape {tuple(x.shape)}")
        c = x.shape[-n - 1]
        if c != self.in_channels:
            raise ValueError(f"{self!r}: expected input with {self.in_channels} channels, got shape "
                             f"{tuple(x.shape)} ({c} channels)")
        return x

    def extra_repr(self) -> str:
        n = self._dims
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if isinstance(self.padding, str):
            s += f", padding={self.padding}"
        elif self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv1d(_ConvNd):
    """1-D cross-correlation over (N, C, L): weight (out_channels, in_channels/groups, k)."""

    _dims = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        x = self._check_input(x)
        pad = self.padding if isinstance(self.padding, str) else self.padding[0]
        try:
            return F.conv1d(x, self.weight, self.bias, self.stride[0], pad, self.dilation[0], self.groups)
        except ValueError as e:
            raise _reraise(self, e) from None


class Conv2d(_ConvNd):
    """2-D cross-correlation over (N, C, H, W): weight (out_channels, in_channels/groups, kh, kw), one fused
    im2col + matrix-product node; output size ⌊(n + 2p − d(k − 1) − 1)/s⌋ + 1 per axis."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        x = self._check_input(x)
        try:
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        except ValueError as e:
            raise _reraise(self, e) from None


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution (the gradient of Conv2d with respect to its input; upsampling):
    weight (in_channels, out_channels/groups, kh, kw); output (H − 1)s − 2p + d(k − 1) + output_padding + 1."""

    _transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None,
                 dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, output_padding, device=device, dtype=dtype)
        for o, s, d in zip(self.output_padding, self.stride, self.dilation):
            if not 0 <= o < max(s, d):
                raise ValueError(f"{self!r}: output_padding must be non-negative and smaller than stride or "
                                 f"dilation, got {self.output_padding}")

    def forward(self, x: Tensor, output_size=None) -> Tensor:
        """``output_size`` (the last two entries are used) picks the output_padding that gives that size."""
        x = self._check_input(x)
        out_pad = self.output_padding
        if output_size is not None:
            size = tuple(output_size)[-2:]
            base = [(n - 1) * s - 2 * p + d * (k - 1) + 1
                    for n, s, p, d, k in zip(x.shape[-2:], self.stride, self.padding, self.dilation, self.kernel_size)]
            out_pad = tuple(t - b for t, b in zip(size, base))
            if len(size) != 2 or any(not 0 <= o < max(s, d) for o, s, d in zip(out_pad, self.stride, self.dilation)):
                lo = tuple(base)
                hi = tuple(b + max(s, d) - 1 for b, s, d in zip(base, self.stride, self.dilation))
                raise ValueError(f"{self!r}: requested output_size {tuple(output_size)} is not between {lo} and "
                                 f"{hi} for input shape {tuple(x.shape)}")
        try:
            return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, out_pad, self.groups,
                                      self.dilation)
        except ValueError as e:
            raise _reraise(self, e) from None


# --- pooling ------------------------------------------------------------------------------------------


class _Pool(Module):
    def _check_args(self, *named) -> None:
        for what, v in named:
            vals = v if isinstance(v, (tuple, list)) else (v,)
            if not all(isinstance(e, int) and not isinstance(e, bool) for e in vals):
                raise ValueError(f"{type(self).__name__}: {what} must be an int or a tuple of ints, got {v!r}")
            if min(vals, default=1) < (0 if what == "padding" else 1):
                raise ValueError(f"{type(self).__name__}: {what} must be "
                                 f"{'non-negative' if what == 'padding' else 'positive'}, got {v!r}")

    def _call(self, fn, x, *args):
        if isinstance(x, Tensor) and x.ndim not in (self._dims + 1, self._dims + 2):
            layout = "(N, C, L) or (C, L)" if self._dims == 1 else "(N, C, H, W) or (C, H, W)"
            raise ValueError(f"{self!r}: expected a {self._dims + 2}-D input {layout}, got shape {tuple(x.shape)}")
        try:
            return fn(x, *args)
        except ValueError as e:
            raise _reraise(self, e) from None


class MaxPool2d(_Pool):
    """Max over kernel_size windows per channel; stride defaults to the window, padding is −∞."""

    _dims = 2

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode
        self._check_args(("kernel_size", kernel_size), ("stride", self.stride), ("padding", padding),
                         ("dilation", dilation))

    def forward(self, x: Tensor):
        return self._call(F.max_pool2d if self._dims == 2 else F.max_pool1d, x, self.kernel_size, self.stride,
                          self.padding, self.dilation, self.ceil_mode, self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(MaxPool2d):
    """Max over windows of (N, C, L)."""

    _dims = 1


class AvgPool2d(_Pool):
    """Mean over kernel_size windows per channel; stride defaults to the window; zero padding counts
    (``count_include_pad=True``) as in PyTorch."""

    _dims = 2

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override
        self._check_args(("kernel_size", kernel_size), ("stride", self.stride), ("padding", padding))

    def forward(self, x: Tensor) -> Tensor:
        if self._dims == 1:
            return self._call(F.avg_pool1d, x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                              self.count_include_pad)
        return self._call(F.avg_pool2d, x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(AvgPool2d):
    """Mean over windows of (N, C, L)."""

    _dims = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)


class AdaptiveAvgPool2d(_Pool):
    """Average pooling to a fixed output size per channel; ``AdaptiveAvgPool2d(1)`` is global average pooling."""

    _dims = 2

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return self._call(F.adaptive_avg_pool2d, x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
