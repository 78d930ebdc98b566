"""SQLite storage through aiosqlite: the database, and one module of queries per subject."""

from musiqued.storage.db import Database

__all__ = ["Database"]
