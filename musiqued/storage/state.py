"""Small persistent daemon state (``daemon_state``): JSON values by key."""

from __future__ import annotations

import json
from typing import Any

from musiqued.storage.db import Database


async def get_state(db: Database, key: str, default: Any = None) -> Any:
    row = await db.fetchone("SELECT value FROM daemon_state WHERE key = ?", (key,))
    return default if row is None else json.loads(row[0])


async def set_state(db: Database, key: str, value: Any) -> None:
    await db.execute(
        "INSERT INTO daemon_state (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, json.dumps(value)),
    )
