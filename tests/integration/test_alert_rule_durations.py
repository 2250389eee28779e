"""The syntax of an alert rule's --window and --baseline, as `ratecard alerts rules add` takes it:
a number and a unit written together. Spaces around the whole are trimmed; a space inside (between
the number and the unit, or between digits) is refused with a message naming the option and saying
so, and no rule is stored. `30 m` was stored as 30 minutes while `3 0m` was "not a duration": the syntax
depended on where the space fell. Run in process against SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from ..e2e.harness import run_in_process
from ..migrated import at_head


def _cli(url: str, *args: str) -> tuple[int, str, str]:
    env = {**{k: v for k, v in os.environ.items() if k != "RATECARD_DATABASE_URL"},
           "RATECARD_NOW": "2026-12-02T09:00:00Z", "NO_COLOR": "1"}
    return run_in_process([*args, "--db", url], env, Path.cwd())


def _rules(url: str) -> list[dict]:
    code, out, err = _cli(url, "alerts", "rules", "list", "--json")
    assert code == 0, err
    return orjson.loads(out)


@pytest.mark.parametrize(("option", "value"), [("--window", "30 m"), ("--window", "3 0m"), ("--baseline", "7 d"),
                                               ("--baseline", "1 .5w"), ("--window", " 1\th ")])
def test_a_space_inside_a_duration_is_refused_naming_the_option(db_url: str, option: str, value: str) -> None:
    url = at_head(db_url)
    code, _, err = _cli(url, "alerts", "rules", "add", "--kind", "drop", "--fraction", "0.5", option, value)
    assert code == 2, err
    assert f"error: {option}: {value.strip()!r} has a space inside" in err
    assert "such as 30m" in err and "internal error" not in err
    assert _rules(url) == []


def test_spaces_around_a_duration_are_trimmed(db_url: str) -> None:
    url = at_head(db_url)
    code, out, err = _cli(url, "alerts", "rules", "add", "--kind", "drop", "--fraction", "0.5",
                          "--window", " 1h ", "--baseline", "\t7d\n", "--json")
    assert code == 0, err
    assert (orjson.loads(out)["window"], orjson.loads(out)["baseline"]) == ("1h", "7d")
    code, _, err = _cli(url, "alerts", "rules", "add", "--kind", "drop", "--fraction", "0.5", "--window", "   ")
    assert code == 2
    assert "error: --window: '   ' is not a duration" in err
    code, _, err = _cli(url, "alerts", "rules", "add", "--kind", "drop", "--fraction", "0.5", "--window", "1h 30m")
    assert code == 2
    assert "error: --window: '1h 30m' is not a duration (a number and a unit: 30m, 1h, 7d, 2w)" in err
    assert len(_rules(url)) == 1
