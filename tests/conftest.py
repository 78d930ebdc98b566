"""Shared fixtures live in tests/fixtures/, one module per area."""

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
