"""Fixtures of the end-to-end suite (helpers live in harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .console_server import chromium, site, tab  # noqa: F401 - the browser tests' fixtures (module-scoped)
from .harness import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """The `ratecard` executable bound to a fresh SQLite database in this test's tmp folder."""
    return Cli(tmp_path)
