"""Placeholder replaced by the journald integration (native protocol handler)."""

from __future__ import annotations

import logging
import sys


class JournalHandler(logging.StreamHandler):  # type: ignore[type-arg]
    def __init__(self) -> None:
        super().__init__(sys.stderr)
