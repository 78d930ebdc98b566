"""Covers and artist images kept by the daemon: files beside the database, bounded by size.

``<database dir>/images/<name>``, where ``name`` is a hash of the image's upstream URL, so
the page can ask for ``/images/<name>`` (``local_image_url``) without a table to look it up.
The index (name → size, least recently used first) is rebuilt from the directory when the
cache opens, ordered by the files' modification times, which a use moves forward. Past
``[enrichment] image_cache_mb`` the least recently used files go first.

Writes go to a temporary name and are renamed into place: a file under its final name is
always whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
from collections import OrderedDict
from pathlib import Path

import structlog

from musiqued.errors import UpstreamError
from musiqued.upstream.images import ImageFetcher

log = structlog.get_logger("musiqued.images")

NAME = re.compile(r"^[0-9a-f]{40}$")
"""A cached image's file name: the first 40 hex digits of the SHA-256 of its URL."""
LOCAL_PREFIX = "/images/"


def image_name(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:40]


def local_image_url(url: str | None) -> str | None:
    """Where the page finds the upstream image ``url`` (served by the daemon), or None."""
    return f"{LOCAL_PREFIX}{image_name(url)}" if url else None


class ImageCache:
    """``path_of(name)`` a cached file, ``fetch(url)`` download it once; ``open()`` first."""

    def __init__(self, directory: Path, fetcher: ImageFetcher, max_bytes: int) -> None:
        self.directory = directory
        self._fetcher = fetcher
        self._max_bytes = max_bytes
        self._sizes: OrderedDict[str, int] = OrderedDict()  # least recently used first
        self._total = 0

    async def open(self) -> None:
        try:
            await asyncio.to_thread(self._scan)
        except OSError as exc:
            # Covers are a nicety: the daemon runs without them (each is then a placeholder).
            log.warning(
                "image cache unusable",
                directory=str(self.directory),
                error=exc.strerror or str(exc),
            )
        self._evict()

    def _scan(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        found: list[tuple[float, str, int]] = []
        for entry in os.scandir(self.directory):
            if entry.name.endswith(".part"):  # a download the daemon did not finish
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            elif NAME.match(entry.name) and entry.is_file():
                stat = entry.stat()
                found.append((stat.st_mtime, entry.name, stat.st_size))
        self._sizes = OrderedDict((name, size) for _, name, size in sorted(found))
        self._total = sum(self._sizes.values())

    async def close(self) -> None:
        await self._fetcher.close()

    def reconfigure(self, prefixes: tuple[str, ...], max_bytes: int) -> None:
        self._fetcher.reconfigure(prefixes)
        self._max_bytes = max_bytes
        self._evict()

    def path_of(self, name: str) -> Path | None:
        """The file for ``name`` if it is cached (a use: it moves to the recent end)."""
        if name not in self._sizes:
            return None
        path = self.directory / name
        self._sizes.move_to_end(name)
        try:
            os.utime(path)
        except OSError:  # removed behind the daemon's back
            self._forget(name)
            return None
        return path

    async def fetch(self, url: str) -> Path | None:
        """The image at ``url``, downloaded if it is not cached; None if it is refused or
        cannot be downloaded now (the reason is logged)."""
        name = image_name(url)
        cached = self.path_of(name)
        if cached is not None:
            return cached
        return await self._download(name, url)

    async def _download(self, name: str, url: str) -> Path | None:
        try:
            body = await self._fetcher.fetch(url)
        except UpstreamError as exc:
            log.info("image not kept", error=exc.message)
            return None
        if len(body) > self._max_bytes:
            log.info("image not kept: larger than [enrichment] image_cache_mb")
            return None
        path = self.directory / name
        try:
            await asyncio.to_thread(self._write, path, body)
        except OSError as exc:
            log.warning("image not kept: cannot write", error=exc.strerror or str(exc))
            return None
        self._forget(name)
        self._sizes[name] = len(body)
        self._total += len(body)
        self._evict()
        return path if name in self._sizes else None

    def _write(self, path: Path, body: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f"{path.name}.{os.getpid()}.part")
        part.write_bytes(body)
        os.replace(part, path)

    def _forget(self, name: str) -> None:
        size = self._sizes.pop(name, None)
        if size is not None:
            self._total -= size

    def _evict(self) -> None:
        while self._total > self._max_bytes and self._sizes:
            name = next(iter(self._sizes))
            self._forget(name)
            with contextlib.suppress(FileNotFoundError):
                (self.directory / name).unlink()
