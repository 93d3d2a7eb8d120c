"""Sorting and selection ops (PyTorch's names and results)."""
from __future__ import annotations

__all__: list = []
