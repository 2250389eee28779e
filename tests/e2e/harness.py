"""End-to-end harness: run `ratecard` as a user would, with what a user sees (exit code, stdout, stderr).

Every command runs with "now" pinned (RATECARD_NOW), its working directory in the test's tmp
folder, no inherited database URL and no terminal width, so the output is what a script reading
a pipe gets.

Where it runs: in this test process by default, through the console script's own entry point
(`ratecard.cli:main`) with the process state a fresh `ratecard` would have (environment, working
directory, stdin/stdout/stderr, argv and program name, logging, warnings filters, pending ingestion
figures written as at exit), all put back afterwards. Starting a real process costs about half a
second of imports (Typer, pydantic, SQLAlchemy, Alembic…) per command, which the suite paid
hundreds of times. `Cli(folder, subprocess=True)` runs one test's commands as real processes of
the installed script; RATECARD_TEST_SUBPROCESS=1 runs every test's commands that way (the switch
to use when an in-process difference is suspected). The tests that are about the process itself
(the README tour, the runtime-only environment, `serve`, concurrent runs, signals) spawn it
themselves.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import traceback
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RATECARD = Path(sys.executable).parent / "ratecard"
NOW = "2026-11-26T00:00:00Z"
# one switch: every Cli command as a real process of the installed script
SUBPROCESS = os.environ.get("RATECARD_TEST_SUBPROCESS") == "1"
# what a command must not inherit from the environment the tests run in
NOT_INHERITED = ("RATECARD_DATABASE_URL", "RATECARD_DEBUG", "COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")


def command_environment(now: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env["RATECARD_NOW"] = now
    env["NO_COLOR"] = "1"
    return env


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
    """Runs `ratecard ARGS --db <this test's SQLite file>` (in process unless `subprocess`)."""

    def __init__(self, folder: Path, db_name: str = "x.db", *, subprocess: bool = SUBPROCESS) -> None:
        self.folder = folder
        self.db = f"sqlite:///{folder / db_name}"
        self.now = NOW  # RATECARD_NOW for the commands; a test may move it
        self.env: dict[str, str] = {}  # more environment variables for the commands
        self.subprocess = subprocess

    def __call__(self, *args: Any, db: str | None | bool = True, timeout: float = 60, stdin: str = "") -> Result:
        """`timeout` bounds a real process; in process a command runs to its end. `stdin` is what
        the command reads from standard input (a password for --password-stdin)."""
        argv = [str(a) for a in args]
        if db is True:
            argv += ["--db", self.db]
        elif isinstance(db, str):
            argv += ["--db", db]
        env = command_environment(self.now) | self.env
        if not self.subprocess and in_process_is_faithful():
            code, out, err = run_in_process(argv, env, self.folder, stdin)
            return Result(argv, code, out, err)
        proc = subprocess.run([str(RATECARD), *argv], capture_output=True, text=True, env=env,
                              cwd=self.folder, timeout=timeout, encoding="utf-8", errors="replace",
                              input=stdin or None)
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


# ------------------------------------------------------------------------------ in process
class _Stream(io.TextIOWrapper):
    """stdout/stderr of a command run in process: a pipe (not a terminal), UTF-8, bytes kept."""

    def __init__(self, errors: str) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", errors=errors, write_through=True)

    def text(self) -> str:
        """What `subprocess.run(..., text=True, errors="replace")` reads: newlines made universal."""
        self.flush()
        data = self.buffer.getvalue()  # type: ignore[attr-defined]
        return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace").read()


def _python_default_warnings() -> None:
    """The warnings filters of a fresh `python` (a command's warnings go to its stderr, as they would)."""
    warnings.resetwarnings()
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__", append=True)
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.filterwarnings("ignore", category=category, append=True)


@contextlib.contextmanager
def _fresh_logging() -> Iterator[None]:
    """Logging as in a fresh process (no handler: warnings reach stderr through logging's last
    resort), and every logger as it was afterwards (pytest's capture handlers included)."""
    loggers = [logging.root, *(item for item in logging.Logger.manager.loggerDict.values()
                                if isinstance(item, logging.Logger))]
    saved = [(logger, list(logger.handlers), logger.level, logger.propagate, logger.disabled) for logger in loggers]
    known = {id(logger) for logger in loggers}
    disabled = logging.root.manager.disable
    logging.root.handlers = []
    logging.root.setLevel(logging.WARNING)
    logging.disable(logging.NOTSET)
    try:
        yield
    finally:
        for logger in logging.Logger.manager.loggerDict.values():
            if isinstance(logger, logging.Logger) and id(logger) not in known:
                logger.handlers = []  # created by the command: as new for the next one
        for logger, handlers, level, propagate, was_disabled in saved:
            logger.handlers = handlers
            logger.setLevel(level)
            logger.propagate = propagate
            logger.disabled = was_disabled
        logging.disable(disabled)


@contextlib.contextmanager
def _process_state(argv: list[str], env: dict[str, str], cwd: Path, stdout: _Stream, stderr: _Stream,
                   stdin: str = "") -> Iterator[None]:
    """The state a fresh `ratecard ARGV` process starts with; the test process's own is restored after."""
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_streams = sys.stdin, sys.stdout, sys.stderr
    saved_argv = sys.argv
    saved_main = sys.modules.get("__main__")
    saved_signals = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    # stdin as under pytest's capture for a child: empty unless given; the program name as Click works
    # it out for the console script (sys.argv[0] is the script, __main__ has no package)
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8")
    sys.stdout, sys.stderr = stdout, stderr
    sys.argv = [str(RATECARD), *argv]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        with _fresh_logging(), warnings.catch_warnings():
            _python_default_warnings()
            yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        sys.argv = saved_argv
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        for number, handler in saved_signals.items():
            if signal.getsignal(number) is not handler and handler is not None:
                signal.signal(number, handler)


def run_in_process(argv: list[str], env: dict[str, str], cwd: Path, stdin: str = "") -> tuple[int, str, str]:
    """`ratecard ARGV` through the console script's entry point: (exit code, stdout, stderr)."""
    stdout, stderr = _Stream("strict"), _Stream("backslashreplace")
    with _process_state(argv, env, cwd, stdout, stderr, stdin):
        try:
            from ratecard.cli import main

            code = main(argv)
        except SystemExit as exc:  # as the interpreter turns it into an exit code
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:  # noqa: BLE001 - what the interpreter does with an uncaught exception
            traceback.print_exc()
            code = 1
        finally:
            # at exit, a process writes the ingestion figures it still holds
            figures = sys.modules.get("ratecard.ingest.figures")
            if figures is not None:
                figures.flush()
    return code & 0xFF, stdout.text(), stderr.text()


_faithful: bool | None = None


def in_process_is_faithful() -> bool:
    """Whether the CLI's consoles were made as a process writing to a pipe makes them (no colour,
    wide tables). They are made once, at import: imported under a terminal (`pytest -s`) they are
    not, and commands then run as real processes."""
    global _faithful
    if _faithful is None:
        stdout, stderr = _Stream("strict"), _Stream("backslashreplace")
        with _process_state([], command_environment(NOW), Path.cwd(), stdout, stderr):
            from ratecard.cli.console import err, out
        _faithful = out.width == 240 and out.color_system is None and err.color_system is None
    return _faithful


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
