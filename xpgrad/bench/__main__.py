"""``python -m xpgrad.bench``: the same as ``xpgrad bench``."""
from xpgrad.bench.run import main

main()
