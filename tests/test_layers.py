"""The layout shows the architecture, and the imports keep to it: app (wiring) → rpc and
http (front ends, neither importing the other) → contract (what both answer and accept) →
services → storage, upstream and interchange → the models below everything. Nothing imports
a layer above its own; the daemon never imports the simulators; SQLite is reached through
aiosqlite only."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.support import ROOT

PACKAGE = ROOT / "musiqued"
LAYER = {
    "app": 5,
    "rpc": 4,
    "http": 4,
    "contract": 3,
    "services": 2,
    "storage": 1,
    "upstream": 1,
    "interchange": 1,
}
"""Every other module of ``musiqued`` (models, config, errors, wire, timespec, aio, clock)
is layer 0."""


def _layer(module: str) -> int:
    parts = module.split(".")
    if parts[1:] == ["__main__"]:  # ``python -m musiqued``: the entry point, above all
        return max(LAYER.values()) + 1
    return LAYER.get(parts[1], 0) if len(parts) > 1 else 0


def _modules() -> Iterator[tuple[Path, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("")
        yield path, ".".join(relative.parts).removesuffix(".__init__")


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "musiqued":
                yield from (f"musiqued.{alias.name}" for alias in node.names)
            else:
                yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def test_no_module_imports_a_layer_above_its_own() -> None:
    """Dependencies point down; the two front ends do not reach into each other."""
    upward = []
    for path, module in _modules():
        if module.startswith("musiqued.sim"):
            continue
        for name in _imports(path):
            if not name.startswith("musiqued.") or name.startswith("musiqued.sim"):
                continue
            front_ends = {module.split(".")[1], name.split(".")[1]} == {"rpc", "http"}
            if _layer(name) > _layer(module) or front_ends:
                upward.append(f"{module} imports {name}")
    assert upward == []


def test_the_daemon_never_imports_the_simulators() -> None:
    """Simulators serve tests, the demo and the benches; no product module loads them."""
    found = [
        f"{module} imports {name}"
        for path, module in _modules()
        if not module.startswith("musiqued.sim")
        for name in _imports(path)
        if name.startswith("musiqued.sim")
    ]
    assert found == []


def test_sqlite_is_reached_through_aiosqlite_only() -> None:
    """No product module opens SQLite itself: ``sqlite3`` serves its types and errors."""
    opened = [
        str(path.relative_to(ROOT))
        for path, module in _modules()
        if not module.startswith("musiqued.sim") and "sqlite3.connect" in path.read_text()
    ]
    assert opened == []
