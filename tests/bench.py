"""The bench package for tests: its modules (the drop judge as it was before issue 23, the
synthetic keys and the drill's loader of ``bench.detection``, the API benchmark's own reading of
the questions) and the command that runs a benchmark from the repository's root."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def bench_module(name: str) -> ModuleType:
    """``bench.<name>``, imported once (importing a benchmark starts nothing)."""
    return importlib.import_module(f"bench.{name}")


def bench_command(name: str, *args: str) -> list[str]:
    """``python -m bench.<name> args…``: run with ``cwd=REPO`` or ``PYTHONPATH=REPO``."""
    return [sys.executable, "-m", f"bench.{name}", *args]
