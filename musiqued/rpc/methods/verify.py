"""``verify.start``: compare the stored history with Last.fm day by day, as a job."""

from __future__ import annotations

from typing import Any, Self

from pydantic import model_validator

from musiqued.contract.params import Params, Timestamp, check_job_window
from musiqued.rpc.table import CallContext, Method
from musiqued.services.verifier import VerifyRequest


class VerifyParams(Params):
    since: Timestamp | None = None
    until: Timestamp | None = None
    repair: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        check_job_window(self.since, self.until)
        return self


async def start(ctx: CallContext, params: VerifyParams) -> dict[str, Any]:
    request = VerifyRequest(since=params.since, until=params.until, repair=params.repair)
    return {"job_id": await ctx.services.verifier.start_verify(request)}


METHODS = (
    Method(
        "verify.start",
        VerifyParams,
        start,
        "Compare each UTC day's listens with Last.fm; re-fetch and repair days that differ.",
    ),
)
