"""``torch.utils`` for programs ported with ``import autograd as torch``: aliases only (``torch.utils.data`` is
:mod:`nn.data`)."""
from . import data  # noqa: F401
