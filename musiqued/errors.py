"""One exception tree for musiqued.

::

    MusiqueError
    ├── ConfigError                 bad configuration: needs a human (exit 78)
    ├── AlreadyRunningError         another musiqued holds the database or the socket (exit 75)
    ├── StoreError                  the database cannot be used
    │   ├── SchemaTooNewError       written by a newer musiqued
    │   ├── StorageFullError        no space left for a write: retry once space is back
    │   └── DatabaseGoneError       the file was deleted or replaced under the daemon
    ├── NotConfiguredError          a feature lacks its credentials
    ├── NotFoundError               no such job / item
    ├── ConflictError               e.g. an import is already running
    ├── BadFileError                a file to import is none of the known formats, or breaks
    └── UpstreamError               Last.fm, Spotify, the AI endpoint or ListenBrainz failed
        ├── TransientUpstreamError  retry later (5xx, timeouts, Last.fm 8/11/16, malformed)
        │   └── RateLimitedError    slow down (Last.fm 29, HTTP 429)
        ├── FatalUpstreamError      needs a human (bad key, unknown user, private profile)
        └── RefusedError            the service refused what was sent (ListenBrainz's 400):
                                    sending it again will not help, nor will a human

Each error that can reach an RPC client carries its JSON-RPC ``code`` and a stable ``kind``
string, so the RPC layer maps them without knowing the business logic.
"""

from __future__ import annotations

from musiqued import wire


class MusiqueError(Exception):
    """Base of every error musiqued raises on purpose."""

    code: int = wire.INTERNAL_ERROR
    kind: str = "internal"

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind


class ConfigError(MusiqueError):
    """The configuration is invalid; the message names the file, key and reason."""

    kind = "config"


class AlreadyRunningError(MusiqueError):
    """Another musiqued holds the database or the socket; the message says which and who."""

    kind = "already_running"


class StoreError(MusiqueError):
    """The database cannot be opened or used."""

    kind = "store"


class SchemaTooNewError(StoreError):
    """The database was written by a newer version of musiqued."""

    kind = "schema_too_new"


class StorageFullError(StoreError):
    """A write failed for lack of disk space; nothing of it was committed."""

    kind = "storage_full"


class DatabaseGoneError(StoreError):
    """The database file was deleted or replaced while the daemon ran: writes stop."""

    kind = "database_gone"


class NotConfiguredError(MusiqueError):
    code = wire.NOT_CONFIGURED
    kind = "not_configured"


class NotFoundError(MusiqueError):
    code = wire.NOT_FOUND
    kind = "not_found"


class ConflictError(MusiqueError):
    code = wire.CONFLICT
    kind = "conflict"


class BadFileError(MusiqueError):
    """A file handed over for import cannot be read (further): the message names the file and
    says where and why, in one line. ``kind`` tells which: ``unknown_format``, ``not_utf8``,
    ``broken_json``, ``broken_zip``."""

    code = wire.INVALID_PARAMS
    kind = "bad_file"


class UpstreamError(MusiqueError):
    code = wire.UPSTREAM_ERROR
    kind = "upstream"

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        service: str = "lastfm",
        status: int | None = None,
        upstream_code: int | None = None,
    ) -> None:
        super().__init__(message, kind=kind)
        self.service = service
        self.status = status
        self.upstream_code = upstream_code


class TransientUpstreamError(UpstreamError):
    """Worth retrying after a pause."""

    kind = "upstream_transient"


class RateLimitedError(TransientUpstreamError):
    """The service asked us to slow down."""

    kind = "rate_limited"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class FatalUpstreamError(UpstreamError):
    """Retrying will not help: a human must fix credentials or the username."""

    kind = "upstream_fatal"


class RefusedError(UpstreamError):
    """The service refused what was sent, with its reason; other submissions go on."""

    kind = "refused"

    def __init__(
        self, message: str, *, reason: str, listen: dict[str, object] | None = None, **kw: object
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.reason = reason
        """The service's own words (untrusted text)."""
        self.listen = listen
        """The listen the service named as refused, if its answer named one."""
