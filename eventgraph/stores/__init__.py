"""Edges: the bundled stores."""

from .memory import MemoryStore as MemoryStore
from .sqlite import SqliteStore as SqliteStore

__all__ = ["MemoryStore", "SqliteStore"]
