"""SQLite storage: one writer connection on its own thread, one reader, repositories per table."""

from musiqued.storage.db import Database

__all__ = ["Database"]
