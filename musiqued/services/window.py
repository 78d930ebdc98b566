"""Paging a frozen window of ``user.getRecentTracks`` for jobs (imports and verifies).

The Last.fm client already retries each request a few times with a short backoff; a job
must survive longer outages than that. The pager asks again after longer pauses before the
job fails (and the job stays resumable from its checkpoint). The pauses are the client's
``RetryPolicy`` (``page_pauses``, ``short_page_pauses``).
"""

from __future__ import annotations

import asyncio

from musiqued.errors import TransientUpstreamError
from musiqued.models import RecentTracksPage
from musiqued.services.jobs import JobContext
from musiqued.services.lastfm_session import LastfmConnection
from musiqued.upstream.lastfm import Retry
from musiqued.upstream.ratelimit import Priority


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

        ``expect``: the scrobbles this page must hold; a page that comes back with fewer
        (short, empty, or with broken entries: no date, wrong types) is fetched again after
        each of the policy's ``short_page_pauses``, and the fullest answer is returned: the
        caller records a page that stayed short. Scrobbles Last.fm holds that cannot be
        stored (a blank name, a timestamp out of range) are the same every time: a page
        whole but for those is asked once more only.
        """
        best = await self._fetch(job, page=page, limit=limit, from_ts=from_ts, to_ts=to_ts)
        pauses = self._lastfm.require().retry.short_page_pauses
        for attempt, pause in enumerate(pauses, start=1):
            if len(best.scrobbles) >= expect:
                break
            if attempt > 1 and len(best.scrobbles) + best.unstorable >= expect:
                break
            job.log.warning(
                "page came back short; fetching it again",
                page=page,
                expected=expect,
                got=len(best.scrobbles),
                unusable=len(best.rejected),
                attempt=attempt,
            )
            job.report_trouble(
                f"Last.fm served page {page} short ({len(best.scrobbles)} of {expect}); "
                f"asking again in {pause:g} s"
            )
            await asyncio.sleep(pause)
            again = await self._fetch(job, page=page, limit=limit, from_ts=from_ts, to_ts=to_ts)
            if len(again.scrobbles) > len(best.scrobbles):
                best = again
        return best

    async def _fetch(
        self,
        job: JobContext,
        *,
        page: int,
        limit: int,
        from_ts: int | None,
        to_ts: int | None,
    ) -> RecentTracksPage:
        lastfm = self._lastfm.require()

        def retrying(retry: Retry) -> None:
            job.report_trouble(retry.describe())

        for attempt, pause in enumerate((*lastfm.retry.page_pauses, None)):
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
                if pause is None:
                    raise TransientUpstreamError(
                        f"Last.fm kept failing on page {page} ({exc.message}); "
                        f"resume later with `musiquectl jobs resume {job.job_id}`",
                        upstream_code=exc.upstream_code,
                        status=exc.status,
                    ) from exc
                job.log.warning(
                    "page failed; retrying", page=page, attempt=attempt + 1, error=exc.message
                )
                job.report_trouble(
                    f"Last.fm keeps failing on page {page} ({exc.message}); "
                    f"trying again in {pause:g} s"
                )
                await asyncio.sleep(pause)
            else:
                job.report_trouble(None)
                return answer
        raise AssertionError("unreachable")
