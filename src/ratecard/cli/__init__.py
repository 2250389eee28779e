"""The `ratecard` command line: one module per verb group, each a thin layer over ratecard.services.

A verb parses its options, calls the use cases with the store and "now", and prints a table or
(--json) one JSON document. The use cases' typed errors become one sentence on stderr.

Exit codes: 0 success, 1 ran and found problems, 2 usage or input errors (one sentence on
stderr naming the file, line and field; never a traceback for bad input).

Start-up stays light: the verb modules import Typer and Rich only; the services (and the
database layers under them) are imported by the verb that runs.
"""

from __future__ import annotations

import inspect
import os
import sys

import typer

from . import (
    backfills,
    catalog,
    cohorts,
    demo,
    entitlements,
    events,
    golive,
    invoices,
    keys,
    monitoring,
    payments,
    reconcile,
    rollups,
    serve,
    subscriptions,
    users,
    worker,
)
from .common import report_failure
from .console import err, say

app = typer.Typer(help="ratecard: usage-based billing with the go-live toolkit built in.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
app.add_typer(catalog.app, name="catalog")
app.add_typer(events.app, name="events")
app.add_typer(invoices.app, name="invoices")
app.add_typer(keys.app, name="keys")
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.command("demo")(demo.demo)
app.command("reconcile")(reconcile.reconcile)
app.add_typer(golive.app, name="golive")
app.add_typer(subscriptions.app, name="subscriptions")
app.add_typer(monitoring.monitor_app, name="monitor")
app.add_typer(monitoring.alerts_app, name="alerts")
app.add_typer(monitoring.webhooks_app, name="webhooks")
app.add_typer(backfills.app, name="backfill")
app.add_typer(cohorts.cohort_app, name="cohort")
app.add_typer(cohorts.cutover_app, name="cutover")
app.command("rollback")(cohorts.rollback)
app.add_typer(users.app, name="users")
app.add_typer(payments.app, name="payments")
app.add_typer(entitlements.app, name="entitlements")
app.add_typer(rollups.app, name="rollups")


def _summaries_on_one_line(group: typer.Typer) -> None:
    """A group's help lists each command with the first paragraph of its docstring, where Typer's
    rich help keeps the docstring's line breaks: a summary would break where its source line ended
    (`rollback`: "…issued since" / "promotion with…"). Give every command that first paragraph as
    one line, for the terminal to wrap; the command's own --help is unchanged."""
    for info in group.registered_commands:
        if info.short_help is None and info.callback is not None:
            doc = inspect.getdoc(info.callback) or ""
            info.short_help = " ".join(doc.split("\n\n")[0].split()) or None
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _summaries_on_one_line(sub.typer_instance)


_summaries_on_one_line(app)


def _arguments_of(argv: list[str]) -> frozenset[str]:
    """The positional argument names of the command `argv` ran (`users create` -> {"email"}), so
    an error about one names it as typed (EMAIL) rather than as an option it is not (--email)."""
    command = typer.main.get_command(app)
    for token in argv:
        commands = getattr(command, "commands", None)
        if not isinstance(commands, dict) or token not in commands:
            break
        command = commands[token]
    return frozenset(param.name for param in command.params
                     if param.param_type_name == "argument" and param.name)


INTERRUPTED = "interrupted; everything committed so far is kept"


def _interrupted(exc: BaseException) -> bool:
    """Whether this exit was caused by Ctrl-C (a KeyboardInterrupt somewhere down its chain)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def main(argv: list[str] | None = None) -> int:
    """Console entry point: bad input never shows a traceback."""
    from ..services.errors import ServiceError

    try:
        app(args=argv, standalone_mode=True)
    except SystemExit as exc:
        if _interrupted(exc):  # Typer turns Ctrl-C into a silent exit 130: say what it left behind
            err.print(INTERRUPTED)
            return 130
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    except ServiceError as exc:  # a use case refused: its sentence, exit 2 (1 for a refused safety check)
        return report_failure(exc, _arguments_of(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        err.print(INTERRUPTED)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one sentence, no traceback
        if os.environ.get("RATECARD_DEBUG") == "1":
            raise
        name = type(exc).__name__
        say(err, f"error: internal error ({name}: {str(exc)[:300]}); nothing after the last completed step was "
                 "written; rerun with RATECARD_DEBUG=1 for the traceback and please report it")
        return 2
    return 0


__all__ = ["app", "main"]
