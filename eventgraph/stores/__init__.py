"""Edges: the bundled stores."""

from .memory import MemoryStore as MemoryStore

__all__ = ["MemoryStore"]
