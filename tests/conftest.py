"""Shared fixtures live in tests/fixtures/, one module per area."""

import signal

import pytest

pytest_plugins = [
    "tests.fixtures.clock",
    "tests.fixtures.daemon",
    "tests.fixtures.journald",
    "tests.fixtures.lastfm",
    "tests.fixtures.listenbrainz",
    "tests.fixtures.enrichment",
    "tests.fixtures.browser",
    "tests.fixtures.services",
    "tests.fixtures.rpc_socket",
    "tests.fixtures.threaded",
]


def pytest_configure(config: pytest.Config) -> None:
    """The Ctrl-C tests send SIGINT to musiquectl as a terminal does. A suite started in the
    background by a script has SIGINT ignored, and every process it starts would inherit
    that (Python then installs no KeyboardInterrupt handler): a handler here is reset to the
    default in each child instead."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long tests first: the workers start on them while the rest waits its turn, so
    that none of them is left running alone at the end of the suite."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
