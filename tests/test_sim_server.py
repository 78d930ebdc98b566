"""The simulators' server (``musiqued.sim.server``): stopping it leaves no socket open, even
one whose client stopped reading in the middle of an answer, or one accepted just as it
stopped (it would be collected as an unclosed socket in whatever test ran next)."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings

from aiohttp import web

from musiqued.sim.server import ThreadedServer, bound_port, close_runner, run, serve

ANSWER_BYTES = 8 << 20  # far more than the two sockets' buffers hold


def _app() -> web.Application:
    async def big(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * ANSWER_BYTES)

    app = web.Application()
    app.router.add_get("/big", big)
    return app


def _closed_by_server(client: socket.socket) -> bool:
    """True once the server's side of ``client`` is gone (what is left comes, then the end,
    or a reset); False if it is still open after 10 s."""
    client.settimeout(10)
    try:
        while client.recv(1 << 20):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


def test_a_client_that_stopped_reading_is_cut_off_when_the_server_stops() -> None:
    server = ThreadedServer(_app).start()
    client = socket.create_connection((server.host, server.port))
    try:
        client.sendall(b"GET /big HTTP/1.1\r\nHost: sim\r\n\r\n")
        first = client.recv(65536)  # the answer has begun; then the client reads no more
        assert first.startswith(b"HTTP/1.1 200")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            server.stop()
            gc.collect()
        unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
        assert unclosed == []
        # The server's side is gone: what is left comes, then the end (or a reset).
        client.settimeout(10)
        received = len(first)
        try:
            while chunk := client.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert received < ANSWER_BYTES
    finally:
        client.close()


def test_connections_accepted_as_the_server_stops_are_closed() -> None:
    """Connections the loop accepted just before the sites closed are closed all the same,
    while the shutdown still waits for a client that stopped reading (on the simulators' own
    loop: asyncio's leaves them open, CPython gh-109564)."""

    async def stop_as_they_arrive() -> list[bool]:
        runner = await serve(_app(), "127.0.0.1", 0)
        address = ("127.0.0.1", bound_port(runner))
        stalled = socket.create_connection(address)
        late: list[socket.socket] = []
        try:
            stalled.sendall(b"GET /big HTTP/1.1\r\nHost: sim\r\n\r\n")
            first = await asyncio.to_thread(stalled.recv, 65536)
            assert first.startswith(b"HTTP/1.1 200")
            late = [socket.create_connection(address) for _ in range(5)]
            # Turns for the loop to see the listening socket ready and accept them; on
            # asyncio's loop they would reach aiohttp only in the turns after.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            await close_runner(runner)
            clients = [stalled, *late]
            return list(
                await asyncio.gather(*(asyncio.to_thread(_closed_by_server, c) for c in clients))
            )
        finally:
            for client in [stalled, *late]:
                client.close()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        closed = run(stop_as_they_arrive())
        gc.collect()
    assert closed == [True] * 6
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
