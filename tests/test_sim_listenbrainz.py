"""The simulated ListenBrainz: it checks submissions as ListenBrainz does, in its words, sends
its rate-limit headers, breaks on command, and keeps what it received."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from musiqued.sim.listenbrainz import RATE_LIMITED, ListenBrainzSim, Settings
from musiqued.sim.listenbrainz_rules import LISTEN_MINIMUM_TS
from tests.fixtures.listenbrainz import SimulatedListenBrainz, running_listenbrainz
from tests.support import VENV_BIN, free_port

NOW = 1_900_000_000
"""The clock of the simulators built here: a fixed moment, whatever the time of day."""
TOKEN = "tok-1"


def call(
    sim: SimulatedListenBrainz,
    path: str,
    body: Any = None,
    *,
    token: str | None = TOKEN,
    raw: bytes | None = None,
    authorization: str | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One request: status, headers and the JSON body (None if there is none)."""
    data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
    request = urllib.request.Request(f"{sim.base_url}{path}", data=data)  # noqa: S310
    if authorization is not None:
        request.add_header("Authorization", authorization)
    elif token is not None:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            status, headers, text = int(response.status), dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, headers, text = int(exc.code), dict(exc.headers), exc.read()
    return status, headers, orjson.loads(text) if text else None


def listen(at: int | None = NOW - 600, artist: str = "Artist", track: str = "Track") -> Any:
    item: dict[str, Any] = {"track_metadata": {"artist_name": artist, "track_name": track}}
    if at is not None:
        item["listened_at"] = at
    return item


def submit(sim: SimulatedListenBrainz, listen_type: str, *listens: Any) -> tuple[int, Any]:
    status, _, body = call(
        sim, "/1/submit-listens", {"listen_type": listen_type, "payload": list(listens)}
    )
    return status, body


@pytest.fixture
def lb() -> Iterator[SimulatedListenBrainz]:
    """A simulator at a fixed moment, two users, 1,000 requests per 10 s window."""
    clock = [float(NOW)]
    settings = Settings(tokens=((TOKEN, "alice"), ("tok-2", "bob")), limit=1000, ip_limit=1000)
    sim = ListenBrainzSim(settings, clock=lambda: clock[0])
    with running_listenbrainz(sim) as running:
        yield running


def test_accepted_listens_are_kept_per_user_as_listenbrainz_keeps_them(
    lb: SimulatedListenBrainz,
) -> None:
    """Imports and single listens are kept per token's user, in order, names stripped and
    empty MBIDs dropped; playing_now is kept apart; the admin API shows the same."""
    mbid = "8f3471b5-7e6a-48da-86a9-c1c07a0f47ae"
    first = listen(NOW - 900, " Artist ", "Track\t")
    first["track_metadata"]["additional_info"] = {"recording_mbid": mbid, "release_mbid": ""}
    assert submit(lb, "import", first, listen(NOW - 600, track="Two")) == (200, {"status": "ok"})
    assert submit(lb, "single", listen(NOW - 300, track="Three"))[0] == 200
    assert submit(lb, "playing_now", listen(None, track="Now"))[0] == 200
    status, _, body = call(
        lb, "/1/submit-listens", {"listen_type": "single", "payload": [listen()]}, token="tok-2"
    )
    assert (status, body) == (200, {"status": "ok"})
    assert lb.sim.listens("alice") == [
        {
            "listened_at": NOW - 900,
            "track_metadata": {
                "artist_name": "Artist",
                "track_name": "Track",
                "additional_info": {"recording_mbid": mbid},
            },
        },
        listen(NOW - 600, track="Two"),
        listen(NOW - 300, track="Three"),
    ]
    assert lb.sim.playing_now("alice") == {"artist_name": "Artist", "track_name": "Now"}
    assert lb.sim.listens("bob") == [listen()]
    status, _, received = call(lb, "/admin/listens")
    assert received["users"]["alice"]["listens"] == lb.sim.listens("alice")
    assert received["users"]["bob"] == {"listens": [listen()], "playing_now": None}


TOO_LOW = (
    "Value for key listened_at is too low. listened_at timestamp should be greater than "
    "1033410600 (2002-10-01 00:00:00 UTC)."
)


def _with(item: Any, **metadata: Any) -> Any:
    item["track_metadata"].update(metadata)
    return item


REFUSED_LISTENS = [
    ("single", {"track_metadata": {"artist_name": "A", "track_name": "T"}},
     "JSON document must contain the key listened_at at the top level."),
    ("single", listen("soon"), "JSON document must contain an int value for listened_at."),
    ("single", listen(LISTEN_MINIMUM_TS - 1), TOO_LOW),
    ("import", listen(NOW + 3600), "Value for key listened_at is too high."),
    ("single", {"listened_at": NOW - 60},
     "JSON document must contain the key track_metadata at the top level."),
    ("single", {**listen(), "extra": 1},
     "JSON document may only contain listened_at and track_metadata top level keys"),
    ("playing_now", listen(NOW - 60),
     "JSON document must not contain listened_at while submitting playing_now."),
    ("playing_now", {**listen(None), "extra": 1},
     "JSON document may only contain track_metadata as top level key when submitting "
     "playing_now."),
    ("single", {"listened_at": NOW - 60, "track_metadata": None},
     "JSON document may not have track_metadata with null value."),
    ("single", {"listened_at": NOW - 60, "track_metadata": {"artist_name": "A"}},
     "JSON document does not contain required field track_metadata.track_name."),
    ("single", listen(artist="  "), "field track_metadata.artist_name is empty."),
    ("import", _with(listen(), track_name=7), "track_metadata.track_name must be a single string."),
    ("single", _with(listen(), release_name=""), "field track_metadata.release_name is empty."),
    ("single", _with(listen(), additional_info={"recording_mbid": "not-an-mbid"}),
     "recording_mbid MBID format invalid."),
    ("single", _with(listen(), additional_info={"artist_mbids": ["x"]}),
     "artist_mbids MBID format invalid."),
    ("single", _with(listen(), additional_info={"duration_ms": 0}),
     "Value for duration_ms is invalid, should be a positive integer."),
    ("single", _with(listen(), additional_info={"duration": 1, "duration_ms": 1000}),
     "JSON document should not contain both duration and duration_ms."),
    ("single", listen(track="Nul\x00"), "Nul\x00 contains a unicode null"),
]  # fmt: skip


@pytest.mark.parametrize(("listen_type", "item", "message"), REFUSED_LISTENS)
def test_a_refused_listen_is_answered_400_with_its_reason_and_its_keys(
    lb: SimulatedListenBrainz, listen_type: str, item: Any, message: str
) -> None:
    """A listen ListenBrainz would refuse is answered 400 ``{code, error}`` with the
    listen's own keys merged in (as ListenBrainz does); nothing of the payload is kept and
    the request log says why."""
    good = listen(NOW - 1000, track="Good")
    payload = [good, item] if listen_type == "import" else [item]
    status, body = submit(lb, listen_type, *payload)
    assert status == 400
    assert body["code"] == 400
    assert body["error"] == message
    assert set(body) - {"code", "error"} == set(item)
    assert lb.sim.listens("alice") == []
    assert lb.sim.playing_now("alice") is None
    assert lb.requests()[-1]["error"] == message


def _document(listen_type: str, payload: Any) -> bytes:
    return orjson.dumps({"listen_type": listen_type, "payload": payload})


REFUSED_DOCUMENTS = [
    (b"{nope", "Cannot parse JSON document: "),
    (b"[1]", "Invalid JSON document submitted. Top level of JSON document should be a json "
     "object."),
    (b'{"listen_type": "single"}', "Invalid JSON document submitted."),
    (_document("single", "x"), "The payload in the JSON document should be a list of listens."),
    (_document("single", []), "JSON document does not contain any listens"),
    (_document("import", [listen()] * 1001),
     "Too many listens. You may not submit more than 1000 listens at once."),
    (_document("single", [listen(track="x" * 10300)]),
     "JSON document is too large. Each listens may not be larger than 10240 bytes."),
    (orjson.dumps({"payload": [listen()]}), "Invalid JSON document submitted."),
    (_document("scrobble", [listen()]), "JSON document requires a valid listen_type key."),
    (_document("single", [listen(), listen()]),
     "JSON document contains more than listen for a single/playing_now. It should contain "
     "only one."),
    (_document("playing_now", [listen(None), listen(None)]),
     "JSON document contains more than listen for a single/playing_now. It should contain "
     "only one."),
    (b" " * 10_240_001, "Payload too large. Payload cannot exceed 10240000 bytes"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "message"), REFUSED_DOCUMENTS)
def test_a_refused_document_is_answered_400_with_its_reason(
    lb: SimulatedListenBrainz, raw: bytes, message: str
) -> None:
    """A document ListenBrainz would refuse as a whole is answered 400 ``{"code": 400,
    "error": …}`` in ListenBrainz's words, and nothing is kept."""
    status, _, body = call(lb, "/1/submit-listens", raw=raw)
    assert status == 400
    assert body["code"] == 400
    assert body["error"].startswith(message)
    assert lb.sim.listens("alice") == []
    assert lb.requests()[-1]["status"] == 400


def test_the_limits_themselves_are_accepted(lb: SimulatedListenBrainz) -> None:
    """1,000 listens in one import, a listen at the earliest moment allowed and one just
    under an hour ahead are accepted."""
    listens = [listen(NOW - 5000 + i, track=f"T{i}") for i in range(1000)]
    assert submit(lb, "import", *listens)[0] == 200
    assert submit(lb, "single", listen(LISTEN_MINIMUM_TS))[0] == 200
    assert submit(lb, "single", listen(NOW + 3599))[0] == 200
    assert len(lb.sim.listens("alice")) == 1002


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "You need to provide an Authorization header."),
        ("Token", "Provided Authorization header is invalid."),
        ("Token nobody", "Invalid authorization token."),
    ],
)
def test_a_submission_without_a_known_token_is_answered_401(
    lb: SimulatedListenBrainz, authorization: str | None, message: str
) -> None:
    """No header, a header without a token or an unknown token: 401 in ListenBrainz's
    words, nothing kept."""
    document = {"listen_type": "single", "payload": [listen()]}
    status, _, body = call(
        lb, "/1/submit-listens", document, token=None, authorization=authorization
    )
    assert (status, body) == (401, {"code": 401, "error": message})
    assert lb.sim.listens("alice") == []


def test_validate_token(lb: SimulatedListenBrainz) -> None:
    """``GET /1/validate-token`` names the token's user, answers an unknown token with
    ``valid: false`` (HTTP 200), reads ``?token=`` without the header, and wants a token."""
    assert call(lb, "/1/validate-token")[::2] == (
        200,
        {"code": 200, "message": "Token valid.", "valid": True, "user_name": "alice"},
    )
    assert call(lb, "/1/validate-token", token="nobody")[::2] == (
        200,
        {"code": 200, "message": "Token invalid.", "valid": False},
    )
    assert call(lb, "/1/validate-token?token=tok-2", token=None)[2]["user_name"] == "bob"
    assert call(lb, "/1/validate-token", token=None)[::2] == (
        400,
        {"code": 400, "error": "You need to provide an Authorization token."},
    )


def test_tokens_can_be_changed_while_it_serves(lb: SimulatedListenBrainz) -> None:
    """``POST /admin/settings {tokens}`` replaces the tokens: the old one is refused."""
    status, _, body = call(lb, "/admin/settings", {"tokens": {"tok-3": "carol"}})
    assert status == 200
    assert body["tokens"] == {"tok-3": "carol"}
    assert submit(lb, "single", listen())[0] == 401
    status, _, _ = call(
        lb, "/1/submit-listens", {"listen_type": "single", "payload": [listen()]}, token="tok-3"
    )
    assert status == 200
    assert lb.sim.listens("carol") == [listen()]


def test_rate_limit_headers_and_429_beyond_the_budget() -> None:
    """Every answer carries X-RateLimit-Limit/Remaining/Reset/Reset-In of the current
    window (fixed, aligned on multiples of the window since the epoch); beyond the budget a
    request is answered 429 and not kept; the next window starts afresh. A client without a
    valid token counts against the address's own, lower, budget."""
    clock = [1_900_000_003.0]
    settings = Settings(tokens=((TOKEN, "alice"),), limit=3, ip_limit=2, window=10)
    with running_listenbrainz(ListenBrainzSim(settings, clock=lambda: clock[0])) as lb:
        seen = []
        for i in range(4):
            status, headers, body = call(
                lb,
                "/1/submit-listens",
                {"listen_type": "single", "payload": [listen(NOW - i)]},
            )
            seen.append((status, headers["X-RateLimit-Remaining"]))
            assert headers["X-RateLimit-Limit"] == "3"
            assert headers["X-RateLimit-Reset"] == "1900000010"
            assert headers["X-RateLimit-Reset-In"] == "7"
        assert seen == [(200, "2"), (200, "1"), (200, "0"), (429, "0")]
        assert body == {"code": 429, "error": RATE_LIMITED}
        assert len(lb.sim.listens("alice")) == 3
        status, headers, _ = call(lb, "/1/validate-token", token="nobody")
        assert (status, headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"]) == (
            200,
            "2",
            "1",
        )
        clock[0] = 1_900_000_010.0
        status, headers, _ = call(
            lb, "/1/submit-listens", {"listen_type": "single", "payload": [listen(NOW - 9)]}
        )
        assert (status, headers["X-RateLimit-Remaining"], headers["X-RateLimit-Reset-In"]) == (
            200,
            "2",
            "10",
        )


def test_faults_on_command(lb: SimulatedListenBrainz) -> None:
    """``POST /admin/faults {force, count, retry_after}`` breaks the next requests: 429 with
    Reset-In as ordered, 401, 500 and 503, a dropped connection; nothing of a broken
    request is kept, each is in the request log, and the next request is served."""
    document = {"listen_type": "single", "payload": [listen()]}
    for kind, count in (("429", 1), ("401", 1), ("http500", 1), ("http503", 1), ("reset", 1)):
        status, _, _ = call(lb, "/admin/faults", {"force": kind, "count": count, "retry_after": 42})
        assert status == 200
    status, headers, body = call(lb, "/1/submit-listens", document)
    assert (status, body["code"], headers["X-RateLimit-Remaining"]) == (429, 429, "0")
    assert headers["X-RateLimit-Reset-In"] == "42"
    assert call(lb, "/1/submit-listens", document)[::2] == (
        401,
        {"code": 401, "error": "Invalid authorization token."},
    )
    assert call(lb, "/1/submit-listens", document)[::2] == (
        500,
        {"code": 500, "error": "An unknown error occured."},
    )
    assert call(lb, "/1/submit-listens", document)[0] == 503
    with pytest.raises((ConnectionError, urllib.error.URLError)):
        call(lb, "/1/submit-listens", document)
    assert lb.sim.listens("alice") == []
    assert [r.get("fault") for r in lb.requests()] == ["429", "401", "http500", "http503", "reset"]
    assert call(lb, "/1/submit-listens", document)[0] == 200
    assert lb.sim.listens("alice") == [listen()]


def test_musique_sim_listenbrainz_serves_until_terminated() -> None:
    """``musique-sim listenbrainz`` serves the API with the tokens given; a --token that is
    not TOKEN:USER is refused."""
    port = free_port()
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "musique-sim"),
            "listenbrainz",
            "--port",
            str(port),
            "--token",
            "cli-token:dana",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        assert f":{port}/" in proc.stderr.readline()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/1/validate-token")
        request.add_header("Authorization", "Token cli-token")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            assert orjson.loads(response.read())["user_name"] == "dana"
    finally:
        proc.terminate()
        code = proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()
    assert code == 0
    done = subprocess.run(
        [str(VENV_BIN / "musique-sim"), "listenbrainz", "--token", "no-user"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "'no-user' is not TOKEN:USER" in done.stderr


def test_count_only_counts_listens_without_keeping_them(lb: SimulatedListenBrainz) -> None:
    """With ``keep_listens`` off (``--count-only``) the listens accepted are counted in the
    stats and none is kept."""
    lb.configure(keep_listens=False)
    assert submit(lb, "import", listen(NOW - 900), listen(NOW - 600, track="Two"))[0] == 200
    assert submit(lb, "single", listen(NOW - 300, track="Three"))[0] == 200
    _, _, stats = call(lb, "/admin/stats", token=None)
    assert stats["listens"] == 3
    assert lb.sim.listens("alice") == []
