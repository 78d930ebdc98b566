"""File benchmark: a 10-file, 150,000-entry Spotify dump and a 1,000,000-listen
ListenBrainz export zip, read as an import reads them, then imported by a daemon; and the
round trips.

Generates both (streamed to disk, with the real field names and value shapes, some
podcasts, short and incognito plays among the Spotify entries), then reads each in a
process of its own: every entry through ``interchange.formats.read`` and every play
through ``FileDuplicates`` (the in-file duplicates, which an import keeps for the whole
file). Prints entries/s (and the CPU time the reading took: the machine may be shared) and
the reading process's peak RSS (its ``ru_maxrss``), and the
counts by kind.

The import's floors, for the whole import (reading, matching, storing): >= 10,000
entries/s and peak RSS <= 150 MB. The import is measured through a real daemon
(``musiquectl import-file`` into an empty database: the wall time of the command, the
daemon's peak RSS from ``/proc/PID/status`` ``VmHWM``).

The round trips: ``musiquectl export --format listenbrainz`` (then ``maloja``) from the
daemon holding the ListenBrainz import, imported into an empty daemon: the identity sets
(start, artist, title) of both histories are equal.

    .venv/bin/python tests/bench/files_bench.py [--spotify 150000] [--listens 1000000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from musiqued.interchange import formats  # noqa: E402
from musiqued.interchange.entries import Play, Skipped  # noqa: E402
from musiqued.interchange.matching import FileDuplicates  # noqa: E402
from tests import interchange_files as files  # noqa: E402
from tests.support import DaemonProcess, base_sections, run_ctl, write_config  # noqa: E402

START = 1_262_304_000  # 2010-01-01T00:00:00Z
SPOTIFY_FILES = 10


def spotify_dump(folder: Path, entries: int, seed: int = 7) -> list[Path]:
    """``Streaming_History_Audio_<n>.json`` files of ``entries`` plays together, a play
    every ~4 minutes: 5 % podcasts, 8 % under 30 s, 1 % incognito."""
    rng = random.Random(seed)
    paths = []
    end = START
    per_file = entries // SPOTIFY_FILES
    for number in range(SPOTIFY_FILES):
        path = folder / f"Streaming_History_Audio_{2010 + number}_{number}.json"
        count = per_file if number < SPOTIFY_FILES - 1 else entries - per_file * number
        with path.open("wb") as out:
            out.write(b"[\n")
            for index in range(count):
                end += rng.randint(120, 360)
                roll = rng.random()
                if roll < 0.05:
                    entry = files.spotify_episode(end)
                else:
                    artist = rng.randrange(2000)
                    entry = files.spotify_play(
                        end,
                        ms_played=rng.randint(1000, 29_000)
                        if roll < 0.13
                        else rng.randint(30_000, 400_000),
                        track=f"Track {artist}-{rng.randrange(20)}",
                        artist=f"Artist {artist} Ø",
                        album=f"Album {artist}-{rng.randrange(4)}",
                        incognito=roll > 0.99,
                    )
                out.write(b",\n" if index else b"")
                out.write(orjson.dumps(entry, option=orjson.OPT_INDENT_2))
            out.write(b"\n]\n")
        paths.append(path)
    return paths


def listenbrainz_export(path: Path, listens: int, seed: int = 7) -> None:
    """ListenBrainz's export zip: ``user.json`` and a ``listens/<year>/<month>.jsonl``
    per month, a listen every ~4 minutes, some with identifiers."""
    rng = random.Random(seed)
    listened_at = START
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("user.json", '{"user_id": 7, "username": "someone"}\n')
        month: tuple[int, int] | None = None
        member = None
        for _ in range(listens):
            listened_at += rng.randint(120, 360)
            moment = dt.datetime.fromtimestamp(listened_at, dt.UTC)
            if (moment.year, moment.month) != month:
                if member is not None:
                    member.close()
                month = (moment.year, moment.month)
                member = archive.open(f"listens/{moment.year}/{moment.month}.jsonl", "w")
            artist = rng.randrange(2000)
            info = {"recording_mbid": f"{artist:08d}-0000-4000-8000-{rng.randrange(20):012d}"}
            listen = files.listenbrainz_listen(
                float(listened_at),
                artist=f"Artist {artist} Ø",
                title=f"Track {artist}-{rng.randrange(20)}",
                release=f"Album {artist}-{rng.randrange(4)}",
                additional_info=info if rng.random() < 0.5 else None,
            )
            assert member is not None
            member.write(orjson.dumps(listen, option=orjson.OPT_APPEND_NEWLINE))
        if member is not None:
            member.close()


def read_files(fmt: str, paths: list[str]) -> None:
    """(In the reading process.) Read every entry and print the figures as JSON."""
    tally: Counter[str] = Counter()
    started = time.perf_counter()
    cpu_started = time.process_time()
    for path in paths:
        duplicates = FileDuplicates()
        with open(path, "rb") as file:
            for entry in formats.read(fmt, file, Path(path).name):  # type: ignore[arg-type]
                if isinstance(entry, Play):
                    tally["duplicate" if duplicates.seen(entry) else "play"] += 1
                elif isinstance(entry, Skipped):
                    tally[entry.reason] += 1
                else:
                    tally["unreadable"] += 1
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "entries": sum(tally.values()),
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "peak_mb": peak_mb,
                "tally": tally,
            }
        )
    )


def measure(label: str, fmt: str, paths: list[Path]) -> None:
    done = subprocess.run(
        [sys.executable, __file__, "--read", fmt, *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    rate = result["entries"] / result["seconds"]
    size_mb = sum(path.stat().st_size for path in paths) / 1e6
    print(
        f"{label}: {result['entries']:,} entries ({size_mb:,.0f} MB) in {result['seconds']:.1f} s "
        f"({result['cpu_seconds']:.1f} s of CPU): "
        f"{rate:,.0f} entries/s, peak RSS {result['peak_mb']:.0f} MB "
        f"(floors for the whole import: >= 10,000/s, <= 150 MB)"
    )
    print("  " + ", ".join(f"{kind} {count:,}" for kind, count in sorted(result["tally"].items())))


def daemon_in(folder: Path) -> DaemonProcess:
    """A daemon on an empty database in ``folder`` (made)."""
    folder.mkdir()
    config = write_config(folder / "musiqued.toml", base_sections(folder))
    return DaemonProcess(folder, config, folder / "d.sock").start()


def peak_rss_mb(daemon: DaemonProcess) -> float:
    assert daemon.proc is not None
    for line in Path(f"/proc/{daemon.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(daemon: DaemonProcess) -> float:
    """The daemon's CPU time so far (user + system, all its threads)."""
    assert daemon.proc is not None
    fields = Path(f"/proc/{daemon.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def imported(label: str, daemon: DaemonProcess, paths: list[Path]) -> None:
    """Import ``paths`` into ``daemon`` with musiquectl; print the figures (the CPU time
    too: on a shared machine the wall time says as much about the neighbours)."""
    cpu_before = cpu_seconds(daemon)
    started = time.perf_counter()
    done = run_ctl(
        "--json", "import-file", *map(str, paths), socket_path=daemon.socket_path, timeout=3600
    )
    seconds = time.perf_counter() - started
    cpu = cpu_seconds(daemon) - cpu_before
    if done.returncode != 0:
        raise SystemExit(f"{label}: import-file failed: {done.stderr}")
    result = json.loads(done.stdout)["result"]
    print(
        f"{label} imported: {result['entries']:,} entries in {seconds:.1f} s: "
        f"{result['entries'] / seconds:,.0f} entries/s ({cpu:.1f} s of the daemon's CPU: "
        f"{result['entries'] / max(cpu, 1e-9):,.0f} entries per CPU second), daemon peak RSS "
        f"{peak_rss_mb(daemon):.0f} MB (floors: >= 10,000/s, <= 150 MB)"
    )
    print(f"  {json.dumps(result)}")


def identities(daemon: DaemonProcess) -> set[tuple[int, str, str]]:
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "musiquectl"),
            "--socket",
            str(daemon.socket_path),
            "export",
            "--format",
            "jsonl",
        ],
        capture_output=True,
        check=True,
    )
    return {
        (listen["timestamp"], listen["artist"], listen["title"])
        for listen in map(orjson.loads, done.stdout.splitlines())
    }


def round_trip(fmt: str, source: DaemonProcess, folder: Path) -> None:
    """Export ``fmt`` from ``source``, import it into an empty daemon, compare identities."""
    exported = folder / f"history.{'listens.jsonl' if fmt == 'listenbrainz' else 'maloja.json'}"
    done = run_ctl("export", "-o", str(exported), socket_path=source.socket_path, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"export {fmt} failed: {done.stderr}")
    target = daemon_in(folder / f"empty-{fmt}")
    try:
        imported(f"round trip {fmt}", target, [exported])
        mine, theirs = identities(source), identities(target)
        verdict = "equal" if mine == theirs else f"DIFFERENT ({len(mine ^ theirs):,} differ)"
        print(
            f"round trip {fmt}: {len(mine):,} identities exported, {len(theirs):,} imported: {verdict}"
        )
    finally:
        target.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spotify", type=int, default=150_000)
    parser.add_argument("--listens", type=int, default=1_000_000)
    parser.add_argument("--read", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read:
        read_files(args.read[0], args.read[1:])
        return
    with tempfile.TemporaryDirectory(prefix="files-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        spotify = spotify_dump(folder, args.spotify)
        archive = folder / "listenbrainz_someone_1700000000.zip"
        listenbrainz_export(archive, args.listens)
        print(f"generated in {time.perf_counter() - started:.0f} s")
        measure(f"Spotify, {SPOTIFY_FILES} files", "spotify", spotify)
        measure("ListenBrainz export zip", "listenbrainz", [archive])
        spotify_daemon = daemon_in(folder / "spotify")
        try:
            imported(f"Spotify, {SPOTIFY_FILES} files", spotify_daemon, spotify)
        finally:
            spotify_daemon.stop()
        source = daemon_in(folder / "listenbrainz")
        try:
            imported("ListenBrainz export zip", source, [archive])
            round_trip("listenbrainz", source, folder)
            round_trip("maloja", source, folder)
        finally:
            source.stop()


if __name__ == "__main__":
    main()
