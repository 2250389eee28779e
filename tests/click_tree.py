"""The CLI's Click command tree, built once per test process.

Typer turns an app into its Click command tree on every call (`app(...)`, `CliRunner().invoke(app,
…)`): ~70 ms for ratecard's ~100 commands, which a `ratecard` process pays once and the test
process paid for every in-process command, a few thousand times a run. `build_once()` (called by
tests/conftest.py) makes Typer reuse the tree it built for an app. Click makes a new context for
every invocation and the tree keeps nothing of one, so a command runs as on a fresh tree;
tests/e2e/test_entry_point.py compares in-process commands with the installed script's output.
"""

from __future__ import annotations

from typing import Any

import typer.main
import typer.testing

_built: dict[int, tuple[Any, Any]] = {}  # id(Typer app) -> (the app, its Click command tree)
_build = typer.main.get_command


def _built_once(app: Any) -> Any:
    entry = _built.get(id(app))
    if entry is None or entry[0] is not app:  # an app of a test's own, or one made since
        entry = _built[id(app)] = (app, _build(app))
    return entry[1]


def build_once() -> None:
    typer.main.get_command = _built_once  # Typer.__call__ looks it up here
    typer.testing._get_command = _built_once  # CliRunner.invoke, imported under this name
