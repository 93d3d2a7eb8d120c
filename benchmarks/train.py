"""Forwarder: ``python -m benchmarks.train`` is ``xpgrad train``."""
if __name__ == "__main__":
    from xpgrad.train import main
    main()
