"""The simulators' server (``musiqued.sim.server``): stopping it leaves no socket open, even
one whose client stopped reading in the middle of an answer (it would be collected as an
unclosed socket in whatever test ran next)."""

from __future__ import annotations

import gc
import socket
import warnings

from aiohttp import web

from musiqued.sim.server import ThreadedServer

ANSWER_BYTES = 8 << 20  # far more than the two sockets' buffers hold


def _app() -> web.Application:
    async def big(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * ANSWER_BYTES)

    app = web.Application()
    app.router.add_get("/big", big)
    return app


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
