"""What people read from the CLI: the readiness report grouped by cause, the finalize dry run,
where `serve` listens, the demo's summary, and help written in ratecard's own terms."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .harness import CATALOG, NOW, RATECARD, Cli, assert_user_error

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _drafts(cli: Cli) -> list[dict]:
    """acme, subscribed from 2026-01-15 with anchor 1: eleven drafts up to November, all past their
    grace period at the harness's "now" (2026-11-26)."""
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    cli.ok("invoices", "generate", "--until", "2026-11-01")
    drafts = cli.ok("invoices", "list", "--status", "draft", "--json").json()
    assert len(drafts) == 11, drafts
    return drafts


def test_golive_check_groups_findings_by_cause(cli: Cli) -> None:
    _drafts(cli)
    human = cli("golive", "check")
    assert human.code == 1, str(human)  # drafts past their grace period block go-live
    rows = [line for line in human.out.splitlines() if "draft_past_grace_period" in line]
    assert len(rows) == 1, f"one row per cause, not one per draft\n{human}"
    assert "11" in rows[0] and "DRAFT-1, DRAFT-2, DRAFT-3 and 8 more" in rows[0], str(human)
    assert "DRAFT-10" not in human.out, f"only the first few examples are shown\n{human}"

    document = cli("golive", "check", "--json").json()
    drafts = [f["subject"] for f in document["findings"] if f["kind"] == "draft_past_grace_period"]
    assert drafts == [f"DRAFT-{n}" for n in range(1, 12)], "every finding, in natural order"
    assert document["blockers"] == 11 and document["ready"] is False
    (group,) = [g for g in document["groups"] if g["kind"] == "draft_past_grace_period"]
    assert (group["severity"], group["count"], group["examples"]) == ("blocker", 11, ["DRAFT-1", "DRAFT-2", "DRAFT-3"])


def test_finalize_dry_run_previews_and_writes_nothing(cli: Cli) -> None:
    drafts = _drafts(cli)
    held = drafts[1]["number"]
    cli.ok("invoices", "hold", held)

    preview = cli.ok("invoices", "finalize", "--due", "--dry-run")
    assert "nothing was changed" in preview.out, str(preview)
    assert "RC-000001" in preview.out and "acme" in preview.out and drafts[0]["total"] in preview.out, str(preview)
    assert "10 would be finalized; 1 on hold" in preview.out, str(preview)
    assert cli.ok("invoices", "list", "--status", "final", "--json").json() == [], "a dry run writes nothing"

    planned = cli.ok("invoices", "finalize", "--due", "--dry-run", "--json").json()
    assert planned["dry_run"] is True and planned["finalized"] == [] and planned["on_hold"] == 1
    would = [(i["draft"], i["number"]) for i in planned["would_finalize"]]
    assert held not in [draft for draft, _ in would], "a held draft is never finalized"
    assert [number for _, number in would] == [f"RC-{n:06d}" for n in range(1, 11)]

    by_number = cli.ok("invoices", "finalize", drafts[0]["number"], drafts[2]["number"], "--dry-run", "--json").json()
    assert [(i["draft"], i["number"]) for i in by_number["would_finalize"]] == [
        (drafts[0]["number"], "RC-000001"), (drafts[2]["number"], "RC-000002")]
    assert cli.ok("invoices", "list", "--status", "final", "--json").json() == []

    # a held draft named explicitly is refused, and nothing else is finalized with it
    assert_user_error(cli("invoices", "finalize", drafts[0]["number"], held), 2, held, "on hold")
    assert cli.ok("invoices", "list", "--status", "final", "--json").json() == []

    # the real run does what the preview said, and says so
    done = cli.ok("invoices", "finalize", "--due")
    assert "10 finalized; 1 on hold" in done.out, str(done)
    finals = cli.ok("invoices", "list", "--status", "final", "--json").json()
    assert sorted(i["number"] for i in finals) == sorted(number for _, number in would)
    assert cli.ok("invoices", "show", held, "--json").json()["status"] == "draft"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_says_where_it_listens_and_which_database(tmp_path: Path) -> None:
    port = _free_port()
    db = f"sqlite:///{tmp_path / 'served.db'}"
    env = {k: v for k, v in os.environ.items() if k not in ("RATECARD_DATABASE_URL", "COLUMNS")}
    env["RATECARD_NOW"] = NOW
    server = subprocess.Popen([str(RATECARD), "serve", "--port", str(port), "--db", db], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        lines = [server.stderr.readline() for _ in range(3)]  # the API, the console, the database
    finally:
        server.terminate()
        server.wait(timeout=30)
    said = "".join(lines)
    assert f"http://127.0.0.1:{port}" in said, said
    assert db in said, said


def test_database_urls_are_printed_without_their_password() -> None:
    from ratecard.cli.common import masked_url

    assert masked_url("postgresql://billing:s3cret@db.internal:5432/ratecard") == (
        "postgresql://billing:***@db.internal:5432/ratecard")
    assert masked_url("postgresql://billing@db.internal/ratecard") == "postgresql://billing@db.internal/ratecard"
    assert masked_url("sqlite:////var/lib/ratecard.db") == "sqlite:////var/lib/ratecard.db"


def test_demo_prints_tables_and_sentences_and_the_next_commands(tmp_path: Path) -> None:
    workspace = tmp_path / "examples"
    workspace.mkdir()
    shutil.copy(EXAMPLES / "catalog.yaml", workspace / "catalog.yaml")
    subprocess.run([sys.executable, str(EXAMPLES / "generate_events.py"), "--catalog", str(workspace / "catalog.yaml"),
                    "--out", str(workspace / "events.jsonl"), "--month", "2026-10", "--with-problems"], check=True,
                   capture_output=True)
    cli = Cli(tmp_path, "demo.db")
    # an activated environment: `ratecard` on PATH is this one, so the suggestions name it plainly
    # (without it they name its path: test_demo_hints.py)
    cli.env["PATH"] = f"{RATECARD.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    shown = cli.ok("demo", "--examples", workspace, timeout=300)
    assert not re.search(r"[{}]", shown.out), f"no raw Python dicts\n{shown}"
    assert "rejected: " in shown.out and "Draft invoices by currency" in shown.out, str(shown)
    tail = shown.out.strip().splitlines()[-4:]
    assert all(line.strip().startswith("ratecard ") and f"--db {cli.db}" in line for line in tail), str(shown)
    listed = cli.ok(*tail[0].split()[1:-2])  # the first suggestion works as printed
    assert "DRAFT-1" in listed.out
    # then how to open the console on this data, with a login that works
    opening = shown.out[shown.out.index("Open the console on this data:"):].splitlines()
    assert opening[1].strip() == f"ratecard serve --db {cli.db}", str(shown)
    assert "sign in as demo@example.com (admin)" in opening[2], str(shown)
    password = opening[3].strip().removeprefix("password: ")
    assert "fine only because this demo database stays on this machine" in opening[4], str(shown)
    from ratecard.services import users
    from ratecard.store import open_store

    store = open_store(cli.db, migrate=False)
    try:
        assert users.login(store, "demo@example.com", password, datetime.now(UTC)).role == "admin"
    finally:
        store.dispose()
    again = cli.ok("demo", "--examples", workspace, timeout=300)  # run twice: the user is left as it is
    assert "that user existed already: its password was left as it was" in again.out, str(again)


def test_export_help_speaks_ratecards_own_terms(cli: Cli) -> None:
    shown = cli.ok("invoices", "export", "--help", db=False)
    text = " ".join(shown.out.split())  # the help is wrapped at the terminal's width
    assert "contract" not in text.lower(), str(shown)
    assert "invoices show --json" in text and "CSV" in text, str(shown)


def _group_paths() -> list[list[str]]:
    """Every command group, as typed: [] for `ratecard` itself, ["events"], ["events", "partitions"]…"""
    import typer

    from ratecard.cli import app

    paths: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        commands = getattr(command, "commands", None)  # a group (Typer's own click)
        if isinstance(commands, dict):
            paths.append(path)
            for name, sub in commands.items():
                walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_each_command_of_a_group_help_is_summed_up_in_one_paragraph(cli: Cli) -> None:
    """A group's help lists its commands with the first paragraph of each one's help: on a terminal
    wide enough for the longest, every summary is one row, never broken where its docstring's
    source line happened to end (`ratecard --help` once showed "…issued since" / "promotion with…")."""
    cli.env["COLUMNS"] = "400"
    broken = []
    for path in _group_paths():
        shown = cli.ok(*path, "--help", db=False)
        panel = shown.out.split("Commands")[-1]
        rows = [line for line in panel.splitlines() if line.startswith("│")]
        assert rows, str(shown)
        broken += [f"{' '.join(['ratecard', *path])}: {line.strip('│ ')}" for line in rows if line.startswith("│  ")]
    assert len(_group_paths()) > 10 and not broken, "summaries broken over several rows:\n" + "\n".join(broken)
    top = cli.ok("--help", db=False)
    assert "list the final invoices issued since promotion with the corrections they need" in top.out, str(top)
