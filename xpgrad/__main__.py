"""``python -m xpgrad``: the ``xpgrad`` command without the console script (e.g. from a source checkout)."""
import sys

from xpgrad.cli import main

sys.exit(main())
