"""xpgrad's neural-network library: modules, layers, losses, initialisers, optimisers, data.

Everything here is built from autograd ops; nothing imports NumPy or CuPy (nn/data parses files on the host).
"""
from .parameter import Parameter  # noqa: F401
from . import data  # noqa: F401,E402
