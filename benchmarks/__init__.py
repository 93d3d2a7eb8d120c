"""Benchmark results (RESULTS.md) and outputs (out/). The code moved to :mod:`xpgrad.bench` and
:mod:`xpgrad.train`; ``python -m benchmarks`` and ``python -m benchmarks.train`` still forward there."""
