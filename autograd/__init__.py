"""xpgrad's autograd: Tensor, the op library and the reverse-mode engine.

    import autograd as ag
    x = ag.tensor([[1., 2.], [3., 4.]], requires_grad=True)
    y = (x @ x.T).exp().sum(axis=1, keepdims=True).mean()
    y.backward()
"""
from .tensor import Tensor, get_default_dtype, set_default_dtype  # noqa: I001  (first: ops import it)
from .function import Function, all_specs, no_grad, enable_grad, set_grad_enabled, is_grad_enabled, registry
from .engine import backward, grad
from .errors import AxisError, GradcheckError, GraphError
from .factories import (tensor, zeros, ones, full, arange, rand, randn, zeros_like, ones_like, full_like,
                        rand_like, randn_like, from_dlpack, from_numpy, as_tensor, manual_seed, empty, empty_like,
                        eye, linspace, logspace, randint, randint_like, randperm, normal, is_tensor,
                        is_floating_point, numel)
from . import cuda
from .gradcheck import gradcheck, gradgradcheck
from .graphviz import draw_graph, to_dot
from .audit import AuditReport, Auditor, GradientAuditError, audit
from .debug import AnomalyError, Profile, detect_anomaly, is_anomaly_enabled, profile, set_detect_anomaly
from .spec import OpSpec, composite, public, public_ops
from .ops import *  # noqa: F401,F403
from . import ops
from . import methods  # noqa: F401  (gives Tensor its operators and op methods)
from backends import DeviceError, device, set_default_device, cuda_available

from backends import host as _host
float16, float32, float64 = _host.float16, _host.float32, _host.float64
int32, int64, bool_ = _host.int32, _host.int64, _host.bool_
int8, uint8, int16 = _host.int8, _host.uint8, _host.int16
# PyTorch's aliases. float/int/bool shadow the builtins only as attributes of this module (torch.float is
# float32, torch.int int32, torch.bool bool): keep them last, so no code of this file sees them.
half, double, short, long = float16, float64, int16, int64
float, int, bool = float32, int32, bool_  # noqa: A001
del _host

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "backward",
           "grad", "gradcheck", "gradgradcheck", "GradcheckError", "GraphError", "AxisError", "DeviceError",
           "tensor", "zeros", "ones", "full", "arange", "rand", "randn", "zeros_like", "ones_like",
           "full_like", "rand_like", "randn_like", "from_dlpack", "from_numpy", "as_tensor", "manual_seed", "device",
           "set_default_device", "cuda_available", "get_default_dtype", "set_default_dtype", "OpSpec",
           "all_specs", "composite", "registry", "to_dot", "draw_graph", "audit", "Auditor", "AuditReport",
           "GradientAuditError", "AnomalyError", "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "profile", "Profile", "float16", "float32", "float64", "int32", "int64", "bool_",
           "empty", "empty_like", "eye", "linspace", "logspace", "randint", "randint_like", "randperm", "normal",
           "is_tensor", "is_floating_point", "numel", "cuda", "int8", "uint8", "int16", "half", "double", "short",
           "long", "float", "int", "bool"] + ops.__all__

# The one-line port, ``import autograd as torch``: ``torch.nn``, ``torch.optim`` and ``torch.utils.data`` name the
# ``nn`` package and its parts. They are aliases resolved on first use (PEP 562), so importing autograd never
# imports nn, and nothing in autograd depends on the package above it.
# ``torch.save``/``torch.load`` are ``nn.save``/``nn.load`` (npz; never pickle). Public: the stub generator reads it.
TORCH_ALIASES = {"nn": ("nn", None), "optim": ("nn.optim", None), "utils": ("nn._torch_utils", None),
                  "save": ("nn", "save"), "load": ("nn", "load")}


def __getattr__(name: str):
    if name in TORCH_ALIASES:
        import importlib
        module, attr = TORCH_ALIASES[name]
        found = importlib.import_module(module)
        return found if attr is None else getattr(found, attr)
    raise AttributeError(f"module 'autograd' has no attribute {name!r}")


inference_mode = no_grad    # no graph is recorded; PyTorch's stricter inference tensors have no counterpart here
