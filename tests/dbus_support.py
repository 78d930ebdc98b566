"""A private session D-Bus (a real ``dbus-daemon --session``) and a notification server on
it that records every ``Notify`` call, as a desktop's would receive them."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from jeepney import HeaderFields, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

from tests.fixtures.browser import missing_tool

NAME = "org.freedesktop.Notifications"
DBUS_HINT = (
    "the desktop notification tests need dbus-daemon: `apt-get install dbus-daemon` "
    "(Debian/Ubuntu; `make test` does it as root)"
)


@dataclass(frozen=True)
class Received:
    app_name: str
    replaces_id: int
    icon: str
    summary: str
    body: str
    actions: list[str]
    hints: dict[str, Any]
    expire_ms: int


@contextmanager
def session_bus() -> Iterator[str]:
    """``dbus-daemon --session`` of the test's own; yields its address."""
    program = shutil.which("dbus-daemon")
    if program is None:
        missing_tool(DBUS_HINT)
        raise AssertionError("unreachable")
    proc = subprocess.Popen(
        [program, "--session", "--nofork", "--nopidfile", "--print-address=1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address, "dbus-daemon printed no address"
        yield address
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


class NotificationServer:
    """Owns ``org.freedesktop.Notifications`` on the bus and records what it is sent."""

    def __init__(self, address: str) -> None:
        self._connection = open_dbus_connection(bus=address)
        reply = self._connection.send_and_get_reply(message_bus.RequestName(NAME), timeout=5)
        assert reply.body == (1,), f"could not own {NAME}: {reply.body}"
        self.received: list[Received] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        serial = 0
        while not self._stop.is_set():
            try:
                message = self._connection.receive(timeout=0.2)
            except TimeoutError:
                continue
            except OSError:
                return
            header = message.header
            if header.message_type != MessageType.method_call:
                continue
            member = header.fields.get(HeaderFields.member)
            if member == "Notify":
                serial += 1
                with self._changed:
                    self.received.append(Received(*message.body))
                    self._changed.notify_all()
                self._connection.send(new_method_return(message, "u", (serial,)))
            elif member == "GetCapabilities":
                self._connection.send(
                    new_method_return(message, "as", (["body", "body-markup", "body-images"],))
                )
            elif member == "GetServerInformation":
                self._connection.send(
                    new_method_return(message, "ssss", ("test", "musique", "1", "1.2"))
                )
            else:
                self._connection.send(
                    new_error(message, "org.freedesktop.DBus.Error.UnknownMethod")
                )

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The first ``count`` notifications, once they have arrived."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self.received)} notifications, not {count}")
                self._changed.wait(left)
            return list(self.received[:count])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._connection.close()
