"""`ratecard keys create|list|revoke`: API keys, one environment each."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .common import DbOption, JsonOption, emit_json, now, store_for
from .console import Table, out, say

app = typer.Typer(help="API keys, one environment each (sandbox or live).", no_args_is_help=True)

EnvOption = Annotated[str, typer.Option("--env", help="sandbox | live")]
NameOption = Annotated[str | None, typer.Option("--name", help="A label shown by `keys list` (at most 200 characters).")]


@app.command("create")
def create(env: EnvOption = "sandbox", name: NameOption = None, db: DbOption = None,
           json_output: JsonOption = False) -> None:
    """Create an API key. It is shown once, on the last line; only its hash is stored."""
    from ..services import keys

    keys.check_environment(env)
    with store_for(db) as store:
        key = keys.create(store, env, now(), name)
    if json_output:
        emit_json(key)
        return
    say(out, f"created key {key['id']} for the {env} environment; store it now, it is not shown again:")
    sys.stdout.write(key["key"] + "\n")


@app.command("list")
def list_(env: Annotated[str | None, typer.Option("--env", help="sandbox | live")] = None, db: DbOption = None,
          json_output: JsonOption = False) -> None:
    """List keys (ids and state, never secrets)."""
    from ..services import keys

    if env is not None:
        keys.check_environment(env)
    with store_for(db) as store:
        rows = keys.find(store, env)
    if json_output:
        emit_json(rows)
        return
    table = Table(title=f"{len(rows)} key(s)")
    for column in ("id", "environment", "name", "state"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(row["id"], row["environment"], row["name"] or "", "revoked" if row["revoked"] else "active")
    out.print(table)


@app.command("revoke")
def revoke(key_id: str, db: DbOption = None) -> None:
    """Revoke a key by id: requests with it get 401 from then on."""
    from ..services import keys

    with store_for(db) as store:
        keys.revoke(store, key_id, now())
    say(out, f"revoked key {key_id}")
