"""Run an aiohttp simulator: in the foreground (``musique-sim``) or in a background thread.

``ThreadedServer`` gives synchronous tests (which drive the daemon as a real process) a
simulator with its own event loop on its own thread; ``start()`` returns once the port
listens and ``stop()`` shuts the runner down and joins the thread. Given a server-side
``ssl.SSLContext`` it also serves the same app over HTTPS on a second port (``tls_base_url``):
pylast, which the daemon's Last.fm web auth goes through, speaks only HTTPS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")

SHUTDOWN_GRACE_S = 2.0
"""How long a stopping simulator lets answers under way finish (aiohttp's own: 60 s, which a
client that stopped reading would hold a test's teardown for)."""


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on an event loop of its own, uvloop's (as the daemon's), as every simulator
    runs: in ``musique-sim`` and on a ``ThreadedServer``'s thread.

    Not asyncio's own loop: it makes a connection's transport a loop step after accepting
    it, and if its server closed meanwhile that fails and the socket is left open (CPython
    gh-109564, open in 3.11 to 3.14), which a simulator stopping while the daemon still polls
    it runs into. uvloop makes the transport in the accept itself. Without the uvloop extra,
    asyncio's own loop it is.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def serve(
    app: web.Application, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None
) -> web.AppRunner:
    """Start serving ``app`` (over HTTPS with ``ssl_context``); the caller cleans it up
    (``close_runner``)."""
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE_S
    )
    await runner.setup()
    await add_site(runner, host, port, ssl_context=ssl_context)
    return runner


async def add_site(
    runner: web.AppRunner, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None
) -> None:
    """One more listening socket for the runner's app (e.g. HTTPS beside plain HTTP)."""
    site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=ssl_context)
    await site.start()


async def close_runner(runner: web.AppRunner) -> None:
    """Stop accepting, clean the runner up, then cut off every connection it had.

    aiohttp's shutdown closes each connection it knows, but a close waits for the answer
    being written to drain: a client still connected and not reading (a daemon stopped after
    the simulator, say) kept the socket open past the loop's end, to be collected as an
    unclosed socket in whatever runs next. The sites are stopped first, and the connections
    accepted by then have reached the server, before they are listed: one reaching it later,
    while aiohttp's shutdown waits for the others, would be dropped from its list unclosed.
    """
    server = runner.server
    if server is None:
        await runner.cleanup()
        return
    for site in list(runner.sites):
        await site.stop()
    for _ in range(_ACCEPT_STEPS):
        await asyncio.sleep(0)
    transports = _transports(server)
    await runner.cleanup()
    # Not server.shutdown() for the ones left: aiohttp reads a timeout of 0 as none at all,
    # and would wait for an answer under way to a client that stopped reading, for ever.
    for transport in transports:
        transport.abort()  # nothing for one already closed
    await asyncio.sleep(0)  # their sockets close in the callbacks abort() scheduled


def _transports(server: web.Server) -> list[asyncio.Transport]:
    # Not an isinstance check: uvloop's transports are not asyncio.Transport subclasses.
    return [handler.transport for handler in server.connections if handler.transport is not None]


# Loop iterations from a socket accepted to its protocol's connection_made (accept task,
# transport, connection_made), with one to spare.
_ACCEPT_STEPS = 4


def bound_ports(runner: web.AppRunner) -> list[int]:
    """The TCP ports the runner listens on, in the order its sites were added."""
    return [int(address[1]) for address in runner.addresses if isinstance(address, tuple)]


def bound_port(runner: web.AppRunner) -> int:
    ports = bound_ports(runner)
    if not ports:
        raise RuntimeError("the simulator is not listening on a TCP port")
    return ports[0]


class ThreadedServer:
    """An aiohttp app served by a loop of its own on a daemon thread."""

    def __init__(
        self,
        make_app: Callable[[], web.Application],
        host: str = "127.0.0.1",
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._make_app = make_app
        self.host = host
        self.port = 0
        self._tls = tls
        self.tls_port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, port: int = 0, timeout: float = 10.0) -> ThreadedServer:
        self._thread = threading.Thread(target=self._run, args=(port,), daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the simulator did not start")
        if self._error is not None:
            raise RuntimeError(f"the simulator did not start: {self._error}") from self._error
        return self

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def tls_base_url(self) -> str:
        """The same app over HTTPS (only when started with ``tls``)."""
        if self._tls is None:
            raise RuntimeError("this simulator serves no HTTPS: start it with tls=...")
        return f"https://{self.host}:{self.tls_port}"

    def _run(self, port: int) -> None:
        run(self._main(port))

    async def _main(self, port: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner: web.AppRunner | None = None
        try:
            runner = await serve(self._make_app(), self.host, port)
            if self._tls is not None:
                await add_site(runner, self.host, 0, ssl_context=self._tls)
            self.port, *tls_port = bound_ports(runner)
            self.tls_port = tls_port[0] if tls_port else 0
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            if runner is not None:
                await runner.cleanup()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await close_runner(runner)

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
