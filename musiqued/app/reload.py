"""What a reload may not change: settings bound at start, and credentials a job relies on.

``[daemon] database``, ``socket`` and ``socket_mode`` are taken when the daemon starts (the
database opened and locked, the socket bound): a reload keeps the values in force and says
which changes wait for a restart. A reload that would take Last.fm's credentials away while
a job that calls Last.fm is still to run is refused as a whole: that job would fail against
nothing (an empty file read by mistake is the usual way this happens).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from musiqued.config import Config
from musiqued.errors import ConfigError

RESTART_ONLY = ("database", "socket", "socket_mode")
"""``[daemon]`` keys a reload does not apply."""


def keep_restart_only(old: Config, new: Config) -> tuple[Config, list[str]]:
    """``new`` with the restart-only settings of ``old``, and the names of those that
    differed (``daemon.database``)."""
    differing = [
        key for key in RESTART_ONLY if getattr(new.daemon, key) != getattr(old.daemon, key)
    ]
    if not differing:
        return new, []
    kept = new.daemon.model_copy(update={key: getattr(old.daemon, key) for key in differing})
    return new.model_copy(update={"daemon": kept}), [f"daemon.{key}" for key in differing]


def refuse_lost_lastfm(old: Config, new: Config, active_jobs: Sequence[dict[str, Any]]) -> None:
    """Raise ConfigError when ``new`` drops the Last.fm credentials ``active_jobs`` need."""
    if not old.lastfm.configured or new.lastfm.configured or not active_jobs:
        return
    jobs = ", ".join(f"{job['kind']} job {job['job_id']} ({job['state']})" for job in active_jobs)
    raise ConfigError(
        f"configuration not reloaded, the previous one stays in force: it has no Last.fm "
        f"credentials ([lastfm] api_key and username) while {jobs} needs them; cancel the "
        "job first, or fix the file",
        kind="config_invalid",
    )
