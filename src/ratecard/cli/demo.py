"""`ratecard demo`: the example workspace end to end, summed up in sentences and tables."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import DbOption, JsonOption, counts_text, db_argument, emit_json, now, store_for
from .console import Table, out, say, styled


def demo(
    examples: Annotated[Path, typer.Option("--examples", help="The example workspace folder.")] = Path("examples"),
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Load the example workspace, run it end to end, and show the resulting drafts."""
    from ..services.demo import check_examples, run_demo

    moment = now()
    check_examples(examples)  # a wrong --examples must not leave an empty database behind
    with store_for(db) as store:
        summary = run_demo(store, examples, moment)
    if json_output:
        emit_json(summary)
        return
    print_summary(summary, db)


def print_summary(summary: dict[str, Any], db: str | None) -> None:
    c, e, r = summary["catalog"], summary["events"], summary["run"]
    out.print(styled("catalog", "bold"), f": {c['meters']} meters, {c['plans']} plans, {c['customers']} customers, "
              f"{c['subscriptions']} subscriptions", sep="")
    out.print(styled("events", "bold"), f": {e['read']} read, {e['stored']} stored, {e['duplicates']} duplicates; "
              f"flagged: {counts_text(e['flags'])}; rejected: {counts_text(e['rejected'])}", sep="")
    out.print(styled("invoices", "bold"), f" up to {r['until']}: {r['created']} created, {r['updated']} refreshed, "
              f"{r['unchanged']} unchanged", sep="")
    table = Table(title="Draft invoices by currency")
    for column in ("currency", "invoices", "subtotal", "tax", "total"):
        table.add_column(column, justify="left" if column == "currency" else "right")
    for currency, bucket in summary["by_currency"].items():
        table.add_row(currency, str(bucket["invoices"]), bucket["subtotal"], bucket["tax"], bucket["total"])
    out.print(table)
    top = Table(title="Largest drafts")
    for column in ("invoice", "customer", "currency", "lines", "total"):
        top.add_column(column, justify="right" if column in ("lines", "total") else "left")
    for item in summary["largest"]:
        top.add_row(item["number"], item["customer"], item["currency"], str(item["lines"]), item["total"])
    out.print(top)
    first = summary["largest"][0]["number"] if summary["largest"] else "DRAFT-1"
    option = db_argument(db)
    program = program_name()
    if program != "ratecard":
        say(out, f"(`ratecard` is not on this shell's PATH, so the commands below name it by its path; "
                 f"`source {_beside(program, 'activate')}` makes plain `ratecard` work in this shell)")
    print_console_login(summary["console"], option, program)
    say(out, "Next, try:")
    for command in (f"{program} invoices list{option}", f"{program} invoices show {first}{option}",
                    f"{program} golive check{option}", f"{program} invoices export --format csv{option}"):
        say(out, f"  {command}")


def program_name() -> str:
    """How a printed command calls ratecard so that it runs as printed: plain `ratecard` when that
    name finds this installation on PATH (an activated environment), else its path, relative to the
    working directory when it is inside it (`.venv/bin/ratecard` from the project folder, as
    `make demo` runs it before anyone activated the environment)."""
    installed = Path(os.path.abspath(Path(sys.executable).parent / "ratecard"))
    if not installed.is_file():
        return "ratecard"  # not a console-script installation: nothing better to name
    found = shutil.which("ratecard")
    if found is not None and os.path.samefile(found, installed):
        return "ratecard"
    try:
        relative = installed.relative_to(Path.cwd())
    except ValueError:
        return shlex.quote(str(installed))
    return shlex.quote(str(relative) if relative.parent != Path(".") else f"./{relative}")


def _beside(program: str, name: str) -> str:
    """The file `name` in the folder of the printed program (the environment's activate script)."""
    folder = os.path.dirname(shlex.split(program)[0])
    return shlex.quote(os.path.join(folder, name))


def print_console_login(console: dict[str, Any], option: str, program: str = "ratecard") -> None:
    """How to open the console on this data: the command, the address, the demo login."""
    say(out, "Open the console on this data:")
    say(out, f"  {program} serve{option}")
    say(out, f"  then http://127.0.0.1:8000/console/ and sign in as {console['email']} ({console['role']})")
    if console["password"] is None:
        say(out, f"  (that user existed already: its password was left as it was; `{program} users reset "
                 f"{console['email']}{option}` sets a new one)")
        return
    say(out, f"  password: {console['password']}")
    say(out, "  (a fixed demo password, fine only because this demo database stays on this machine; "
             f"`{program} users reset {console['email']}{option}` sets your own)")
