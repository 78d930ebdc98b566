"""The control socket under load and against strangers: many clients, peer credentials,
stale and live socket files, events, and the per-call log line.

The socket's own behaviour is served in the test's process (``serve_rpc``), a socket path
the daemon cannot use is checked on its listener there, and a reload's new access policy is
handed to the server as a reload hands it; a daemon process is started for a CLI session's
log, with its secrets, reload by signal and stop."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from musiqued import wire
from musiqued.app.cli import exit_status
from musiqued.errors import AlreadyRunningError
from musiqued.rpc.listener import SocketListener, SocketPathError
from musiqued.rpc.peers import AccessPolicy
from tests.fixtures.daemon import StartDaemon
from tests.fixtures.rpc_socket import ServeRpc
from tests.rawrpc import (
    NOBODY,
    RawConnection,
    assert_serving,
    call_as,
    exchange,
    request,
    run_as,
)


def _many_clients(path: Path, clients: int) -> list[str]:
    barrier = threading.Barrier(clients)
    failures: list[str] = []

    def client(n: int) -> None:
        try:
            with RawConnection(path, timeout=30) as conn:
                barrier.wait(30)
                for i in range(5):
                    conn.send(request("daemon.status", id=f"c{n}.{i}"))
                    answer = conn.read()
                    if answer.get("id") != f"c{n}.{i}" or "result" not in answer:
                        failures.append(f"client {n}: {answer!r}")
        except Exception as exc:
            failures.append(f"client {n}: {exc!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return failures


async def test_200_concurrent_clients(serve_rpc: ServeRpc) -> None:
    """200 clients connected at once, each making several calls: every one is answered,
    with its own ids."""
    async with serve_rpc() as served:
        failures = await asyncio.to_thread(_many_clients, served.path, 200)
    assert not failures, failures[:5]


def _reachable_by_nobody(workdir: Path) -> None:
    workdir.chmod(0o755)


async def test_stranger_is_refused_and_logged(serve_rpc: ServeRpc, workdir: Path) -> None:
    """A peer whose uid is not root, the daemon's, or allowed gets -32005, and a log line
    names its uid; the socket mode let it connect, SO_PEERCRED keeps it out."""
    _reachable_by_nobody(workdir)
    async with serve_rpc(mode=0o666) as served:
        answer = await asyncio.to_thread(call_as, served.path)
        assert "child_error" not in answer, answer
        assert answer["error"]["code"] == wire.FORBIDDEN
        assert "uid 65534" in answer["error"]["message"]
        assert "allowed_uids" in answer["error"]["message"]
        refused = served.logged("rpc peer refused")
        assert refused
        assert refused[0]["peer_uid"] == NOBODY
        assert refused[0]["log_level"] == "warning"
        await asyncio.to_thread(assert_serving, served.path)


async def test_allowed_uid_is_admitted(serve_rpc: ServeRpc, workdir: Path) -> None:
    """A uid listed in ``allowed_uids`` is served."""
    _reachable_by_nobody(workdir)
    async with serve_rpc(mode=0o666, allowed_uids=[NOBODY]) as served:
        answer = await asyncio.to_thread(call_as, served.path)
    assert answer["result"]["pid"] == os.getpid()


async def test_allowed_gid_is_admitted(serve_rpc: ServeRpc, workdir: Path) -> None:
    """A peer whose group is listed in ``allowed_gids`` is served; another group is not."""
    _reachable_by_nobody(workdir)
    async with serve_rpc(mode=0o666, allowed_gids=[NOBODY]) as served:
        assert "result" in await asyncio.to_thread(call_as, served.path, gid=NOBODY)
        other = await asyncio.to_thread(call_as, served.path, gid=4242)
        assert other["error"]["code"] == wire.FORBIDDEN


async def test_socket_mode_is_applied(serve_rpc: ServeRpc) -> None:
    """The socket file is created with ``socket_mode``."""
    async with serve_rpc(mode=0o640) as served:
        assert served.path.stat().st_mode & 0o777 == 0o640


async def test_stale_socket_file_is_replaced(serve_rpc: ServeRpc, workdir: Path) -> None:
    """A socket file left by a dead daemon (no one listening) is replaced."""
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(workdir / "d.sock"))
    stale.close()
    assert (workdir / "d.sock").exists()
    async with serve_rpc() as served:
        await asyncio.to_thread(assert_serving, served.path)
        assert served.logged("replacing stale socket file")


async def test_non_socket_file_is_not_replaced(workdir: Path) -> None:
    """A regular file where the socket should be is left alone; the daemon says why and
    stops with exit 78 (a human must fix the path)."""
    (workdir / "d.sock").write_text("precious")
    with pytest.raises(SocketPathError) as caught:
        await SocketListener(workdir / "d.sock", mode=0o600).open()
    assert "is not a socket" in caught.value.message
    assert exit_status(caught.value) == 78
    assert (workdir / "d.sock").read_text() == "precious"


async def test_second_daemon_on_live_socket_exits(serve_rpc: ServeRpc) -> None:
    """A second daemon pointed at a socket a live daemon answers on stops with a clear
    error and exit 75, and the first keeps serving."""
    async with serve_rpc() as served:
        with pytest.raises(AlreadyRunningError) as caught:
            await SocketListener(served.path, mode=0o600).open()
        assert f"is already serving on {served.path}" in caught.value.message
        assert exit_status(caught.value) == 75
        await asyncio.to_thread(assert_serving, served.path)


def test_a_cli_session_logs_each_call_and_no_secret(
    start_daemon: StartDaemon, workdir: Path
) -> None:
    """With secrets in the file, the credentials directory and the environment, a debug
    log of start, calls, reload and stop contains none of them, nor does any RPC result.

    Each call is one debug line with method, duration and outcome, carrying the client's
    request id ("cli:daemon.status#PID.1") when it sent a string id. A subscriber to
    ``daemon`` receives an ``event`` notification when the config is reloaded (by RPC here).
    """
    creds = workdir / "creds"
    creds.mkdir()
    (creds / "spotify_client_secret").write_text("CRED-SPOTIFY-SECRET-4242\n")
    secrets = [
        "FILE-LASTFM-KEY-1234",
        "FILE-AI-KEY-5678",
        "CRED-SPOTIFY-SECRET-4242",
        "ENV-HTTP-TOKEN-9999",
        "FILE-SESSION-0000",
    ]
    daemon = start_daemon(
        lastfm={"api_key": secrets[0], "username": "someone", "session_key": secrets[4]},
        ai={"api_key": secrets[1]},
        spotify={"client_id": "visible-client-id"},
        env={"CREDENTIALS_DIRECTORY": str(creds), "MUSIQUED_HTTP_TOKEN": secrets[3]},
    )
    unknown = daemon.ctl("call", "nope.method")
    assert unknown.returncode == 1
    with RawConnection(daemon.socket_path) as subscriber:
        subscriber.send(request("events.subscribe", {"topics": ["daemon"]}, id=1))
        assert subscriber.read()["result"] == {"subscribed": ["daemon"]}
        assert exchange(daemon.socket_path, request("daemon.reload"))["result"]["status"] == (
            "reloaded"
        )
        event = subscriber.read()
    assert event["method"] == "event"
    assert event["params"]["topic"] == "daemon"
    assert event["params"]["data"]["event"] == "reloaded"
    outputs = [
        daemon.ctl("--json", "status").stdout,
        daemon.ctl("--json", "call", "rpc.describe").stdout,
        daemon.ctl("--json", "reload").stdout,
        unknown.stdout,
        unknown.stderr,
    ]
    calls = [r for r in daemon.log_records() if r.get("event") == "rpc call"]
    by_method: dict[str, dict[str, Any]] = {r["method"]: r for r in calls}
    status = by_method["daemon.status"]
    assert status["level"] == "debug"
    assert status["outcome"] == "ok"
    assert isinstance(status["duration_ms"], float | int)
    assert any(
        r["method"] == "daemon.status" and r["rpc_id"].startswith("cli:daemon.status#")
        for r in calls
    )
    nope = by_method["nope.method"]
    assert nope["outcome"] == f"error {wire.METHOD_NOT_FOUND}"
    assert nope["rpc_id"].startswith("cli:nope.method#")
    daemon.signal(1)  # SIGHUP
    daemon.wait_until(lambda: daemon.logs().count("configuration reloaded") >= 3)
    assert daemon.stop() == 0
    status_output = json.loads(outputs[0])
    assert status_output["configured"]["lastfm"] is True
    text = daemon.logs() + "".join(outputs)
    assert "rpc call" in text  # the debug lines are there
    for secret in secrets:
        assert secret not in text
    assert not os.environ.get("MUSIQUED_HTTP_TOKEN")


def _refused_codes(path: Path, connections: int) -> list[int | None]:
    """The error code of each of ``connections`` calls from one forked child running as
    nobody, each on a connection of its own."""

    def child(out: int) -> int:
        codes = []
        for _ in range(connections):
            with RawConnection(path, timeout=10) as conn:
                conn.send(request("daemon.status", id="as-uid"))
                line = conn.read_line()
            codes.append(json.loads(line).get("error", {}).get("code") if line else None)
        os.write(out, json.dumps(codes).encode())
        return 0

    codes: list[int | None] = json.loads(run_as(child)[1])
    return codes


async def test_a_flood_of_refusals_is_one_log_line(serve_rpc: ServeRpc, workdir: Path) -> None:
    """300 refused connections from one uid within a minute: each is refused, the log has
    one line for them (the rest are counted and logged once the minute is over)."""
    _reachable_by_nobody(workdir)
    async with serve_rpc(mode=0o666) as served:
        codes = await asyncio.to_thread(_refused_codes, served.path, 300)
        refused = served.logged("rpc peer refused")
    assert codes == [wire.FORBIDDEN] * 300
    assert len(refused) == 1
    assert (refused[0]["peer_uid"], refused[0]["refusals"]) == (NOBODY, 1)


async def test_reload_closes_connections_no_longer_allowed(
    serve_rpc: ServeRpc, workdir: Path
) -> None:
    """A uid removed from allowed_uids by a reload (the server handed its new access policy,
    as a reload does) loses the connection it holds open; it was served before the reload."""
    _reachable_by_nobody(workdir)
    async with serve_rpc(mode=0o666, allowed_uids=[NOBODY]) as served:
        go, ready = os.pipe(), os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: nobody, holding one connection open across the reload
            code = 1
            try:
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                with RawConnection(served.path, timeout=20) as conn:
                    conn.send(request("daemon.status"))
                    answered = "result" in conn.read()
                    os.write(ready[1], b"1" if answered else b"0")
                    os.read(go[0], 1)  # the reload has happened
                    try:
                        conn.send(request("daemon.status", id=2))
                        code = 0 if conn.read_line() is None else 3  # closed: nothing answered
                    except OSError:
                        code = 0  # closed: the send itself failed
            finally:
                os._exit(code)
        assert await asyncio.to_thread(os.read, ready[0], 1) == b"1", "served before the reload"
        served.server.set_policy(AccessPolicy([], []))
        os.write(go[1], b"1")
        _, status = await asyncio.to_thread(os.waitpid, pid, 0)
        for end in (*go, *ready):
            os.close(end)
        assert os.waitstatus_to_exitcode(status) == 0, "the connection was not closed"
        assert served.logged("rpc peer no longer allowed; closing its connection")
