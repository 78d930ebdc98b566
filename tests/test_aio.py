"""The asyncio idioms in ``musiqued.aio``: a wait on an event that is set at the moment its
task is cancelled still ends the task; cancelling a task never swallows the canceller's own
cancellation; ``give_way`` lets what the loop's poll wakes run first (on uvloop, the
daemon's loop); work done ``in_turns`` lets the rest of the loop run at each of its pauses;
a ``TurnMemo`` is shared by the calls of one turn and never outlives it."""

from __future__ import annotations

import asyncio
import itertools
import socket
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import uvloop

from musiqued.aio import TurnMemo, Turns, at_once, cancel_and_wait, give_way, in_turns, wait_event


async def _loop_on(event: asyncio.Event) -> None:
    """What a lane of the enricher does: wait to be woken, do a step, wait again."""
    while True:
        await wait_event(event, 300)
        event.clear()
        await asyncio.sleep(0)


async def test_a_wait_woken_as_it_is_cancelled_still_ends() -> None:
    """The event set and the task cancelled in the same turn of the loop, 300 times, at
    several offsets: the task always ends cancelled, at once (the old wait_for could return
    the result instead and the loop went on for 300 s)."""
    for offset in range(300):
        event = asyncio.Event()
        task = asyncio.create_task(_loop_on(event))
        for _ in range(offset % 4):
            await asyncio.sleep(0)
        event.set()
        task.cancel()
        async with asyncio.timeout(2):
            with pytest.raises(asyncio.CancelledError):
                await task


async def test_wait_event_says_whether_it_was_set() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 1) is True


async def test_cancel_and_wait_keeps_the_callers_own_cancellation() -> None:
    """A task stopping another task is itself cancelled meanwhile: it ends cancelled."""
    stubborn_done = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(300)
        finally:
            await stubborn_done.wait()  # takes a while to clean up

    inner = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(cancel_and_wait(inner))
    await asyncio.sleep(0)
    stopper.cancel()
    await asyncio.sleep(0)
    stubborn_done.set()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    with pytest.raises(asyncio.CancelledError):
        await inner


async def test_cancel_and_wait_on_a_task_that_ends_cancelled() -> None:
    task = asyncio.create_task(asyncio.sleep(300))
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled()


def _three_parts(log: list[str]) -> Turns[str]:
    for part in ("first", "second", "third"):
        if part != "first":
            yield
        log.append(part)
    return "done"


async def test_work_in_turns_lets_the_loop_run_at_each_pause() -> None:
    log: list[str] = []
    stop = asyncio.Event()

    async def other() -> None:
        while not stop.is_set():
            log.append("other")
            await asyncio.sleep(0)

    running = asyncio.create_task(other())
    await asyncio.sleep(0)
    log.clear()
    assert await in_turns(_three_parts(log)) == "done"
    stop.set()
    await running
    parts = [i for i, entry in enumerate(log) if entry != "other"]
    assert [log[i] for i in parts] == ["first", "second", "third"]
    assert all(b - a > 1 for a, b in itertools.pairwise(parts))


def test_work_at_once_runs_without_a_loop() -> None:
    log: list[str] = []
    assert at_once(_three_parts(log)) == "done"
    assert log == ["first", "second", "third"]


async def _one_turn() -> None:
    await asyncio.sleep(0)


async def _order(pause: Callable[[], Awaitable[None]]) -> list[str]:
    """A busy task pauses just as data reaches a socket another task waits on: which of
    the two goes on first."""
    order: list[str] = []
    loop = asyncio.get_running_loop()
    readable, writer = socket.socketpair()
    woken: asyncio.Future[None] = loop.create_future()
    loop.add_reader(readable, lambda: woken.done() or woken.set_result(None))

    async def busy() -> None:
        await asyncio.sleep(0)  # both tasks are under way
        writer.send(b"a call")
        await pause()
        order.append("busy")

    async def waiting() -> None:
        await woken
        order.append("woken by the poll")

    try:
        await asyncio.gather(busy(), waiting())
    finally:
        loop.remove_reader(readable)
        readable.close()
        writer.close()
    return order


def test_give_way_lets_what_the_poll_wakes_go_first() -> None:
    assert uvloop.run(_order(give_way)) == ["woken by the poll", "busy"]
    # One turn is not enough: the woken task is queued behind the busy one again.
    assert uvloop.run(_order(_one_turn)) == ["busy", "woken by the poll"]


class _CountingServer:
    """A line server answering each line with a value from a ``TurnMemo`` over ``state``
    (the daemon's ``daemon.status`` in miniature); counts how often it was computed."""

    def __init__(self) -> None:
        self.state = 0
        self.computed = 0
        self.connections = 0
        self.connected = asyncio.Event()
        self._memo: TurnMemo[str] = TurnMemo()

    def _value(self) -> str:
        shared = self._memo.get()
        if shared is not None:
            return shared
        self.computed += 1
        return self._memo.keep(f"state {self.state}")

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.connected.set()
        while line := await reader.readline():
            if line.startswith(b"set "):
                self.state = int(line.split()[1])
            writer.write(self._value().encode() + b"\n")
        writer.close()


def _in_turn_memo_server(
    scenario: Callable[[_CountingServer, Path], Awaitable[list[str]]],
) -> tuple[list[str], int]:
    async def main() -> tuple[list[str], int]:
        counting = _CountingServer()
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "s"
            server = await asyncio.start_unix_server(counting.serve, path=str(path))
            async with server:
                answers = await scenario(counting, path)
        return answers, counting.computed

    return uvloop.run(main())


async def _calls_after_replies(counting: _CountingServer, path: Path) -> list[str]:
    """One client: each call changes the state and reads the answer, 50 times."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    answers = []
    for n in range(50):
        writer.write(f"set {n}\n".encode())
        answers.append((await reader.readline()).decode().strip())
    writer.close()
    return answers


def test_turn_memo_never_outlives_the_reply() -> None:
    """A call made after the previous answer arrived sees the state as it is then, each time
    (a memo kept until a timer, or never forgotten, answers the older state)."""
    answers, computed = _in_turn_memo_server(_calls_after_replies)
    assert answers == [f"state {n}" for n in range(50)]
    assert computed == 50


async def _burst(counting: _CountingServer, path: Path) -> list[str]:
    """Five clients' calls reach the loop while it is busy: it answers them in one turn."""
    clients = []
    for _ in range(5):
        client = socket.socket(socket.AF_UNIX)
        client.connect(str(path))
        clients.append(client)
    while counting.connections < len(clients):  # each handler waits for its line
        counting.connected.clear()
        await counting.connected.wait()
    sent = threading.Event()

    def send_all() -> None:
        for client in clients:
            client.sendall(b"status\n")
        sent.set()

    threading.Thread(target=send_all).start()
    assert sent.wait(5)  # the loop is busy (blocked here) while the calls arrive
    answers = []
    for client in clients:
        client.setblocking(False)
    for client in clients:
        while not (data := await _recv_line(client)):
            pass
        answers.append(data)
        client.close()
    return answers


async def _recv_line(client: socket.socket) -> str:
    loop = asyncio.get_running_loop()
    return (await loop.sock_recv(client, 100)).decode().strip()


def test_turn_memo_is_shared_by_a_burst() -> None:
    """Calls that queued while the loop was busy are handled in one turn: the value is
    computed once for all five."""
    answers, computed = _in_turn_memo_server(_burst)
    assert answers == ["state 0"] * 5
    assert computed == 1
