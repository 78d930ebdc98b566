"""The simulator's web auth as Last.fm serves it: over HTTPS, XML unless format=json is asked."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import trustme

from musiqued.sim.lastfm import api_signature
from tests.fixtures.lastfm import SimulatedLastfm
from tests.support import VENV_BIN, free_port


def post(url: str, params: dict[str, str], context: ssl.SSLContext) -> tuple[int, str, bytes]:
    """A form POST, as pylast sends its calls: (status, content type, body)."""
    data = urllib.parse.urlencode(params).encode()
    request = urllib.request.Request(url, data=data, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get_content_type(), error.read()


def call(sim: SimulatedLastfm, method: str, *, xml: bool, **params: str) -> tuple[int, Any]:
    """A signed auth call over HTTPS: (status, parsed XML root or JSON object)."""
    assert sim.tls is not None
    query = {"method": method, "api_key": sim.api_key, **params}
    query["api_sig"] = api_signature(query, sim.api_secret)
    if not xml:
        query["format"] = "json"
    status, content_type, body = post(sim.tls_api_url, query, sim.tls.client)
    if xml:
        assert content_type == "text/xml"
        assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
        return status, ET.fromstring(body)  # noqa: S314 (our simulator's answer)
    assert content_type == "application/json"
    return status, json.loads(body)


def test_xml_flow(lastfm_sim: SimulatedLastfm) -> None:
    """Without format=json: the token and the session come as <lfm status="ok"> documents,
    the session with name, key and subscriber, as Last.fm sends them."""
    status, root = call(lastfm_sim, "auth.getToken", xml=True)
    assert (status, root.tag, root.get("status")) == (200, "lfm", "ok")
    token = root.findtext("token")
    assert token is not None
    assert len(token) == 32

    status, root = call(lastfm_sim, "auth.getSession", xml=True, token=token)
    assert (status, root.get("status")) == (200, "ok")
    session = root.find("session")
    assert session is not None
    assert [child.tag for child in session] == ["name", "key", "subscriber"]
    assert session.findtext("name") == "simuser"
    assert session.findtext("key") in lastfm_sim.sim._sessions
    assert session.findtext("subscriber") == "0"
    assert lastfm_sim.stats()["xml"] == 2


def test_json_when_asked(lastfm_sim: SimulatedLastfm) -> None:
    """With format=json the same calls answer JSON, errors included."""
    status, answer = call(lastfm_sim, "auth.getToken", xml=False)
    assert status == 200
    assert set(answer) == {"token"}
    status, answer = call(lastfm_sim, "auth.getSession", xml=False, token="unknown")
    assert status == 403
    assert answer == {"error": 4, "message": "Invalid authentication token supplied"}
    assert "xml" not in lastfm_sim.stats()


@pytest.mark.parametrize(
    ("settings", "params", "code"),
    [
        ({"auto_approve": False}, {}, 14),
        ({"token_lifetime": 0.0}, {}, 15),
        ({}, {"token": "unknown"}, 4),
    ],
)
def test_xml_errors(
    lastfm_sim: SimulatedLastfm, settings: dict[str, Any], params: dict[str, str], code: int
) -> None:
    """auth.getSession's refusals come as <lfm status="failed"><error code="N">: 14 not
    approved, 15 expired (Last.fm gives a token an hour), 4 unknown."""
    lastfm_sim.configure(**settings)
    _, root = call(lastfm_sim, "auth.getToken", xml=True)
    status, root = call(
        lastfm_sim, "auth.getSession", xml=True, **{"token": root.findtext("token"), **params}
    )
    assert (status, root.get("status")) == (403, "failed")
    error = root.find("error")
    assert error is not None
    assert error.get("code") == str(code)
    assert error.text
    assert lastfm_sim.stats()[f"error:{code}"] == 1


def test_xml_error_for_a_bad_key(lastfm_sim: SimulatedLastfm) -> None:
    """An unknown API key on auth.getToken: error 10 in XML."""
    status, root = call(lastfm_sim, "auth.getToken", xml=True, api_key="another")
    assert status == 403
    assert root.find("error").get("code") == "10"  # type: ignore[union-attr]


def test_musique_sim_serves_https(tmp_path: Path) -> None:
    """`musique-sim lastfm --certfile` serves the API over HTTPS with that certificate."""
    ca = trustme.CA()
    certfile = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(certfile))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    port = free_port()
    log = (tmp_path / "sim.log").open("wb")
    sim = subprocess.Popen(
        [
            *(str(VENV_BIN / "musique-sim"), "lastfm", "--port", str(port), "--size", "10"),
            *("--certfile", str(certfile)),
        ],
        stdout=log,
        stderr=log,
    )
    try:
        url = f"https://127.0.0.1:{port}/2.0/"
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, body = post(
                    url, {"method": "auth.getToken", "api_key": "simkey"}, client
                )
                break
            except urllib.error.URLError:
                if time.monotonic() > deadline or sim.poll() is not None:
                    raise
                time.sleep(0.1)
        assert status == 200
        assert ET.fromstring(body).findtext("token")  # noqa: S314 (our simulator's answer)
    finally:
        sim.terminate()
        sim.wait(30)
        log.close()
    assert f"simulated Last.fm: https://127.0.0.1:{port}/2.0/" in (tmp_path / "sim.log").read_text()
