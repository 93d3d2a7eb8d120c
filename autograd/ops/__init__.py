"""All ops. Each module holds one category; each op is one Function class plus its public function."""
from .arithmetic import *  # noqa: F401,F403
from .unary import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
from .reduction import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .nn_ops import *  # noqa: F401,F403
from .activation import *  # noqa: F401,F403
from .dense import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .recurrent import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .indexing import *  # noqa: F401,F403
from .sorting import *  # noqa: F401,F403
from . import arithmetic, unary, shape, reduction, linalg, nn_ops  # noqa: F401

__all__ = (arithmetic.__all__ + unary.__all__ + shape.__all__ + reduction.__all__ + linalg.__all__
           + nn_ops.__all__)
__all__ += activation.__all__  # noqa: F405
__all__ += dense.__all__  # noqa: F405
__all__ += normalization.__all__  # noqa: F405
__all__ += loss.__all__  # noqa: F405
__all__ += recurrent.__all__  # noqa: F405
__all__ += conv.__all__  # noqa: F405
__all__ += pool.__all__  # noqa: F405
__all__ += indexing.__all__  # noqa: F405
__all__ += sorting.__all__  # noqa: F405

# NumPy's spellings and PyTorch's synonyms, from the op records (``@public(..., aliases=...)``)
from ..spec import public_ops as _public_ops  # noqa: E402

for _rec in _public_ops().values():
    if _rec.export:
        for _alias in _rec.aliases:
            globals()[_alias] = _rec.func
            __all__.append(_alias)
del _rec, _public_ops
