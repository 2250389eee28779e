"""Ctrl-C in the middle of a command: the user is told what happened and what was kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .harness import CATALOG, Cli, command_environment, event, jsonl

# `ratecard events import` in its own process, with Ctrl-C pressed where the import runs
# (KeyboardInterrupt is what Python raises on SIGINT), through the console script's entry point
PRESS_CTRL_C_DURING_IMPORT = """
import sys
import ratecard.services.events as events
from ratecard.cli import main

def pressed_ctrl_c(*args, **kwargs):
    raise KeyboardInterrupt

events.import_events = pressed_ctrl_c
sys.argv = ["ratecard", *sys.argv[1:]]
raise SystemExit(main())
"""


def test_ctrl_c_during_an_import_says_that_committed_work_is_kept(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.write("catalog.yaml", CATALOG)
    cli.ok("catalog", "apply", "catalog.yaml")
    cli.write("events.jsonl", jsonl(event("e-1", "tokens", "2026-01-20T10:00:00Z", tokens=1500)))
    result = subprocess.run([sys.executable, "-c", PRESS_CTRL_C_DURING_IMPORT, "events", "import", "events.jsonl",
                             "--db", cli.db], cwd=tmp_path, env=command_environment(cli.now),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 130
    assert result.stderr.strip() == "interrupted; everything committed so far is kept"
    assert result.stdout == ""
