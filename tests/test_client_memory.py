"""Many clients that ask for large answers and never read them: what they hold together is
bounded (connections per uid and overall, answers per connection and in total), and the
daemon keeps answering everyone else."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from musiquectl.client import Client
from musiqued.rpc.server import MAX_CONNECTIONS_PER_UID, STALLED_S
from musiqued.services.answers import AnswerBudget
from tests.fixtures.daemon import StartDaemon
from tests.fixtures.rpc_socket import ServeRpc
from tests.flood_support import PROBE_EVERY_S, http_flood, peak_rss_kb, probe_rpc, socket_flood
from tests.history_support import generated, seed
from tests.rawrpc import NOBODY, RawConnection, exchange, request, run_as
from tests.support import HTTP_TOKEN, free_port

LISTENS = 6000
MAX_RSS_KB = 400 * 1024
# The probe covers the flood's building of answers until they fill the budget, then the
# first drops of clients that left theirs unread (from STALLED_S on, one a second).
PROBE_S = STALLED_S + 3.0


@pytest.mark.slow
def test_clients_that_never_read_hold_bounded_memory(
    start_daemon: StartDaemon, workdir: Path
) -> None:
    """200 socket clients (of another uid) each sending two batch lines of 100
    ``history.recent {limit: 5000}`` and 120 HTTP clients pipelining 20 such requests, none
    of them reading: the daemon's peak RSS stays under 400 MB; ``daemon.status`` from
    another user's fresh connections, asked every 20 ms for the flood's first 8 s (past
    the first drops), is answered every time (how fast: ``tests/bench/client_flood_bench.py``); then that user's own
    list of 5,000 listens is answered in its turn beside the flood; the clients that leave
    their answers unread the longest are dropped (logged as counts, not errors), and a list
    asked for once the flood is gone is answered."""
    workdir.chmod(0o755)
    seed(workdir / "musique.db", generated(LISTENS))
    port = free_port()
    daemon = start_daemon(
        daemon={"socket_mode": "0666", "allowed_uids": [NOBODY]},
        http={"listen": f"127.0.0.1:{port}", "token": HTTP_TOKEN},
    )
    assert daemon.proc is not None
    pid = daemon.proc.pid
    assert daemon.call("daemon.status")["listens"] == LISTENS
    before = peak_rss_kb(pid)

    with socket_flood(daemon.socket_path) as sent, http_flood(port):
        assert sent > 0
        probe = probe_rpc(daemon.socket_path, PROBE_S, every=PROBE_EVERY_S)
        with Client(daemon.socket_path, timeout=60) as client:
            assert len(client.call("history.recent", {"limit": 5000})) == 5000
        # Still flooded: the ones holding their answers unread are dropped in turn.
        daemon.wait_until(
            lambda: any(
                r.get("event") == "rpc clients over the limits" for r in daemon.log_records()
            ),
            timeout=60,
        )
        peak = peak_rss_kb(pid)
    figures = (
        f"daemon.status during the flood: {probe.calls} calls, median {probe.median_ms:.1f} ms, "
        f"p99 {probe.p99_ms:.1f} ms, max {probe.max_ms:.1f} ms (slowest, as (s into the "
        f"probe, ms): {[(round(at, 2), round(ms)) for at, ms in probe.slowest]}); "
        f"peak RSS {peak / 1024:.0f} MB ({before / 1024:.0f} MB before)"
    )
    print(figures)
    assert probe.failures == 0, probe.first_error
    assert probe.calls >= 100, figures
    assert peak <= MAX_RSS_KB, figures

    limits = [r for r in daemon.log_records() if r.get("event") == "rpc clients over the limits"]
    assert sum(r["dropped_unread"] for r in limits) >= 1
    assert len(daemon.call("history.recent", {"limit": 5})) == 5
    errors = [r for r in daemon.log_records() if r.get("level") == "error"]
    assert errors == [], errors[0].get("exception", "")[-1200:]


async def test_one_uid_cannot_take_every_connection(serve_rpc: ServeRpc, workdir: Path) -> None:
    """A uid holding its limit of connections gets ``too_many_connections`` for one more
    (a one-line answer, then the connection closes); another uid is still served."""
    await asyncio.to_thread(workdir.chmod, 0o755)
    async with serve_rpc(mode=0o666, allowed_uids=[NOBODY]) as served:

        def child(out: int) -> int:
            held = [RawConnection(served.path) for _ in range(MAX_CONNECTIONS_PER_UID)]
            for connection in held:  # each admitted: it is answered
                connection.send(b'{"jsonrpc": "2.0", "id": 1, "method": "rpc.describe"}\n')
                assert connection.read_line() is not None
            with RawConnection(served.path) as one_more:
                one_more.send(b'{"jsonrpc": "2.0", "id": 2, "method": "daemon.status"}\n')
                os.write(out, one_more.read_line() or b"")
                os.write(out, b"\n" + (one_more.read_line() or b"EOF"))
            for connection in held:
                connection.close()
            return 0

        status, output = await asyncio.to_thread(run_as, child)
        assert status == 0, output
        answer, after = output.split(b"\n", 1)
        error = json.loads(answer)["error"]
        assert error["data"]["kind"] == "too_many_connections"
        assert f"uid {NOBODY} holds {MAX_CONNECTIONS_PER_UID} connections" in error["message"]
        assert after == b"EOF"
        assert (await asyncio.to_thread(exchange, served.path, request("daemon.status")))["result"][
            "version"
        ]


async def test_a_freed_place_goes_to_the_request_in_turn_not_to_a_newcomer() -> None:
    """When answers are taken and room frees up, the bulk request waiting in turn gets the
    place, even when another asks for one before the waiting one has run."""
    budget = AnswerBudget(limit_bytes=10, builders=1)
    budget.hold(10)
    built: list[str] = []

    async def build(name: str) -> None:
        async with budget.turn(name):
            built.append(name)

    waiting = asyncio.create_task(build("waiting"))
    await asyncio.sleep(0)  # it waits for room
    budget.release(10)
    await build("newcomer")
    await waiting
    assert built == ["waiting", "newcomer"]
