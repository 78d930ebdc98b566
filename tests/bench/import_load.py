"""The import's CPU work without the daemon: (d)'s floor in ``import_bench.py``.

``--write``: the history's pages written as the import writes them (``storage_only``), on a
database of its own. ``--parse PAGES_PER_S``: the pages fetched from the simulator, parsed
and prepared for the writer (``prepare_page``), as the daemon's event loop does during an
import, at that pace. Run as processes of their own while an idle daemon answers
``daemon.status``, they load the machine's cores as an import does, and what the calls
then take is what a daemon that did none of that work in its own process could at best
answer in.

Each prints ``ready`` once set up (the pages fetched), starts on a line on stdin, and ends
with a line of JSON: ``{"rate": scrobbles/s}``.

    .venv/bin/python tests/bench/import_load.py (--write DB | --parse N) LASTFM_JSON
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from musiqued.config import LastfmConfig  # noqa: E402
from musiqued.storage.listens import prepare_page  # noqa: E402
from musiqued.upstream.lastfm import LastfmClient  # noqa: E402
from musiqued.upstream.ratelimit import Governor  # noqa: E402
from tests.bench.import_bench import NO_LIMIT, fetch_only, storage_only  # noqa: E402


def _started() -> None:
    print("ready", flush=True)
    sys.stdin.readline()


def write(settings: dict[str, Any], database: Path) -> float:
    _, pages = asyncio.run(fetch_only(settings))
    _started()
    return storage_only(database, pages)


async def parse(settings: dict[str, Any], pages_per_s: float) -> float:
    """Every page of the history once, page N due ``(N - 1) / pages_per_s`` after the start,
    ``max_in_flight`` at a time."""
    config = LastfmConfig.model_validate(settings)
    client = LastfmClient(config, Governor(NO_LIMIT, config.max_in_flight))
    await client.open()
    try:
        to_ts = int(time.time()) + 1
        total_pages = (await client.recent_tracks(page=1, to_ts=to_ts)).total_pages
        await asyncio.to_thread(_started)
        started = time.monotonic()
        queue = list(range(1, total_pages + 1))
        prepared = 0

        async def worker() -> None:
            nonlocal prepared
            while queue:
                page = queue.pop(0)
                await asyncio.sleep(started + (page - 1) / pages_per_s - time.monotonic())
                answer = await client.recent_tracks(page=page, to_ts=to_ts)
                prepared += prepare_page(answer.scrobbles, source="import", job_id=1).size

        await asyncio.gather(*(worker() for _ in range(config.max_in_flight)))
        return prepared / (time.monotonic() - started)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    work = parser.add_mutually_exclusive_group(required=True)
    work.add_argument("--write", type=Path, metavar="DB")
    work.add_argument("--parse", type=float, metavar="PAGES_PER_S")
    parser.add_argument("lastfm", help="the simulator's [lastfm] settings, as JSON")
    args = parser.parse_args()
    settings = json.loads(args.lastfm)
    if args.write is not None:
        rate = write(settings, args.write)
    else:
        rate = asyncio.run(parse(settings, args.parse))
    print(json.dumps({"rate": rate}), flush=True)


if __name__ == "__main__":
    main()
