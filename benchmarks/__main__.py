"""Forwarder: ``python -m benchmarks`` is ``xpgrad bench``."""
from xpgrad.bench.run import main

main()
