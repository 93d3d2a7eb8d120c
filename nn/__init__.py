"""xpgrad's neural-network library: modules, layers, losses, initialisers, optimisers, data.

Everything here is built from autograd ops; nothing imports NumPy or CuPy (nn/data parses files on the host).
"""
from .parameter import Parameter  # noqa: F401
from .module import Module, Sequential, ModuleList, ModuleDict, StateDictError  # noqa: F401
from .layers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from . import functional, init  # noqa: F401
from . import data  # noqa: F401,E402
from . import optim, utils  # noqa: F401,E402
from .serialization import save, load  # noqa: F401,E402
from . import training  # noqa: F401,E402
from .rnn import *  # noqa: F401,F403,E402
from .conv import *  # noqa: F401,F403,E402
from . import models  # noqa: F401,E402
from . import parallel  # noqa: F401,E402
