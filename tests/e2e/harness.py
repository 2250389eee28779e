"""End-to-end harness: run the installed `ratecard` executable as a user would.

Every command runs in a subprocess with "now" pinned (RATECARD_NOW), its working directory in
the test's tmp folder, no inherited database URL and no terminal width, so the output is what a
script reading a pipe gets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RATECARD = Path(sys.executable).parent / "ratecard"
NOW = "2026-11-26T00:00:00Z"


@dataclass
class Result:
    args: list[str]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """With --json, stdout must be exactly one JSON document and nothing else."""
        try:
            return json.loads(self.out)
        except json.JSONDecodeError as exc:  # pragma: no cover - shown on failure only
            raise AssertionError(f"stdout is not one JSON document ({exc}):\n{self}") from None

    def __str__(self) -> str:
        return (f"$ ratecard {' '.join(self.args)}\nexit {self.code}\n--- stdout ---\n{self.out[:4000]}"
                f"\n--- stderr ---\n{self.err[:4000]}")


class Cli:
    """Runs `ratecard ARGS --db <this test's SQLite file>`."""

    def __init__(self, folder: Path, db_name: str = "x.db") -> None:
        self.folder = folder
        self.db = f"sqlite:///{folder / db_name}"
        self.now = NOW  # RATECARD_NOW for the commands; a test may move it

    def __call__(self, *args: Any, db: str | None | bool = True, timeout: float = 60) -> Result:
        argv = [str(a) for a in args]
        if db is True:
            argv += ["--db", self.db]
        elif isinstance(db, str):
            argv += ["--db", db]
        env = {k: v for k, v in os.environ.items()
               if k not in ("RATECARD_DATABASE_URL", "RATECARD_DEBUG", "COLUMNS", "LINES", "FORCE_COLOR")}
        env["RATECARD_NOW"] = self.now
        env["NO_COLOR"] = "1"
        proc = subprocess.run([str(RATECARD), *argv], capture_output=True, text=True, env=env,
                              cwd=self.folder, timeout=timeout, encoding="utf-8", errors="replace")
        return Result(argv, proc.returncode, proc.stdout, proc.stderr)

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def ok(self, *args: Any, **kwargs: Any) -> Result:
        result = self(*args, **kwargs)
        assert result.code == 0, str(result)
        assert "Traceback" not in result.err, str(result)
        return result


def assert_user_error(result: Result, code: int, *needles: str, one_line: bool = True) -> None:
    """What a user must see on bad input: the exit code, no traceback, no 'internal error',
    one sentence on stderr that names the file / line / field (the needles), nothing on stdout
    that could be mistaken for a result."""
    assert result.code == code, f"expected exit {code}\n{result}"
    assert "Traceback" not in result.err and "Traceback" not in result.out, str(result)
    assert "internal error" not in result.err, f"bad input reported as an internal error\n{result}"
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert lines, f"stderr must say what is wrong\n{result}"
    if one_line:
        assert len(lines) == 1, f"the error must be one line on stderr\n{result}"
    missing = [needle for needle in needles if needle not in result.err]
    assert not missing, f"stderr must mention {missing}\n{result}"


# A small catalog used by both e2e files.
#   base   : flat 49.00 a month, billed in advance
#   tokens : graduated, first 1000 free, then 0.002 each + 5.00 flat once the tier is reached
#   calls  : per unit 0.10 (count of events)
#   acme   : 21 % tax, subscribed from 2026-01-15 with anchor 1 (short first period Jan 15 -> Feb 1)
CATALOG = """\
billing_entity: {name: E2E Cloud BV, country: NL, timezone: UTC, currency: EUR}
meters:
  - {code: tokens, aggregation: sum, field: tokens}
  - {code: calls, aggregation: count}
plans:
  - code: pro
    currency: EUR
    interval: month
    charges:
      - {code: base, model: flat, amount: "49.00", timing: advance}
      - code: tokens
        meter: tokens
        model: graduated
        tiers:
          - {up_to: 1000, unit_amount: "0"}
          - {up_to: null, unit_amount: "0.002", flat_amount: "5"}
      - {code: calls, meter: calls, model: per_unit, unit_amount: "0.10"}
customers:
  - {reference: acme, name: Acme Inc, country: NL, currency: EUR, tax_rate: "21"}
subscriptions:
  - {reference: acme-pro, customer: acme, plan: pro, start: 2026-01-15, billing_anchor: 1}
"""


def jsonl(*events: dict[str, Any]) -> str:
    return "".join(json.dumps(event) + "\n" for event in events)


def event(event_id: str, meter: str, timestamp: str, customer: str = "acme", **properties: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"id": event_id, "customer": customer, "meter": meter, "timestamp": timestamp}
    if properties:
        document["properties"] = properties
    return document


def lines_by_code(invoice: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["code"]: line for line in invoice["lines"]}
