"""How ListenBrainz checks a ``POST /1/submit-listens`` body, in its order and its words.

``check_submission(raw, now)`` gives the listen type and the listens as ListenBrainz keeps
them (names stripped, ``listened_at`` made an integer, empty MBIDs dropped) or raises
``Refused`` with the status and message ListenBrainz answers. A refusal that concerns one
listen carries that listen: ListenBrainz merges its keys into the error body
(``{"listened_at": …, "track_metadata": …, "code": 400, "error": "…"}``).

ListenBrainz's own quirks are kept: the size of one listen is only checked in aggregate
(the whole body may not exceed 10,240 bytes per listen), and the message for a listen dated
too early names 1033410600 while the limit is 1033430400 (2002-10-01 00:00:00 UTC).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

MAX_LISTEN_SIZE = 10240
MAX_LISTENS_PER_REQUEST = 1000
MAX_LISTEN_PAYLOAD_SIZE = MAX_LISTEN_SIZE * MAX_LISTENS_PER_REQUEST
MAX_TAGS_PER_LISTEN = 50
MAX_TAG_SIZE = 64
MAX_DURATION_LIMIT = 24 * 24 * 60 * 60
MAX_DURATION_MS_LIMIT = MAX_DURATION_LIMIT * 1000
LISTEN_MINIMUM_TS = 1033430400
LISTENED_AT_ALLOWED_SKEW = 60 * 60
LISTEN_TYPES = ("single", "playing_now", "import")
_SINGLE_MBIDS = ("release_mbid", "recording_mbid", "release_group_mbid", "track_mbid")
_MULTIPLE_MBIDS = ("artist_mbids", "work_mbids")


class Refused(Exception):
    """A refused request: its HTTP status, ListenBrainz's message, the listen concerned."""

    def __init__(self, message: str, listen: Any = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.listen = listen
        self.status = status

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.listen) if isinstance(self.listen, dict) else {}
        data["code"] = self.status
        data["error"] = self.message
        return data


@dataclass(frozen=True, slots=True)
class Submission:
    listen_type: str
    listens: list[dict[str, Any]]


def check_submission(raw: bytes, now: int) -> Submission:
    """The submission in ``raw``, checked as ListenBrainz checks it at time ``now``."""
    if len(raw) > MAX_LISTEN_PAYLOAD_SIZE:
        raise Refused(f"Payload too large. Payload cannot exceed {MAX_LISTEN_PAYLOAD_SIZE} bytes")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Refused(f"Cannot parse JSON document: {exc}") from None
    if not isinstance(data, dict):
        raise Refused(
            "Invalid JSON document submitted. Top level of JSON document should be a json object."
        )
    if "payload" not in data:
        raise Refused("Invalid JSON document submitted.")
    payload = data["payload"]
    if not isinstance(payload, list):
        raise Refused("The payload in the JSON document should be a list of listens.", payload)
    if not payload:
        raise Refused("JSON document does not contain any listens")
    if len(payload) > MAX_LISTENS_PER_REQUEST:
        raise Refused(
            f"Too many listens. You may not submit more than {MAX_LISTENS_PER_REQUEST} "
            "listens at once."
        )
    if len(raw) > len(payload) * MAX_LISTEN_SIZE:
        raise Refused(
            "JSON document is too large. Each listens may not be larger than "
            f"{MAX_LISTEN_SIZE} bytes."
        )
    if "listen_type" not in data:
        raise Refused("Invalid JSON document submitted.")
    listen_type = data["listen_type"]
    if listen_type not in LISTEN_TYPES:
        raise Refused("JSON document requires a valid listen_type key.")
    if listen_type in ("single", "playing_now") and len(payload) > 1:
        raise Refused(
            "JSON document contains more than listen for a single/playing_now. "
            "It should contain only one."
        )
    return Submission(listen_type, [check_listen(listen, listen_type, now) for listen in payload])


def check_listen(listen: Any, listen_type: str, now: int) -> dict[str, Any]:
    """One listen as ListenBrainz keeps it, or ``Refused`` naming what is wrong."""
    if listen is None:
        raise Refused("Listen is empty and cannot be validated.")
    if not isinstance(listen, dict):
        # ListenBrainz looks its keys up with ``in``: a string or list has none of them.
        key = "track_metadata" if listen_type == "playing_now" else "listened_at"
        raise Refused(f"JSON document must contain the key {key} at the top level.", listen)
    if listen_type == "playing_now":
        if "listened_at" in listen:
            raise Refused(
                "JSON document must not contain listened_at while submitting playing_now.", listen
            )
        _require_track_metadata(listen)
        if len(listen) > 1:
            raise Refused(
                "JSON document may only contain track_metadata as top level key when "
                "submitting playing_now.",
                listen,
            )
    else:
        _check_listened_at(listen, now)
        _require_track_metadata(listen)
        if len(listen) > 2:
            raise Refused(
                "JSON document may only contain listened_at and track_metadata top level keys",
                listen,
            )
    metadata = listen["track_metadata"]
    if not isinstance(metadata, dict):
        raise Refused("JSON document may not have track_metadata with null value.", listen)
    _check_name(listen, metadata, "track_name", required=True)
    _check_name(listen, metadata, "artist_name", required=True)
    _check_name(listen, metadata, "release_name", required=False)
    info = metadata.get("additional_info")
    if isinstance(info, dict):
        _check_additional_info(listen, info)
    _refuse_nulls(listen, listen)
    return listen


def _require_track_metadata(listen: dict[str, Any]) -> None:
    if "track_metadata" not in listen:
        raise Refused("JSON document must contain the key track_metadata at the top level.", listen)


def _check_listened_at(listen: dict[str, Any], now: int) -> None:
    if "listened_at" not in listen:
        raise Refused("JSON document must contain the key listened_at at the top level.", listen)
    value = listen["listened_at"]
    try:
        listen["listened_at"] = int(value)
    except (TypeError, ValueError):
        raise Refused("JSON document must contain an int value for listened_at.", listen) from None
    if listen["listened_at"] >= now + LISTENED_AT_ALLOWED_SKEW:
        raise Refused("Value for key listened_at is too high.", listen)
    if listen["listened_at"] < LISTEN_MINIMUM_TS:
        raise Refused(
            "Value for key listened_at is too low. listened_at timestamp should be greater "
            "than 1033410600 (2002-10-01 00:00:00 UTC).",
            listen,
        )


def _check_name(
    listen: dict[str, Any], metadata: dict[str, Any], key: str, *, required: bool
) -> None:
    if key not in metadata:
        if required:
            raise Refused(
                f"JSON document does not contain required field track_metadata.{key}.", listen
            )
        return
    value = metadata[key]
    if not isinstance(value, str):
        raise Refused(f"track_metadata.{key} must be a single string.", listen)
    metadata[key] = value.strip()
    if not metadata[key]:
        raise Refused(f"field track_metadata.{key} is empty.", listen)


def _check_additional_info(listen: dict[str, Any], info: dict[str, Any]) -> None:
    tags = info.get("tags")
    if tags is not None:
        if len(tags) > MAX_TAGS_PER_LISTEN:
            raise Refused(
                f"JSON document may not contain more than {MAX_TAGS_PER_LISTEN} items in "
                "track_metadata.additional_info.tags.",
                listen,
            )
        if any(len(tag) > MAX_TAG_SIZE for tag in tags):
            raise Refused(
                "JSON document may not contain track_metadata.additional_info.tags longer "
                f"than {MAX_TAG_SIZE} characters.",
                listen,
            )
    if "duration" in info and "duration_ms" in info:
        raise Refused("JSON document should not contain both duration and duration_ms.", listen)
    _check_duration(listen, info, "duration", MAX_DURATION_LIMIT)
    _check_duration(listen, info, "duration_ms", MAX_DURATION_MS_LIMIT)
    for key in _SINGLE_MBIDS:
        if key in info:
            if not info[key]:
                del info[key]
            elif not _is_uuid(info[key]):
                raise Refused(f"{key} MBID format invalid.", listen)
    for key in _MULTIPLE_MBIDS:
        if key in info:
            if not info[key]:
                del info[key]
                continue
            mbids = [mbid for mbid in info[key] if mbid]
            if not all(_is_uuid(mbid) for mbid in mbids):
                raise Refused(f"{key} MBID format invalid.", listen)
            info[key] = mbids


def _check_duration(listen: dict[str, Any], info: dict[str, Any], key: str, limit: int) -> None:
    if key not in info:
        return
    try:
        value = int(info[key])
    except (TypeError, ValueError):
        raise Refused(
            f"Value for {key} is invalid, should be a positive integer.", listen
        ) from None
    if value <= 0:
        raise Refused(f"Value for {key} is invalid, should be a positive integer.", listen)
    if value > limit:
        raise Refused(f"Value for {key} is too large, max permitted value is {limit}", listen)
    info[key] = value


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(value)
    except (AttributeError, TypeError, ValueError):
        return False
    return True


def _refuse_nulls(value: dict[str, Any], listen: dict[str, Any]) -> None:
    """A NUL anywhere in a string (PostgreSQL cannot store it) refuses the listen."""
    for item in value.values():
        if isinstance(item, dict):
            _refuse_nulls(item, listen)
            continue
        for text in item if isinstance(item, list) else [item]:
            if isinstance(text, str) and "\x00" in text:
                raise Refused(f"{text} contains a unicode null", listen)
