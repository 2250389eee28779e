"""`ratecard users create|list|disable|enable|role|reset` as an admin types them: a generated
password printed once, --password-stdin, --json, and one sentence (exit 2) for each mistake."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest

from ratecard.services import users
from ratecard.store import open_store

from .harness import RATECARD, Cli, Result, assert_user_error, command_environment

GENERATED_NOTE = "store it now, it is not shown again:"


def with_stdin(cli: Cli, text: str, *args: str) -> Result:
    """`ratecard ARGS --db …` as a real process reading `text` on standard input (a pipe), as
    `echo "$PASSWORD" | ratecard users create … --password-stdin` does."""
    argv = [*args, "--db", cli.db]
    proc = subprocess.run([str(RATECARD), *argv], input=text, capture_output=True, text=True,
                          env=command_environment(cli.now), cwd=cli.folder, timeout=60, encoding="utf-8")
    return Result(argv, proc.returncode, proc.stdout, proc.stderr)


def signs_in(cli: Cli, email: str, password: str) -> bool:
    """Whether the console would let them in with that password (the login use case itself)."""
    store = open_store(cli.db)
    try:
        users.login(store, email, password, datetime(2026, 11, 26, tzinfo=UTC))
        return True
    except users.LoginRefused:
        return False
    finally:
        store.dispose()


def generated_password(result: Result) -> str:
    """The line after the note: the password, printed alone so a script can take it."""
    lines = result.out.splitlines()
    note = next(index for index, line in enumerate(lines) if GENERATED_NOTE in line)
    return lines[note + 1]


def state_of(cli: Cli, email: str) -> dict:
    return next(user for user in cli.ok("users", "list", "--json").json() if user["email"] == email)


def test_create_generates_a_password_shown_once(cli):
    created = cli.ok("users", "create", "Ops.Lead@Example.com", "--role", "operator")
    assert "created operator ops.lead@example.com" in created.out
    password = generated_password(created)
    assert len(password) >= 12 and " " not in password

    listing = cli.ok("users", "list")
    assert "ops.lead@example.com" in listing.out and "operator" in listing.out and "never" in listing.out
    assert password not in listing.out
    as_json = cli.ok("users", "list", "--json").json()
    assert as_json == [{"email": "ops.lead@example.com", "role": "operator", "disabled": False, "locked": False,
                        "created_at": "2026-11-26T00:00:00Z", "last_login_at": None}]

    assert signs_in(cli, "ops.lead@example.com", password)
    after = cli.ok("users", "list", "--json")
    assert after.json()[0]["last_login_at"] == "2026-11-26T00:00:00Z" and password not in after.out


def test_create_with_json_gives_the_generated_password_in_the_document(cli):
    document = cli.ok("users", "create", "robot@example.com", "--role", "viewer", "--json").json()
    assert document["email"] == "robot@example.com" and document["role"] == "viewer"
    assert len(document["password"]) >= 12
    assert signs_in(cli, "robot@example.com", document["password"])


def test_password_stdin_sets_the_password_and_prints_none(cli):
    chosen = "a long enough passphrase"
    created = with_stdin(cli, chosen + "\n", "users", "create", "chosen@example.com", "--role", "admin",
                         "--password-stdin", "--json")
    assert created.code == 0, str(created)
    assert created.json()["password"] is None and chosen not in created.out
    assert signs_in(cli, "chosen@example.com", chosen)
    assert not signs_in(cli, "chosen@example.com", chosen + "\n")


def test_a_duplicate_email_is_refused_in_one_sentence(cli):
    cli.ok("users", "create", "twice@example.com", "--role", "viewer")
    again = cli("users", "create", "TWICE@example.com", "--role", "admin")
    assert_user_error(again, 2, "a user 'twice@example.com' exists already")
    assert state_of(cli, "twice@example.com")["role"] == "viewer"


@pytest.mark.parametrize("role", ["owner", "Admin", ""])
def test_a_bad_role_is_refused_before_anything_is_written(cli, role):
    result = cli("users", "create", "someone@example.com", "--role", role)
    assert_user_error(result, 2, "--role", "is not one of viewer, operator, admin")
    assert cli.ok("users", "list", "--json").json() == []


def test_a_bad_email_is_refused(cli):
    assert_user_error(cli("users", "create", "not-an-address", "--role", "viewer"), 2, "is not an e-mail address")


def test_a_too_short_or_missing_password_is_refused(cli):
    short = with_stdin(cli, "eleven char\n", "users", "create", "short@example.com", "--role", "viewer",
                       "--password-stdin")
    assert_user_error(short, 2, "a password needs at least 12 characters")
    empty = with_stdin(cli, "", "users", "create", "short@example.com", "--role", "viewer", "--password-stdin")
    assert_user_error(empty, 2, "standard input held no password")
    assert cli.ok("users", "list", "--json").json() == []


def test_disable_and_enable(cli):
    password = generated_password(cli.ok("users", "create", "leaver@example.com", "--role", "operator"))
    disabled = cli.ok("users", "disable", "leaver@example.com")
    assert "disabled leaver@example.com; their sessions are ended" in disabled.out
    assert state_of(cli, "leaver@example.com")["disabled"] is True
    assert "disabled" in cli.ok("users", "list").out
    assert not signs_in(cli, "leaver@example.com", password)

    assert "enabled leaver@example.com" in cli.ok("users", "enable", "leaver@example.com").out
    assert state_of(cli, "leaver@example.com")["disabled"] is False
    assert signs_in(cli, "leaver@example.com", password)
    assert_user_error(cli("users", "disable", "nobody@example.com"), 2, "no user 'nobody@example.com'")


def test_reset_generates_a_new_password_shown_once(cli):
    old = generated_password(cli.ok("users", "create", "forgetful@example.com", "--role", "viewer"))
    reset = cli.ok("users", "reset", "forgetful@example.com")
    assert "reset the password of forgetful@example.com; 0 session(s) ended, lock-out lifted" in reset.out
    new = generated_password(reset)
    assert new != old
    assert signs_in(cli, "forgetful@example.com", new) and not signs_in(cli, "forgetful@example.com", old)

    chosen = "another long passphrase"
    by_stdin = with_stdin(cli, chosen + "\n", "users", "reset", "forgetful@example.com", "--password-stdin", "--json")
    assert by_stdin.code == 0, str(by_stdin)
    assert by_stdin.json() == {"email": "forgetful@example.com", "sessions_ended": 1, "password": None}
    assert signs_in(cli, "forgetful@example.com", chosen)
    assert_user_error(cli("users", "reset", "nobody@example.com"), 2, "no user 'nobody@example.com'")


def test_role_changes_a_users_role(cli):
    cli.ok("users", "create", "grows@example.com", "--role", "viewer")
    changed = cli.ok("users", "role", "grows@example.com", "--role", "admin")
    assert "grows@example.com is now admin (was viewer)" in changed.out
    assert state_of(cli, "grows@example.com")["role"] == "admin"
    assert cli.ok("users", "role", "grows@example.com", "--role", "operator", "--json").json() == {
        "email": "grows@example.com", "role": "operator", "previous_role": "admin"}
    assert_user_error(cli("users", "role", "grows@example.com", "--role", "root"), 2, "--role")
    assert_user_error(cli("users", "role", "nobody@example.com", "--role", "viewer"), 2, "no user")
