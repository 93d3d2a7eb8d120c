"""Benchmarks: xpgrad on NumPy (and CuPy when a GPU is present) against PyTorch when installed.

Run ``python -m benchmarks`` for everything, or ``python -m benchmarks.ops`` for one suite.
"""
