"""The xpgrad application: the ``xpgrad`` command and what it runs.

The library is the packages ``autograd``, ``backends`` and ``nn``; this package holds the programs built on
them: the training job (:mod:`xpgrad.train`, its PyTorch twin :mod:`xpgrad.torch_train`), the benchmark
suites (:mod:`xpgrad.bench`), the op registry's gradient checks (:mod:`xpgrad.gradcheck`) and the command
line that reaches them all (:mod:`xpgrad.cli`). Importing it imports nothing heavy.
"""
from __future__ import annotations

try:
    from importlib.metadata import PackageNotFoundError, version as _version
    __version__ = _version("xpgrad")
except PackageNotFoundError:          # a source checkout that was never installed
    __version__ = "0+unknown"
