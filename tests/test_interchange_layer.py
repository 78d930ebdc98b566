"""``musiqued.interchange`` stays a layer beside ``upstream``: storage-free and testable alone."""

from __future__ import annotations

import ast

from tests.support import ROOT

ALLOWED = ("musiqued.models", "musiqued.errors", "musiqued.interchange")


def test_interchange_imports_only_models_errors_and_libraries() -> None:
    """No module of the package imports storage, services, front ends or the app: only
    ``musiqued.models``, ``musiqued.errors``, its own modules and libraries."""
    offending = []
    for path in sorted((ROOT / "musiqued" / "interchange").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = (
                    [node.module]
                    if node.module != "musiqued"
                    else [f"musiqued.{alias.name}" for alias in node.names]
                )
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("musiqued") and not name.startswith(ALLOWED):
                    offending.append(f"{path.name}: {name}")
    assert offending == []
