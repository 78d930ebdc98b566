"""The original HTTP API (``[http] listen``), answered with the original JSON."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from click.testing import CliRunner

from musiqued.app.cli import main
from tests.fixtures.lastfm import SimulatedLastfm
from tests.fixtures.threaded import ServeInThread
from tests.support import HTTP_TOKEN, base_sections, free_port, write_config

ORIGINAL_IMPORT_KEYS = {
    "status",
    "tracks_imported",
    "tracks_skipped",
    "tracks_errors",
    "albums_enriched",
    "total_albums_to_enrich",
    "total_scrobbles",
}


def request(
    url: str, method: str = "GET", token: str | None = HTTP_TOKEN, timeout: float = 60
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, JSON body, headers), whatever the status; ``token=None`` sends none."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    try:
        conn.request(method, f"{parts.path}?{parts.query}", headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read()), dict(response.headers)
    finally:
        conn.close()


def test_original_curl_examples(
    serve_in_thread: ServeInThread, lastfm_sim: SimulatedLastfm
) -> None:
    """``POST …/import-history?limit=500&skip_existing=true`` waits for the import and answers
    the original JSON; the tracker endpoints answer theirs; a job's progress is readable."""
    port = free_port()
    daemon = serve_in_thread(
        **lastfm_sim.sections(), http={"listen": f"127.0.0.1:{port}", "token": HTTP_TOKEN}
    )
    base = f"http://localhost:{port}/api/v1/services"

    status, body, _ = request(f"{base}/tracker/status")
    assert status == 200
    assert body["running"] is False
    assert body["last_track"] is None
    assert body["interval_seconds"] == 120

    status, body, _ = request(
        f"{base}/lastfm/import-history?limit=500&skip_existing=true", method="POST"
    )
    assert status == 200, body
    assert body.keys() >= ORIGINAL_IMPORT_KEYS
    assert body["status"] == "success"
    assert (body["tracks_imported"], body["tracks_skipped"], body["tracks_errors"]) == (500, 0, 0)
    assert body["total_scrobbles"] == 1000
    assert isinstance(body["albums_enriched"], int)
    assert body["total_albums_to_enrich"] > 0
    assert daemon.call("daemon.status")["listens"] == 500

    status, job, _ = request(f"{base}/import/{body['job_id']}")
    assert status == 200
    assert (job["state"], job["tracks_imported"]) == ("done", 500)

    status, again, _ = request(f"{base}/lastfm/import-history?limit=500", method="POST")
    assert status == 200
    assert (again["tracks_imported"], again["tracks_skipped"]) == (0, 500)
    status, refreshed, _ = request(
        f"{base}/lastfm/import-history?limit=500&skip_existing=false", method="POST"
    )
    assert status == 200
    assert refreshed.keys() >= ORIGINAL_IMPORT_KEYS | {"tracks_refreshed"}
    counts = ("tracks_imported", "tracks_refreshed", "tracks_skipped", "tracks_errors")
    assert tuple(refreshed[c] for c in counts) == (0, 500, 0, 0)

    assert request(f"{base}/tracker/start", method="POST")[:2] == (
        200,
        {"status": "started", "already_running": False},
    )
    assert request(f"{base}/tracker/status")[1]["running"] is True
    assert request(f"{base}/tracker/stop", method="POST")[:2] == (200, {"status": "stopped"})
    assert request(f"{base}/tracker/status")[1]["running"] is False


def test_errors_are_json_with_fitting_status(
    serve_in_thread: ServeInThread, lastfm_sim: SimulatedLastfm
) -> None:
    """404 unknown job or path, 422 bad parameter, 409 while another import runs."""
    port = free_port()
    daemon = serve_in_thread(
        **lastfm_sim.sections(requests_per_second=2.0, max_in_flight=1),
        http={"listen": f"127.0.0.1:{port}", "token": HTTP_TOKEN},
    )
    base = f"http://127.0.0.1:{port}/api/v1/services"
    status, body, _ = request(f"{base}/import/999")
    assert status == 404
    assert "999" in body["detail"]
    assert request(f"{base}/nothing-here")[0] == 404
    status, body, _ = request(f"{base}/lastfm/import-history?limit=many", method="POST")
    assert status == 422
    assert "limit" in body["detail"]
    job_id = daemon.call("import.start", {"all": True})["job_id"]
    status, body, _ = request(f"{base}/lastfm/import-history?limit=10", method="POST")
    assert status == 409
    assert str(job_id) in body["detail"]
    daemon.call("import.cancel", {"job_id": job_id})


def test_not_configured_is_503(serve_in_thread: ServeInThread) -> None:
    """Without Last.fm credentials the import endpoint answers 503 with the reason."""
    port = free_port()
    serve_in_thread(http={"listen": f"127.0.0.1:{port}", "token": HTTP_TOKEN})
    status, body, _ = request(
        f"http://127.0.0.1:{port}/api/v1/services/lastfm/import-history", method="POST"
    )
    assert status == 503
    assert body["detail"]


def test_non_loopback_without_token_is_refused(workdir: Path) -> None:
    """Binding 0.0.0.0 without ``[http] token`` is a config error: exit 78, a clear message
    (musiqued's command, in-process)."""
    config = write_config(
        workdir / "musiqued.toml",
        base_sections(workdir, http={"listen": f"0.0.0.0:{free_port()}"}),
    )
    result = CliRunner().invoke(main, ["--config", str(config)])
    assert result.exit_code == 78
    (line,) = result.stderr.splitlines()
    assert line.startswith("musiqued: ")
    assert "http.token: required when listen" in line


def test_token_is_required_on_every_request(serve_in_thread: ServeInThread) -> None:
    """With a token: 401 without or with a wrong Authorization header, 200 with the right one."""
    port = free_port()
    serve_in_thread(http={"listen": f"0.0.0.0:{port}", "token": "s3cret-token-0123456789"})
    url = f"http://127.0.0.1:{port}/api/v1/services/tracker/status"
    status, body, headers = request(url, token=None)
    assert status == 401
    assert body["detail"]
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert request(url, token="wrong")[0] == 401
    status, body, _ = request(url, token="s3cret-token-0123456789")
    assert status == 200
    assert body["running"] is False
