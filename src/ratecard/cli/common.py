"""What every verb shares: the --db and --json options, failing with one sentence, printing JSON,
opening the store, reading "now", and the progress bar (the consoles are in console.py).

Nothing heavy is imported here: `ratecard --help` must not pay for the database layers.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TextIO

import orjson
import typer

from .console import err, say

if TYPE_CHECKING:
    from rich.progress import Progress

    from ..services.errors import ServiceError
    from ..store import Store

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (else RATECARD_DATABASE_URL, "
                                                             "else sqlite:///ratecard.db).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
# the largest --limit of a listing (0 lists everything): a bigger number is refused as bad usage
# rather than reaching the database, where it does not fit an integer
MAX_LIMIT = 1_000_000_000
# the largest id of a rule, webhook endpoint, delivery or invoice run (an INTEGER column): a bigger
# number names nothing and is refused as bad usage rather than overflowing the query
MAX_ID = 2**31 - 1
# the CLI works on the live environment unless a verb says otherwise (keys, monitor ingestion)
ENVIRONMENT = "live"


def fail(message: str, code: int = 2) -> NoReturn:
    say(err, f"error: {message}")
    raise typer.Exit(code)


def option_name(field: str, arguments: frozenset[str] = frozenset()) -> str:
    """How the user typed the value at fault: `--field` for an option, `FIELD` for one of the
    command's arguments (`ratecard users create EMAIL`, `events partitions detach MONTH`)."""
    return field.upper() if field in arguments else "--" + field.replace("_", "-")


def explain(error: ServiceError, arguments: frozenset[str] = frozenset()) -> str:
    """The error's sentence, naming the option (or argument) at fault the way it is typed."""
    return f"{option_name(error.field, arguments)}: {error.message}" if error.field else error.message


def report_failure(error: ServiceError, arguments: frozenset[str] = frozenset()) -> int:
    """Print a use case's refusal (its details first, one a line) and return the exit code: 1 for a
    refused safety check (the command ran and found a problem), else 2. `arguments`: the names of
    the command's positional arguments (named in capitals, not as options)."""
    from ..services.errors import Refused

    for detail in error.details:
        say(err, f"error: {detail}")
    say(err, f"error: {explain(error, arguments)}")
    return 1 if isinstance(error, Refused) else 2


def emit_json(document: Any) -> None:
    sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")


@contextmanager
def store_for(db: str | None, *, existing: bool = False) -> Iterator[Store]:
    """The store at --db (migrated if needed), disposed of at the end; a bad URL is one sentence.

    `existing`: the command only reads, so a SQLite file that does not exist is refused rather
    than created empty (a typo in --db would otherwise show empty lists as if the real database
    had nothing in it, and leave a stray file behind)."""
    from ..store import open_store
    from ..store.db import StoreError

    file = database_file(db)
    if existing and file is not None and not file.exists():
        fail(f"no database at {file} (check --db or RATECARD_DATABASE_URL; "
             "`ratecard catalog apply` creates one)")
    try:
        store = open_store(db)
    except StoreError as exc:
        fail(str(exc))
    try:
        yield store
    finally:
        store.dispose()


def database_file(db: str | None) -> Path | None:
    """The SQLite file behind --db (None for PostgreSQL or an in-memory database)."""
    from ..store.db import resolve_url

    url = resolve_url(db)
    if not url.startswith("sqlite"):
        return None
    name = url.split("///", 1)[-1].split("?", 1)[0]
    return Path(name) if name and name != ":memory:" else None


def check_output(option: str, path: Path, db: str | None, *inputs: Path) -> None:
    """Refuse, before anything is read or written, an output that is an input or the database."""
    from ..outputs import OutputError
    from ..outputs import check_output as check

    try:
        check(option, path, inputs, database_file(db))
    except OutputError as exc:
        fail(str(exc))


def write_file(option: str, path: Path, text: str) -> None:
    """Replace the file at `path` with `text` in one step (the old file stays if writing fails)."""
    from ..outputs import OutputError, write_output

    try:
        write_output(option, path, text)
    except OutputError as exc:
        fail(str(exc))


@contextmanager
def output_file(option: str, path: Path | None) -> Iterator[TextIO | None]:
    """A handle whose content replaces `path` once the block succeeds (None when no path is given)."""
    from ..outputs import OutputError, replace_atomically

    if path is None:
        yield None
        return
    try:
        with replace_atomically(option, path) as handle:
            yield handle
    except OutputError as exc:
        fail(str(exc))


def now() -> datetime:
    """The one "now" of a command (RATECARD_NOW pins it), passed to every use case it calls."""
    from ..clock import now as clock_now

    try:
        return clock_now()
    except ValueError as exc:
        fail(str(exc))


def progress(json_output: bool) -> Progress:
    """A transient progress bar on stderr, shown only to a person at a terminal (never with --json)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # markup=False: the description names the user's file
    return Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err, disable=json_output or not err.is_terminal, transient=True)


def masked_url(url: str) -> str:
    """A database URL fit to print: any password replaced by ***."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    credentials, at, host = authority.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{slash}{path}"


def db_argument(db: str | None) -> str:
    """` --db URL` to repeat in a suggested command ('' when the default database is used)."""
    return f" --db {shlex.quote(masked_url(db))}" if db else ""


def counts_text(counts: dict[str, int], empty: str = "none") -> str:
    """{"unknown_meter": 2, "duplicate": 1} as people read it: "duplicate 1, unknown_meter 2"."""
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or empty
