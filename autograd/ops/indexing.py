"""Indexing ops: gather, scatter, index_select, masked ops (PyTorch's names and results)."""
from __future__ import annotations

__all__: list = []
