"""An error about a command's positional argument names it as the user typed it (EMAIL, MONTH),
never as an option the command does not have (--email, --month); options keep their --name.
Run in process against SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

from ..e2e.harness import run_in_process
from ..migrated import at_head


def _cli(url: str, *args: str) -> tuple[int, str, str]:
    env = {**{k: v for k, v in os.environ.items() if k != "RATECARD_DATABASE_URL"},
           "RATECARD_NOW": "2026-12-02T09:00:00Z", "NO_COLOR": "1"}
    return run_in_process([*args, "--db", url], env, Path.cwd())


def test_a_bad_argument_is_named_as_typed_and_a_bad_option_as_an_option(db_url: str) -> None:
    url = at_head(db_url)

    code, _, err = _cli(url, "users", "create", '=HYPERLINK("x")', "--role", "viewer")
    assert code == 2
    assert "error: EMAIL: '=HYPERLINK(\"x\")' is not an e-mail address" in err
    assert "--email" not in err

    code, _, err = _cli(url, "events", "partitions", "detach", "2026-13")
    assert code == 2
    assert "error: MONTH: expected a month as YYYY-MM, got '2026-13'" in err
    assert "--month" not in err

    code, _, err = _cli(url, "invoices", "generate", "--until", "1e400")
    assert code == 2
    assert "error: --until: '1e400' is not a date" in err
