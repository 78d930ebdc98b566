"""SQLite storage: one writer connection behind a lock, one reader, repositories per table."""

from musiqued.storage.db import Database

__all__ = ["Database"]
