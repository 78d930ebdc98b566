"""``musiqued`` with the test-only RPC methods (``tests/testhooks.py``) added.

Run as ``python -m tests.hooked_musiqued --config FILE …``: the same command line as
``musiqued``; the product itself has no switch that adds these methods.
"""

from __future__ import annotations

from musiqued.app.cli import command
from tests.testhooks import TEST_METHODS

if __name__ == "__main__":
    command(extra_methods=TEST_METHODS)()
