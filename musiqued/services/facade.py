"""What the front ends (RPC methods, the HTTP API) may use: the services, typed.

The daemon builds one ``Services`` at start-up and hands it to each front end; a front end
never sees the daemon itself. ``DaemonControl`` is the daemon's own small surface (its status,
a reload), implemented by the composition root in ``musiqued.app``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from musiqued.services.answers import AnswerBudget
from musiqued.services.web_login import WebLogins

if TYPE_CHECKING:
    from musiqued.services.enrichment import Enricher
    from musiqued.services.events import EventBus
    from musiqued.services.file_import import FileImporter
    from musiqued.services.image_cache import ImageCache
    from musiqued.services.importer import Importer
    from musiqued.services.jobs import JobRunner
    from musiqued.services.lastfm_session import LastfmConnection
    from musiqued.services.library import Library
    from musiqued.services.mirror import Mirror
    from musiqued.services.tracker import Tracker
    from musiqued.services.verifier import Verifier


class DaemonControl(Protocol):
    """The daemon as a whole: what it reports about itself, and re-reading its configuration."""

    async def status(self) -> dict[str, Any]: ...

    async def reload(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Services:
    control: DaemonControl
    events: EventBus
    jobs: JobRunner
    importer: Importer
    verifier: Verifier
    tracker: Tracker
    enricher: Enricher
    lastfm: LastfmConnection
    library: Library
    images: ImageCache
    mirror: Mirror
    files: FileImporter
    # One-time links to the web page: minted over the socket, redeemed over HTTP.
    web_logins: WebLogins = field(default_factory=WebLogins)
    # What all clients together may hold in answers (socket and HTTP share it).
    answers: AnswerBudget = field(default_factory=AnswerBudget)
