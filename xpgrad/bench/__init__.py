"""Benchmarks: xpgrad on NumPy (and CuPy when a GPU is present) against PyTorch when installed.

``xpgrad bench`` (:mod:`xpgrad.bench.run`) runs every suite; ``python -m xpgrad.bench.ops`` or
``python -m xpgrad.bench.steps`` one suite; ``xpgrad gpu-check`` (:mod:`xpgrad.bench.gpu_check`) the GPU
machine's whole check; ``xpgrad profile`` (:mod:`xpgrad.bench.profile_step`) where a training step's time goes.
Figures measured so far are in the source tree's ``benchmarks/RESULTS.md``.
"""
