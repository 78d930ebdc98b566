"""``musiqued`` running as ``nobody``: a daemon whose user cannot read the caller's files.

Run as root with ``python -m tests.nobody_musiqued --config FILE …`` (the same command line
as ``musiqued``). The interpreter and the project live where nobody may not look, so
everything the daemon will import is imported first, as root; then the process becomes
nobody (no supplementary groups) and runs the daemon.
"""

from __future__ import annotations

import os
import sys

NOBODY = 65534

if __name__ == "__main__":
    import asyncio  # noqa: F401
    import concurrent.futures.thread  # noqa: F401
    import encodings.idna  # noqa: F401
    import zipfile  # noqa: F401

    import aiosqlite  # noqa: F401
    import ijson  # noqa: F401

    import musiqued.app.daemon
    import musiqued.interchange.formats
    import musiqued.services.file_import  # noqa: F401
    from musiqued.app.cli import command

    main = command()
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    main(sys.argv[1:], prog_name="musiqued")
