"""`ratecard backfill create` asked twice, as a script or the README's tour run a second time asks
it: the same request while its backfill is pending gives that backfill back (exit 0, said so),
anything else that overlaps is still refused in one sentence, and `BF=$(... --id-only)` never
leaves a half-read document or a traceback behind. On SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..e2e.harness import RATECARD, Cli, command_environment
from .scenario import workspace
from .test_backfills import CATALOG

WINDOW = ("--from", "2026-10-01", "--to", "2026-11-01")


def test_the_same_create_twice_gives_the_pending_backfill_back(db_url: str, tmp_path: Path) -> None:
    workspace(db_url, CATALOG)
    cli = Cli(tmp_path)

    first = cli.ok("backfill", "create", *WINDOW, "--customer", "acme", "--json", db=db_url).json()
    assert first["created"] is True and first["status"] == "pending"
    again = cli.ok("backfill", "create", *WINDOW, "--customer", "acme", db=db_url)
    assert f"backfill {first['id']} is already pending for this window" in again.out
    assert "nothing new was created" in again.out and again.err == ""
    as_json = cli.ok("backfill", "create", *WINDOW, "--customer", "acme", "--json", db=db_url).json()
    assert (as_json["id"], as_json["created"], as_json["status"]) == (first["id"], False, "pending")
    assert [b["id"] for b in cli.ok("backfill", "list", "--json", db=db_url).json()] == [first["id"]]

    # not the same request: a refusal naming the pending one, as before
    for other in (("--customer", "acme", "--replace"), ()):  # replacing, or every customer's
        refused = cli("backfill", "create", *WINDOW, *other, db=db_url)
        assert refused.code == 2 and f"overlaps pending backfill {first['id']}" in refused.err
        assert len(refused.err.strip().splitlines()) == 1 and "Traceback" not in refused.err

    # once closed, the same request is a new backfill (another batch for a window already backfilled)
    cli.ok("backfill", "close", first["id"], db=db_url)
    later = cli.ok("backfill", "create", *WINDOW, "--customer", "acme", "--json", db=db_url).json()
    assert later["created"] is True and later["id"] != first["id"]


def _shell(script: str, cli: Cli) -> subprocess.CompletedProcess[str]:
    env = command_environment(cli.now) | {"PATH": f"{RATECARD.parent}:/usr/bin:/bin"}
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, cwd=cli.folder,
                          timeout=120)


def test_the_id_only_one_liner_run_twice_and_refused(db_url: str, tmp_path: Path) -> None:
    workspace(db_url, CATALOG)
    cli = Cli(tmp_path)
    line = f"ratecard backfill create --from 2026-10-01 --to 2026-11-01 --customer acme --id-only --db '{db_url}'"
    twice = _shell(f'A=$({line}) && B=$({line}) && echo "$A $B"', cli)
    assert twice.returncode == 0 and twice.stderr == "", twice
    first, second = twice.stdout.split()
    assert first == second and first.startswith("bf_")

    # an overlapping, different request: an empty id and the refusal on stderr, no traceback
    refused = _shell(f"BF=$(ratecard backfill create --from 2026-10-15 --to 2026-11-15 --id-only --db '{db_url}'); "
                     'code=$?; echo "[$BF] $code"', cli)
    assert refused.stdout == "[] 2\n", refused
    assert f"overlaps pending backfill {first}" in refused.stderr and "Traceback" not in refused.stderr
