"""The Settings page's file upload: ``POST /api/v1/imports/files``, the same import as
``import.file``.

The body is ``multipart/form-data``, one part per file (each with its ``filename``); the
options are query parameters, checked by ``import.file``'s own model (``format``,
``dry_run``, ``zone``) before any of the body is read. Each file is streamed, a piece at a
time, into an unnamed temporary file in the daemon's state directory (``O_TMPFILE`` where
the file system has it, else one removed as soon as it is made): nothing holds a whole
file in memory, and nothing is left behind whatever happens. The open files then go to the
file importer exactly as the descriptors a ``musiquectl import-file`` hands over do; its
copy, job and checks are the same.

Limits: ``[http] max_upload_mb`` for the whole body (a ``Content-Length`` over it is refused
before anything is read; a body that grows past it is refused at that point; both 413, the
files received so far dropped), and the pause a body may make (``limits.in_time``: 408).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import structlog
from aiohttp import BodyPartReader, web

from musiqued import wire
from musiqued.contract.params import FileImportOptions
from musiqued.errors import StorageFullError, StoreError
from musiqued.http.common import HttpProblem, validated
from musiqued.http.limits import in_time, streams_body
from musiqued.http.rest import PREFIX
from musiqued.services.file_batches import HandedFile

if TYPE_CHECKING:
    from musiqued.config import HttpConfig
    from musiqued.services.facade import Services

log = structlog.get_logger("musiqued.http")

UPLOAD_PATH = f"{PREFIX}/imports/files"
PIECE = 1024 * 1024
"""The most of a file read (and written) at a time."""
MAX_NAME = 4096


def too_large(limit: int) -> str:
    return (
        f"the upload is over the {limit // (1024 * 1024)} MiB limit ([http] max_upload_mb); "
        "nothing imported: send fewer or smaller files, or use musiquectl import-file"
    )


class UploadApi:
    """The upload endpoint; its temporary files go in ``state_dir``."""

    def __init__(self, services: Services, config: HttpConfig, *, state_dir: Path) -> None:
        self._services = services
        self._config = config
        self._state_dir = state_dir

    def reconfigure(self, config: HttpConfig) -> None:
        self._config = config

    def routes(self) -> list[web.RouteDef]:
        return [web.post(UPLOAD_PATH, self.upload)]

    @streams_body
    async def upload(self, request: web.Request) -> web.Response:
        """202 ``{job_id}``, or with ``dry_run`` 200 and the summary, nothing stored."""
        options = validated(FileImportOptions, request.query)
        limit = self._config.max_upload_bytes
        if request.content_length is not None and request.content_length > limit:
            raise HttpProblem(413, too_large(limit), kind="upload_too_large")
        if request.content_type != "multipart/form-data":
            raise HttpProblem(
                415,
                "send the files as multipart/form-data, one part per file with its filename",
                kind="not_multipart",
            )
        with contextlib.ExitStack() as stack:
            handed = await self._receive(request, stack, limit)
            files = self._services.files
            if options.dry_run:
                return web.json_response(
                    await files.dry_run(handed, options.format, zone=options.zone)
                )
            job_id = await files.start(handed, options.format, zone=options.zone)
            return web.json_response({"job_id": job_id}, status=202)

    async def _receive(
        self, request: web.Request, stack: contextlib.ExitStack, limit: int
    ) -> list[HandedFile]:
        """Each part of the body in a temporary file (closed, so gone, with ``stack``)."""
        handed: list[HandedFile] = []
        received = 0
        try:
            reader = await request.multipart()
            while (part := await in_time(request, reader.next())) is not None:
                if not isinstance(part, BodyPartReader) or not part.filename:
                    raise HttpProblem(
                        422, "each part of the upload must be a file, with its filename"
                    )
                if len(part.filename) > MAX_NAME:
                    raise HttpProblem(422, f"a file name is over {MAX_NAME} characters")
                if len(handed) >= wire.MAX_HANDED_FILES:
                    raise HttpProblem(422, f"at most {wire.MAX_HANDED_FILES} files at once")
                file = stack.enter_context(await asyncio.to_thread(self._temporary))
                while piece := await in_time(request, part.read_chunk(PIECE)):
                    received += len(piece)
                    if received > limit:
                        raise HttpProblem(413, too_large(limit), kind="upload_too_large")
                    await asyncio.to_thread(self._write, file, piece)
                await asyncio.to_thread(self._write, file, b"")
                handed.append(HandedFile(part.filename, file))
        except ConnectionError:
            # The client left (a closed tab): nobody reads this answer.
            log.info("http upload abandoned: the client left", files=len(handed))
            raise HttpProblem(400, "the upload ended before its body did") from None
        except ValueError as exc:  # aiohttp's word for a body that is not well-formed
            raise HttpProblem(
                400, f"the upload is not well-formed multipart/form-data: {exc}"
            ) from None
        if not handed:
            raise HttpProblem(422, "the upload holds no file")
        return handed

    def _temporary(self) -> BinaryIO:
        """An unnamed file in the state directory: it is gone once closed."""
        try:
            return tempfile.TemporaryFile(dir=self._state_dir)
        except OSError as exc:
            raise StoreError(
                f"cannot keep the upload in {self._state_dir}: {exc.strerror or exc}; "
                "nothing imported"
            ) from None

    def _write(self, file: BinaryIO, piece: bytes) -> None:
        """Append ``piece``; an empty one flushes (the importer reads the descriptor)."""
        try:
            if piece:
                file.write(piece)
            else:
                file.flush()
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise StorageFullError(
                    f"no room for the upload in {self._state_dir}; nothing imported"
                ) from None
            raise StoreError(
                f"cannot keep the upload in {self._state_dir}: {exc.strerror or exc}; "
                "nothing imported"
            ) from None
