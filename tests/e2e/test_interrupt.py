"""Ctrl-C in the middle of a command: the user is told what happened and what was kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import CATALOG, Cli, event, jsonl


def test_ctrl_c_during_an_import_says_that_committed_work_is_kept(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cli = Cli(tmp_path, subprocess=False)  # in process: Ctrl-C is raised where the import would run
    cli.write("catalog.yaml", CATALOG)
    cli.ok("catalog", "apply", "catalog.yaml")
    cli.write("events.jsonl", jsonl(event("e-1", "tokens", "2026-01-20T10:00:00Z", tokens=1500)))

    def pressed_ctrl_c(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("ratecard.services.events.import_events", pressed_ctrl_c)
    result = cli("events", "import", "events.jsonl")
    assert result.code == 130
    assert result.err.strip() == "interrupted; everything committed so far is kept"
    assert "Traceback" not in result.err
