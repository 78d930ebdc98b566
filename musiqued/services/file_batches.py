"""The pure parts of a file import: what it counts, how it takes a file's entries in
batches, sorts them, and turns plays into listens to store (``file_import`` does the rest)."""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from musiqued.errors import BadFileError
from musiqued.interchange.entries import Entry, Origin, Play, Skipped
from musiqued.models import Scrobble

if TYPE_CHECKING:
    from musiqued.interchange.matching import FileDuplicates

DUPLICATE = "duplicate_in_file"
"""The skip reason of an exact repeat, within its file, of a play read before."""


@dataclass(slots=True)
class Tally:
    """What a file import did with the entries it read; the counts add up to ``entries``."""

    entries: int = 0
    added: int = 0
    already_stored: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    unreadable: int = 0

    @classmethod
    def load(cls, data: dict[str, Any]) -> Tally:
        """The tally ``as_dict`` wrote into a job's checkpoint."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def count(self, batch: Batch) -> None:
        """Count what reading ``batch`` found (its plays are counted as they are stored)."""
        self.entries += batch.read
        for reason, n in batch.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + n
        self.unreadable += batch.unreadable

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class HandedFile:
    """A file a client handed over: the name it gave (for messages only) and the open file."""

    name: str
    file: BinaryIO


@dataclass(frozen=True, slots=True)
class Place:
    """Where a file's reading starts: its index, entries already consumed, and the largest
    listen id before the job started reading it."""

    index: int
    consumed: int
    watermark: int


@dataclass(slots=True)
class Batch:
    """Entries taken from a file at a time: the plays to match, the others counted."""

    read: int = 0
    plays: list[Play] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    unreadable: int = 0
    reasons: list[str] = field(default_factory=list)
    error: BadFileError | None = None
    """Where the file breaks, after the entries before it."""


def known_zone(name: str | None, default: dt.tzinfo = dt.UTC) -> dt.tzinfo:
    """The zone ``name`` (IANA), ``default`` for None; ``ValueError`` for a name no zone
    has."""
    if name is None:
        return default
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def chosen_formats(files: Sequence[HandedFile], fmt: str) -> list[Origin]:
    """Each file's format: ``fmt``, or with ``auto`` the one ``formats.detect`` tells from
    its start; ``BadFileError`` naming the first file that is none."""
    # The readers load with the first file a client hands over, not with the daemon.
    from musiqued.interchange import formats

    found: list[Origin] = []
    for handed in files:
        if fmt != "auto":
            found.append(fmt)  # type: ignore[arg-type]  # validated against FORMATS
            continue
        head = os.pread(handed.file.fileno(), formats.DETECT_BYTES, 0)
        found.append(formats.detect(handed.name, head))
    return found


def take(entries: Iterator[Entry], count: int) -> tuple[list[Entry], BadFileError | None]:
    """Up to ``count`` entries; where the file breaks, those before and the error."""
    taken: list[Entry] = []
    try:
        for entry in entries:
            taken.append(entry)
            if len(taken) >= count:
                break
    except BadFileError as exc:
        return taken, exc
    return taken, None


def ranges(plays: Sequence[Play], window_s: int) -> list[list[int]]:
    """The starts' windows, merged where they overlap, as ``[low, high]`` pairs."""
    merged: list[list[int]] = []
    for start in sorted({p.timestamp for p in plays}):
        low, high = start - window_s, start + window_s
        if merged and low <= merged[-1][1]:
            merged[-1][1] = high
        else:
            merged.append([low, high])
    return merged


def scrobble_of(play: Play) -> Scrobble:
    return Scrobble(
        timestamp=play.timestamp,
        artist=play.artist,
        title=play.title,
        album=play.album,
        artist_mbid=play.artist_mbid,
        album_mbid=play.album_mbid,
        track_mbid=play.track_mbid,
        origin=play.origin,
        spotify_uri=play.spotify_track_uri,
    )


def next_batch(entries: Iterator[Entry], count: int, dups: FileDuplicates, name: str) -> Batch:
    """Up to ``count`` entries sorted out (run in a thread, while the batch before is
    stored): the plays that are not repeats of one read before, the rest counted."""
    from musiqued.interchange import formats  # loaded by the file's reader already

    taken, error = take(entries, count)
    batch = Batch(read=len(taken), error=error)
    for entry in taken:
        if isinstance(entry, Play):
            if dups.seen(entry):
                batch.skipped[DUPLICATE] = batch.skipped.get(DUPLICATE, 0) + 1
            else:
                batch.plays.append(entry)
        elif isinstance(entry, Skipped):
            batch.skipped[entry.reason] = batch.skipped.get(entry.reason, 0) + 1
        else:
            batch.unreadable += 1
            batch.reasons.append(f"{formats.shown(name)}: {entry.where}: {entry.reason}")
    return batch
