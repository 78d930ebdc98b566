"""Every number a client can send is bounded: out of range is -32602 over the socket, 422
over HTTP, a usage error in ``musiquectl``; nothing out of range reaches the services, and
the HTTP API refuses what the CLI refuses."""

from __future__ import annotations

import http.client
import json
from typing import Any

from musiqued import wire
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.whole_daemon import StartWholeDaemon
from tests.support import HTTP_TOKEN, bearer, free_port

HUGE = "99999999999999999999999"


def http_call(port: int, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = bearer()
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_numbers_out_of_range_are_refused_everywhere(
    start_in_thread: StartWholeDaemon, lastfm_sim: SimulatedLastfm
) -> None:
    """A tracker interval over a day, a ``since`` in the future or past year 9999, a job id
    or limit past 64 bits: refused with the reason over RPC (-32602), HTTP (422) and the CLI
    (exit 2); no job starts, the tracker keeps its interval, and ``musiquectl status`` and
    ``tracker status`` still work; the daemon logs no crash."""
    port = free_port()
    daemon = start_in_thread(
        **lastfm_sim.sections(), http={"listen": f"127.0.0.1:{port}", "token": HTTP_TOKEN}
    )
    shown = daemon.ctl("tracker", "start", "--interval", "999999999999")
    assert shown.returncode == 2
    assert "--interval" in shown.stderr
    for method, params, named in (
        ("tracker.start", {"interval_seconds": 999999999999}, "interval_seconds"),
        ("tracker.start", {"interval_seconds": 1e308}, "interval_seconds"),
        ("import.start", {"since": 99999999999}, "future"),
        ("import.start", {"since": "99999999999"}, "future"),
        ("import.start", {"since": 10**20}, "out of range"),
        ("import.start", {"limit": 2**64}, "limit"),
        ("verify.start", {"since": 99999999999}, "future"),
        ("jobs.get", {"job_id": 2**64}, "job_id"),
        ("history.list", {"since": -(10**19)}, "out of range"),
        ("albums.list", {"limit": 10**30}, "limit"),
    ):
        error = daemon.call_error(method, params)
        assert error.code == wire.INVALID_PARAMS, (method, params)
        assert named in error.message, (method, error.message)

    for method, path, body, named in (
        ("GET", f"/api/v1/services/import/{HUGE}", None, "job_id"),
        ("GET", f"/api/v1/jobs/{HUGE}", None, "job_id"),
        ("POST", f"/api/v1/jobs/{HUGE}/cancel", {}, "job_id"),
        ("POST", "/api/v1/services/tracker/start?interval_seconds=999999999999", None, "interval"),
        ("POST", f"/api/v1/services/lastfm/import-history?limit={HUGE}", None, "limit"),
        ("POST", "/api/v1/imports", {"since": "99999999999"}, "future"),
        ("POST", "/api/v1/imports", {"since": 99999999999}, "future"),
        ("POST", "/api/v1/tracker/start", {"interval_seconds": 86401}, "interval_seconds"),
        ("GET", f"/api/v1/jobs?limit={HUGE}", None, "limit"),
        ("GET", f"/api/v1/history/recent?limit={HUGE}", None, "limit"),
    ):
        status, answer = http_call(port, method, path, body)
        assert status == 422, (path, answer)
        assert named in answer["detail"], (path, answer)

    assert daemon.call("jobs.list") == []
    assert daemon.call("tracker.status")["running"] is False
    assert http_call(port, "POST", "/api/v1/tracker/start", {"interval_seconds": 86400})[0] == 200
    assert daemon.call("tracker.status")["interval_seconds"] == 86400
    for command in (("status",), ("tracker", "status")):
        shown = daemon.ctl(*command)
        assert shown.returncode == 0, shown.stderr
        assert "Traceback" not in shown.stderr
    assert "Traceback" not in daemon.logs()
    assert "OverflowError" not in daemon.logs()
