"""Paging a frozen window of ``user.getRecentTracks`` for jobs: the one retry policy of a page.

How hard a job insists on one page, from the inside out:

1. Each request is retried by the Last.fm client through transient failures and error 29
   (``upstream.lastfm.RetryPolicy``: a few attempts, jittered backoff, the governor slowed).
2. A request that still fails, or a page that comes back with fewer scrobbles than its place
   in the window holds (short, empty, broken entries), is asked again after each of the
   policy's ``page_pauses``; the fullest answer wins. A request failing past the last pause fails the
   job (resumable from its checkpoint); a page that stays short is recorded by the importer.
3. Once a sweep of the window is over, the importer walks the pages that stayed short again,
   ``MAX_REWALKS`` times, before the gap is final.
"""

from __future__ import annotations

import asyncio

from musiqued.errors import TransientUpstreamError
from musiqued.models import RecentTracksPage
from musiqued.services.jobs import JobContext
from musiqued.services.lastfm_session import LastfmConnection
from musiqued.upstream.lastfm import Retry
from musiqued.upstream.ratelimit import Priority

MAX_REWALKS = 2
"""Rounds of fetching the short pages again once a sweep is over, before the gap is final."""


class WindowPager:
    def __init__(self, lastfm: LastfmConnection) -> None:
        self._lastfm = lastfm

    async def page(
        self,
        job: JobContext,
        *,
        page: int,
        limit: int,
        from_ts: int | None,
        to_ts: int | None,
        expect: int = 0,
    ) -> RecentTracksPage:
        """Page ``page`` of ``[from_ts, to_ts)`` at ``limit`` per page, for ``job``.

        ``expect``: the scrobbles this page must hold. Scrobbles Last.fm holds that cannot be
        stored (a blank name, a timestamp out of range) are the same every time: a page
        whole but for those is asked once more only.
        """
        lastfm = self._lastfm.require()

        def retrying(retry: Retry) -> None:
            job.report_trouble(retry.describe())

        best: RecentTracksPage | None = None
        for attempt, pause in enumerate((*lastfm.retry.page_pauses, None), start=1):
            try:
                answer = await lastfm.recent_tracks(
                    page=page,
                    limit=limit,
                    from_ts=from_ts,
                    to_ts=to_ts,
                    priority=Priority.IMPORT,
                    on_retry=retrying,
                )
            except TransientUpstreamError as exc:
                if pause is None and best is not None:
                    job.report_trouble(None)
                    return best
                if pause is None:
                    raise TransientUpstreamError(
                        f"Last.fm kept failing on page {page} ({exc.message}); "
                        f"resume later with `musiquectl jobs resume {job.job_id}`",
                        upstream_code=exc.upstream_code,
                        status=exc.status,
                    ) from exc
                job.log.warning(
                    "page failed; retrying", page=page, attempt=attempt, error=exc.message
                )
                trouble = f"Last.fm keeps failing on page {page} ({exc.message})"
            else:
                if best is None or len(answer.scrobbles) > len(best.scrobbles):
                    best = answer
                whole = len(best.scrobbles) >= expect or (
                    attempt > 1 and len(best.scrobbles) + best.unstorable >= expect
                )
                if whole or pause is None:
                    job.report_trouble(None)
                    return best
                job.log.warning(
                    "page came back short; fetching it again",
                    page=page,
                    expected=expect,
                    got=len(best.scrobbles),
                    unusable=len(best.rejected),
                    attempt=attempt,
                )
                trouble = f"Last.fm served page {page} short ({len(best.scrobbles)} of {expect})"
            job.report_trouble(f"{trouble}; asking again in {pause:g} s")
            await asyncio.sleep(pause)
        raise AssertionError("unreachable: the last pause returns or raises")
