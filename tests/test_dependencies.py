"""What an install of the project brings along: nothing that makes the daemon heavier
for the client's sake."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, requires

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

TERMINAL_RENDERERS = {"rich", "pygments", "markdown-it-py"}


def _runtime_closure(distribution: str) -> set[str]:
    """``distribution`` and everything it requires at run time on this machine (no extras),
    followed through the installed metadata."""
    seen: set[str] = set()
    todo = [distribution]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            texts = requires(name) or []
        except PackageNotFoundError:  # required but not installed: still required
            continue
        for text in texts:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def test_nothing_installed_brings_a_terminal_renderer() -> None:
    """Neither the project nor anything it requires at run time pulls in rich or pygments:
    structlog imports rich whenever it is installed, which cost the daemon ~80 modules,
    ~5 MB of idle memory and tens of milliseconds of start-up; ``musiquectl`` draws its own
    tables and progress line (``musiquectl/terminal.py``)."""
    closure = _runtime_closure("musique")
    assert {"structlog", "click", "aiohttp", "aiosqlite"} <= closure  # the walk sees them
    assert not closure & TERMINAL_RENDERERS, sorted(closure & TERMINAL_RENDERERS)
