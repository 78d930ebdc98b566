"""What one request line may cost the daemon is bounded: the batch length, the answer size,
and the range of numbers in params."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest
import structlog

from musiqued import wire
from tests.fixtures.daemon import StartDaemon
from tests.fixtures.rpc_socket import ServeRpc
from tests.fixtures.services import InProcess
from tests.history_support import generated, seed
from tests.rawrpc import RawConnection, assert_serving
from tests.support import DaemonProcess

RSS_GROWTH_BOUND_KB = 200 * 1024
"""The daemon's peak RSS may grow by at most this much over the whole test (it grew by
~2.6 GB before answers were bounded)."""


def _peak_rss_kb(daemon: DaemonProcess) -> int:
    assert daemon.proc is not None
    status = Path(f"/proc/{daemon.proc.pid}/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))


def _batch(count: int, limit: int) -> bytes:
    calls = [
        {"jsonrpc": "2.0", "method": "history.recent", "params": {"limit": limit}, "id": i}
        for i in range(count)
    ]
    return json.dumps(calls).encode() + b"\n"


LIMIT = 500
"""Listens a request asks for: with the long titles below, each answer is ~1.5 MB."""


@pytest.fixture
def seeded(start_daemon: StartDaemon, workdir: Path) -> DaemonProcess:
    """A daemon over listens with long titles: an answer is big for few rows read."""
    long_titles = [dataclasses.replace(s, title=f"{s.title} {'ö' * 1400}") for s in generated(600)]
    seed(workdir / "musique.db", long_titles)
    return start_daemon()


def _send_batch(path: Path, count: int, limit: int) -> object:
    with RawConnection(path, timeout=30) as conn:
        conn.send(_batch(count, limit))
        return conn.read()


async def test_a_batch_longer_than_the_limit_is_refused_whole(serve_rpc: ServeRpc) -> None:
    """A batch of 400 requests gets one -32600 error (kind batch_too_long) and runs none."""
    async with serve_rpc() as served:
        answer = await asyncio.to_thread(_send_batch, served.path, 400, 5000)
        assert isinstance(answer, dict)
        assert answer["id"] is None
        assert answer["error"]["code"] == wire.INVALID_REQUEST
        assert answer["error"]["data"]["kind"] == "batch_too_long"
        assert "at most 100" in answer["error"]["message"]
        await asyncio.to_thread(assert_serving, served.path)


def test_answers_are_bounded_and_memory_stays_flat(seeded: DaemonProcess) -> None:
    """A batch of 100 ``history.recent`` (each answer ~1.5 MB): the answers that
    fit come back whole, the rest are -32603 answer_too_large errors, the line stays under
    the answer limit, and the daemon's peak RSS grows by less than the stated bound, even
    after ten such batches."""
    before = _peak_rss_kb(seeded)
    with RawConnection(seeded.socket_path, timeout=60) as conn:
        for _ in range(10):
            conn.send(_batch(100, LIMIT))
            line = conn.read_line()
            assert line is not None
            assert len(line) <= wire.MAX_ANSWER_BYTES
            answers = json.loads(line)
            assert [a["id"] for a in answers] == list(range(100))
            whole = [a for a in answers if "result" in a]
            refused = [a for a in answers if "error" in a]
            assert whole, "the answers that fit are given"
            assert all(len(a["result"]) == LIMIT for a in whole)
            assert refused, "the rest are refused"
            assert {a["error"]["data"]["kind"] for a in refused} == {"answer_too_large"}
            assert {a["error"]["code"] for a in refused} == {wire.INTERNAL_ERROR}
    growth = _peak_rss_kb(seeded) - before
    assert growth < RSS_GROWTH_BOUND_KB, f"peak RSS grew by {growth} kB"
    assert_serving(seeded.socket_path)


@pytest.mark.parametrize(
    ("method", "params", "name"),
    [
        ("jobs.get", {"job_id": 2**63}, "job_id"),
        ("import.status", {"job_id": 2**70}, "job_id"),
        ("history.list", {"since": 1e300}, "since"),
        ("history.list", {"until": "99999999999999999999999"}, "until"),
        ("stats.summary", {"since": -(2**80)}, "since"),
        ("history.list", {"after": f"{2**70}.{2**70}"}, "after"),
        ("import.start", {"limit": 2**64}, "limit"),
    ],
)
async def test_numbers_out_of_range_name_the_parameter(
    in_process: InProcess, method: str, params: dict[str, object], name: str
) -> None:
    """Out-of-range numbers are invalid params (-32602) naming the parameter, never an
    internal error with a traceback in the log."""
    with structlog.testing.capture_logs() as logs:
        async with in_process() as daemon:
            error = await daemon.call_error(method, params)
    assert error.code == wire.INVALID_PARAMS, error
    assert name in error.message
    assert not [entry for entry in logs if entry.get("exc_info") or entry.get("exception")]
    assert not [entry for entry in logs if entry["log_level"] in ("error", "critical")]
