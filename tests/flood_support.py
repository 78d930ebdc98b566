"""Clients in bulk, for the limit tests and their benchmarks: slow HTTP clients (requests
whose headers never end, keep-alive connections left idle), clients that ask for large
answers and never read them, and what they cost the daemon.

The daemon is started with systemd's default soft descriptor limit (1024, what a unit
without ``LimitNOFILE=`` gets), so the attack reproduces what it does under systemd.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import socket
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from musiquectl.client import Client, ClientError
from tests.rawrpc import NOBODY
from tests.support import HTTP_TOKEN

SOCKET_CLIENTS = 200
HTTP_CLIENTS = 120
PIPELINED = 20
PROBE_EVERY_S = 0.02
"""How often ``daemon.status`` is asked during a flood of unread answers."""
SYSTEMD_DEFAULT_NOFILE = 1024
# The request line and one header, never the blank line that ends the headers.
HALF_SENT = b"GET /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
COMPLETE = b"GET /favicon.svg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@contextmanager
def nofile_soft_limit(limit: int) -> Iterator[None]:
    """Processes started inside get ``limit`` as their soft descriptor limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def allow_descriptors(count: int) -> None:
    """Let this process hold ``count`` more sockets (raises the soft limit up to the hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = len(os.listdir("/proc/self/fd")) + count + 64
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            raise RuntimeError(f"need {wanted} descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def open_slow(
    port: int, count: int, payload: bytes, *, timeout: float = 2.0
) -> list[socket.socket]:
    """``count`` connections that each sent ``payload`` and then nothing more. A connection
    the daemon refuses or never accepts (connect times out) is not in the list."""
    opened = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(("127.0.0.1", port))
            sock.sendall(payload)
        except OSError:
            sock.close()
            continue
        opened.append(sock)
    return opened


def open_idle_keepalives(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that made one complete request, read its answer, and
    stay open without another request (an HTTP/1.1 client keeping its connection); those
    that got no answer are not in the list."""
    kept = []
    for sock in open_slow(port, count, COMPLETE):
        sock.settimeout(10)
        try:
            answer = read_answer(sock)
        except OSError:
            answer = b""
        if answer.startswith(b"HTTP/1.1 200"):
            kept.append(sock)
        else:
            sock.close()
    return kept


def read_answer(sock: socket.socket) -> bytes:
    """One whole answer (headers and a ``Content-Length`` body); b"" if the connection ends."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        body += chunk
    return raw


@dataclass(frozen=True)
class Ending:
    """How the daemon ended a connection: what it sent first (b"" if nothing) and when
    (``time.monotonic()``)."""

    answer: bytes
    at: float


def wait_closed(sockets: list[socket.socket], timeout: float) -> list[Ending | None]:
    """Wait until the daemon has closed each socket (EOF or reset), at most ``timeout``
    seconds in all; one entry per socket, None for those still open."""
    endings: dict[socket.socket, Ending] = {}
    answers: dict[socket.socket, bytes] = {}
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        while len(endings) < len(sockets):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in selector.select(left):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""  # reset: closed too
                if chunk:
                    answers[sock] = answers.get(sock, b"") + chunk
                    continue
                selector.unregister(sock)
                endings[sock] = Ending(answers.get(sock, b""), time.monotonic())
    return [endings.get(sock) for sock in sockets]


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


@dataclass(frozen=True)
class RpcProbe:
    calls: int
    failures: int
    median_ms: float
    p99_ms: float
    max_ms: float
    first_error: str
    slowest: list[tuple[float, float]]
    """The slowest calls, slowest first: (seconds into the probe, milliseconds)."""


def probe_rpc(socket_path: Path, seconds: float, *, every: float = 0.0) -> RpcProbe:
    """``daemon.status`` on a fresh connection (as each musiquectl run makes) for ``seconds``,
    a call every ``every`` seconds at most (0: one after the other)."""
    timed: list[tuple[float, float]] = []
    failures = 0
    first_error = ""
    start = time.monotonic()
    deadline = start + seconds
    next_call = start
    while (now := time.monotonic()) < deadline:
        if now < next_call:
            time.sleep(next_call - now)  # pacing: the probe's own load stays small
        next_call = max(next_call + every, time.monotonic())
        started = time.perf_counter()
        try:
            with Client(socket_path, timeout=5) as client:
                client.call("daemon.status")
        except (ClientError, OSError) as exc:
            failures += 1
            first_error = first_error or str(exc)
            next_call = max(next_call, time.monotonic() + 0.05)  # do not spin on a failure
            continue
        timed.append((time.monotonic() - start, (time.perf_counter() - started) * 1000))
    latencies = sorted(ms for _, ms in timed)
    return RpcProbe(
        calls=len(latencies) + failures,
        failures=failures,
        median_ms=statistics.median(latencies) if latencies else float("nan"),
        p99_ms=statistics.quantiles(latencies, n=100)[-1] if len(latencies) > 1 else float("nan"),
        max_ms=latencies[-1] if latencies else float("nan"),
        first_error=first_error,
        slowest=sorted(timed, key=lambda call: -call[1])[:5],
    )


def _batch_line(first_id: int) -> bytes:
    batch = [
        {
            "jsonrpc": "2.0",
            "id": first_id + i,
            "method": "history.recent",
            "params": {"limit": 5000},
        }
        for i in range(100)
    ]
    return json.dumps(batch).encode() + b"\n"


@contextmanager
def socket_flood(path: Path) -> Iterator[int]:
    """``SOCKET_CLIENTS`` connections from uid nobody, each sending two batch lines of 100
    ``history.recent {limit: 5000}`` and never reading; yields how many could send both.
    They live in a forked child until the block ends."""
    ready_read, ready_write = os.pipe()
    hold_read, hold_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 0
        try:
            os.close(ready_read)
            os.close(hold_write)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            clients = []
            sent = 0
            for number in range(SOCKET_CLIENTS):
                client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                client.settimeout(10)
                client.connect(str(path))
                clients.append(client)
                try:
                    client.sendall(_batch_line(1) + _batch_line(101 + number))
                    sent += 1
                except OSError:
                    pass
            os.write(ready_write, str(sent).encode())
            os.close(ready_write)
            os.read(hold_read, 1)  # until the parent closes its end
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(ready_write)
    os.close(hold_read)
    try:
        sent = int(os.read(ready_read, 64) or b"-1")
        yield sent
    finally:
        os.close(ready_read)
        os.close(hold_write)
        os.waitpid(pid, 0)


@contextmanager
def http_flood(port: int) -> Iterator[None]:
    """``HTTP_CLIENTS`` connections each pipelining ``PIPELINED`` requests for 5,000 listens
    and never reading."""
    request = (
        "GET /api/v1/history/recent?limit=5000 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {HTTP_TOKEN}\r\n\r\n"
    ).encode()
    clients = []
    try:
        for _ in range(HTTP_CLIENTS):
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            clients.append(client)
            client.sendall(request * PIPELINED)
        yield
    finally:
        for client in clients:
            client.close()


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident memory so far, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")
