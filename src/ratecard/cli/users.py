"""`ratecard users create|list|disable|enable|role|reset`: who may log in to the console, and as what."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .common import DbOption, JsonOption, emit_json, fail, now, store_for
from .console import Table, out, say

app = typer.Typer(help="Console users: viewer (reads), operator (runs billing), admin (users, keys, catalog).",
                  no_args_is_help=True)

PasswordStdin = Annotated[bool, typer.Option("--password-stdin",
                                             help="Read the password from the first line of standard input.")]


def _password(from_stdin: bool) -> str | None:
    """The password from stdin, from a prompt on a terminal, or None: one is generated and shown once."""
    if from_stdin:
        line = sys.stdin.readline(4096)
        password = line.rstrip("\r\n")
        if not password:
            fail("--password-stdin: standard input held no password")
        return password
    if sys.stdin.isatty():
        entered = typer.prompt("password (empty: generate one)", default="", hide_input=True,
                               confirmation_prompt=True, show_default=False)
        return entered or None
    return None


def _show_generated(email: str, generated: str | None) -> None:
    if generated is not None:
        say(out, f"generated password for {email}; store it now, it is not shown again:")
        sys.stdout.write(generated + "\n")


@app.command("create")
def create(email: str, role: Annotated[str, typer.Option("--role", help="viewer | operator | admin")],
           password_stdin: PasswordStdin = False, db: DbOption = None, json_output: JsonOption = False) -> None:
    """Create a console user. Without --password-stdin the password is prompted for (on a terminal)
    or generated and printed once."""
    from ..services import users

    users.check_role(role)
    password = _password(password_stdin)
    with store_for(db) as store:
        user, generated = users.create_user(store, email, role, password, now())
    if json_output:
        emit_json({**user, "password": generated})
        return
    say(out, f"created {user['role']} {user['email']}")
    _show_generated(user["email"], generated)


@app.command("list")
def list_(db: DbOption = None, json_output: JsonOption = False) -> None:
    """Every console user with role and state (never a password)."""
    from ..services import users

    with store_for(db) as store:
        rows = users.list_users(store, now())
    if json_output:
        emit_json(rows)
        return
    table = Table(title=f"{len(rows)} user(s)")
    for column in ("email", "role", "state", "last login"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        state = "disabled" if row["disabled"] else "locked" if row["locked"] else "active"
        table.add_row(row["email"], row["role"], state, row["last_login_at"] or "never")
    out.print(table)


@app.command("disable")
def disable(email: str, db: DbOption = None) -> None:
    """Disable a user: their open sessions end at once and they cannot log in."""
    from ..services import users

    with store_for(db) as store:
        users.set_disabled(store, email, True)
    say(out, f"disabled {email}; their sessions are ended")


@app.command("enable")
def enable(email: str, db: DbOption = None) -> None:
    """Let a disabled user log in again."""
    from ..services import users

    with store_for(db) as store:
        users.set_disabled(store, email, False)
    say(out, f"enabled {email}")


@app.command("role")
def role(email: str, new_role: Annotated[str, typer.Option("--role", help="viewer | operator | admin")],
         db: DbOption = None, json_output: JsonOption = False) -> None:
    """Change a user's role; it applies from their next request (no new login needed)."""
    from ..services import users

    users.check_role(new_role)
    with store_for(db) as store:
        done = users.change_role(store, email, new_role)
    if json_output:
        emit_json(done)
        return
    say(out, f"{done['email']} is now {done['role']} (was {done['previous_role']})")


@app.command("reset")
def reset(email: str, password_stdin: PasswordStdin = False, db: DbOption = None,
          json_output: JsonOption = False) -> None:
    """Set a new password (prompted, read from stdin, or generated and shown once); lifts a lock-out
    and ends the user's open sessions."""
    from ..services import users

    password = _password(password_stdin)
    with store_for(db) as store:
        done, generated = users.reset_password(store, email, password)
    if json_output:
        emit_json({**done, "password": generated})
        return
    say(out, f"reset the password of {done['email']}; {done['sessions_ended']} session(s) ended, lock-out lifted")
    _show_generated(done["email"], generated)
