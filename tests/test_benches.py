"""The benchmark scripts stay runnable: each one's imports resolve against today's code (a
bench is run by hand, so nothing else would notice one that no longer loads)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCHES = sorted(path.stem for path in (Path(__file__).parent / "bench").glob("*_bench.py"))


@pytest.mark.parametrize("name", BENCHES)
def test_each_bench_loads(name: str) -> None:
    """``tests/bench/<name>.py`` imports and has the ``main`` its command line runs."""
    module = importlib.import_module(f"tests.bench.{name}")
    assert callable(module.main)
