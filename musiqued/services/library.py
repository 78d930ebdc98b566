"""Reading the stored history: recent listens, periods page by page, statistics, albums,
and the library's views (``services/library_views.py``) in the user's time zone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from musiqued import zones
from musiqued.models import Listen
from musiqued.storage import history
from musiqued.storage.db import Database
from musiqued.storage.enrichment import list_albums
from musiqued.storage.listens import count_listens, recent_listens

if TYPE_CHECKING:
    from musiqued.services import export
    from musiqued.services.library_views import LibraryViews

T = TypeVar("T")


class Library:
    """The read side of the history, for the front ends (RPC, HTTP)."""

    def __init__(self, db: Database, zone: dt.tzinfo | None = None) -> None:
        self._db = db
        self.zone = zone if zone is not None else zones.system_zone()
        """The daemon's zone (``[daemon] timezone``): a reload sets it."""
        self._views: LibraryViews | None = None

    @property
    def views(self) -> LibraryViews:
        """The library's views, built on the first call that asks for one."""
        if self._views is None:
            # Loaded with the first library page, not with the daemon.
            from musiqued.services.library_views import LibraryViews

            self._views = LibraryViews(self._db)
        return self._views

    def zone_for(self, tz: str | None) -> dt.tzinfo:
        """A call's zone: its own ``tz`` (an IANA name), else the daemon's."""
        return zones.zone_named(tz) if tz else self.zone

    async def count(self) -> int:
        """Every stored listen."""
        return await count_listens(self._db)

    async def count_period(self, *, since: int | None, until: int | None) -> int:
        """Listens in ``[since, until)``."""
        return await history.count_window(self._db, since, until)

    async def recent(self, limit: int, shape: Callable[[Listen], T]) -> list[T]:
        """The latest ``limit`` listens, newest first, each as ``shape(listen)``."""
        return await recent_listens(self._db, limit, shape)

    async def page(
        self,
        *,
        since: int | None,
        until: int | None,
        after: history.Cursor | None,
        limit: int,
        shape: Callable[[Listen], T],
    ) -> tuple[list[T], history.Cursor | None]:
        """Listens of ``[since, until)`` oldest first, after the cursor ``after``, each as
        ``shape(listen)``."""
        return await history.list_page(
            self._db, since=since, until=until, after=after, limit=limit, shape=shape
        )

    async def export(
        self,
        fmt: export.Format,
        *,
        since: int | None,
        until: int | None,
        write: export.Write,
    ) -> int:
        """Every listen of ``[since, until)`` in ``fmt``, written through ``write`` as it is
        read (``services/export.py``); returns how many."""
        from musiqued.services import export  # loaded with the first export, not at start

        return await export.export(self._db, fmt, since=since, until=until, write=write)

    async def summary(self, *, since: int | None, until: int | None, top: int) -> dict[str, Any]:
        """``stats.summary``'s figures; ``first_listen`` and ``last_listen`` are ``Listen``;
        ``per_day`` counts the days of the user's zone."""
        figures = await history.summary(self._db, since=since, until=until, top=top)
        figures["per_day"] = await self.views.per_day(since, until, self.zone)
        figures["tz"] = zones.zone_name(self.zone)
        return figures

    async def albums(
        self, *, query: str | None, artist: str | None, limit: int, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Albums most listened first; ``offset`` skips that many (the next page)."""
        return await list_albums(self._db, query=query, artist=artist, limit=limit, offset=offset)
