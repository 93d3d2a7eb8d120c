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
                        rand_like, randn_like, from_dlpack, from_numpy, as_tensor, manual_seed)
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
del _host

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "backward",
           "grad", "gradcheck", "gradgradcheck", "GradcheckError", "GraphError", "AxisError", "DeviceError",
           "tensor", "zeros", "ones", "full", "arange", "rand", "randn", "zeros_like", "ones_like",
           "full_like", "rand_like", "randn_like", "from_dlpack", "from_numpy", "as_tensor", "manual_seed", "device",
           "set_default_device", "cuda_available", "get_default_dtype", "set_default_dtype", "OpSpec",
           "all_specs", "composite", "registry", "to_dot", "draw_graph", "audit", "Auditor", "AuditReport",
           "GradientAuditError", "AnomalyError", "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "profile", "Profile", "float16", "float32", "float64", "int32", "int64", "bool_"] + ops.__all__
