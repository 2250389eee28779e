"""A console user's address must be a plausible one: `ratecard users create` refuses markup,
quotes, whitespace, control characters, a second @ and overlong parts in one sentence (exit 2),
creates nothing, and still takes ordinary addresses (plus tags, non-ASCII letters). On SQLite and
PostgreSQL, in process as a shell runs it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ..e2e.harness import run_in_process
from ..migrated import at_head


def _cli(url: str, *args: str) -> tuple[int, str, str]:
    env = {**{k: v for k, v in os.environ.items() if k != "RATECARD_DATABASE_URL"},
           "RATECARD_NOW": "2026-12-02T09:00:00Z", "NO_COLOR": "1"}
    return run_in_process([*args, "--db", url], env, Path.cwd())


REFUSED = [
    ("<script>@x.y", "it holds '<' '>'"),
    ('"boss"@example.com', "it holds '\"'"),
    ("o`reilly@example.com", "it holds '`'"),
    ("tab\there@example.com", "it holds '\\t'"),
    ("bell\x07@example.com", "it holds '\\x07'"),
    ("zero\u200bwidth@example.com", "it holds '\\u200b'"),
    ("two@at@example.com", "it needs exactly one @"),
    ("nobody@localhost", "a domain with a dot"),
    ("dots..twice@example.com", "two in a row"),
    ("x" * 65 + "@example.com", "the part before @ has 65 characters (at most 64)"),
    ("x@" + "d" * 250 + ".com", "characters (at most 254)"),
]


@pytest.mark.parametrize(("address", "reason"), REFUSED, ids=[str(i) for i in range(len(REFUSED))])
def test_an_implausible_address_is_refused_in_one_sentence(db_url: str, address: str, reason: str) -> None:
    url = at_head(db_url)
    code, out, err = _cli(url, "users", "create", address, "--role", "viewer")
    assert code == 2, (out, err)
    assert f"error: EMAIL: {address[:80]!r} is not an e-mail address: " in err and reason in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert _cli(url, "users", "list", "--json")[1].strip() == "[]"


def test_ordinary_addresses_are_still_taken(db_url: str) -> None:
    url = at_head(db_url)
    for address in ("Ops.Lead+billing@Example.com", "jürgen@münchen.de", "a_b-c@sub.example.co.uk",
                    "o'brien@example.ie"):
        code, out, err = _cli(url, "users", "create", address, "--role", "viewer", "--json")
        assert code == 0, err
        assert json.loads(out)["email"] == address.lower()
    code, out, _ = _cli(url, "users", "list", "--json")
    assert [user["email"] for user in json.loads(out)] == sorted(
        ["ops.lead+billing@example.com", "jürgen@münchen.de", "a_b-c@sub.example.co.uk", "o'brien@example.ie"])
