"""``import.file``: import files the client opened and hands over as descriptors.

The request names the files (``{name, fd, size}``: ``fd`` is the file's index among the
descriptors, ``name`` the path as the user gave it, for detection and messages only); the
descriptors themselves follow the daemon's go-ahead (``Connection.receive_fds``). The daemon
never opens a path a client names.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Self

from pydantic import Field, model_validator

from musiqued import wire
from musiqued.contract.params import FileImportOptions, Params
from musiqued.rpc.table import CallContext, Method
from musiqued.services.file_batches import HandedFile


class HandedName(Params):
    name: str = Field(max_length=4096)
    fd: int = Field(ge=0, lt=wire.MAX_HANDED_FILES)
    size: int = Field(default=0, ge=0)


class ImportFileParams(FileImportOptions):
    files: list[HandedName] = Field(min_length=1, max_length=wire.MAX_HANDED_FILES)

    @model_validator(mode="after")
    def _each_descriptor_once(self) -> Self:
        if sorted(f.fd for f in self.files) != list(range(len(self.files))):
            raise ValueError("files must name each handed descriptor (0, 1, ...) exactly once")
        return self


async def import_file(ctx: CallContext, params: ImportFileParams) -> dict[str, Any]:
    fds = await ctx.connection.receive_fds(ctx.reply_to, len(params.files))
    with contextlib.ExitStack() as stack:
        for fd in fds:
            stack.callback(os.close, fd)
        handed = [
            HandedFile(f.name, stack.enter_context(open(fds[f.fd], "rb", closefd=False)))  # noqa: ASYNC230
            for f in params.files
        ]
        files = ctx.services.files
        if params.dry_run:
            return await files.dry_run(handed, params.format, zone=params.zone)
        return {"job_id": await files.start(handed, params.format, zone=params.zone)}


METHODS = (
    Method(
        "import.file",
        ImportFileParams,
        import_file,
        "Import files handed over as descriptors ({files: [{name, fd, size}], format?, "
        "dry_run?, zone?}; the daemon's `files.send` go-ahead asks for them): `{job_id}` (kind "
        "`file`), or with dry_run the summary, nothing stored.",
    ),
)
