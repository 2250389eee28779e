"""The harness runs commands in process (tests/e2e/harness.py); this pins that doing so shows
exactly what the installed `ratecard` script shows: the same exit code, stdout and stderr, for
help, a usage error, bad input, problems found, a table and a JSON document."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import CATALOG, Cli, event, jsonl

COMMANDS: list[tuple[str, ...]] = [
    ("--help",),
    ("invoices", "export", "--help"),
    ("invoices", "list", "--status", "nope"),  # a usage error: exit 2, with the program's name
    ("catalog", "check", "broken.yaml"),  # problems found: exit 1, a table
    ("events", "import", "missing.jsonl"),  # bad input: one line, exit 2
    ("catalog", "apply", "catalog.yaml", "--json"),
    ("events", "import", "events.jsonl"),  # one line rejected: exit 1
    ("invoices", "generate", "--until", "2026-03-01"),
    ("invoices", "list"),
]


def _run_all(folder: Path, *, subprocess: bool) -> list[tuple[int, str, str]]:
    folder.mkdir()
    cli = Cli(folder, subprocess=subprocess)
    cli.write("catalog.yaml", CATALOG)
    cli.write("broken.yaml", CATALOG.replace('unit_amount: "0.10"', 'unit_amount: "ten cents"'))
    cli.write("events.jsonl", jsonl(event("e-1", "tokens", "2026-01-20T10:00:00Z", tokens=1500)) + "{not json\n")
    results = []
    for args in COMMANDS:
        result = cli(*args, db=not args[-1] == "--help")
        results.append((result.code, result.out.replace(str(folder), "<folder>"),
                        result.err.replace(str(folder), "<folder>")))
    return results


@pytest.mark.slow
def test_in_process_commands_show_what_the_installed_script_shows(tmp_path: Path) -> None:
    # folders of one length: a path in a table must not change its width
    real = _run_all(tmp_path / "real", subprocess=True)
    here = _run_all(tmp_path / "here", subprocess=False)
    for args, (real_code, real_out, real_err), (code, out, err) in zip(COMMANDS, real, here, strict=True):
        shown = f"ratecard {' '.join(args)}"
        assert code == real_code, f"{shown}: exit {code} in process, {real_code} from the script"
        assert out == real_out, f"{shown}: stdout differs\n--- script ---\n{real_out}\n--- in process ---\n{out}"
        assert err == real_err, f"{shown}: stderr differs\n--- script ---\n{real_err}\n--- in process ---\n{err}"
    assert {code for code, _, _ in real} == {0, 1, 2}, "the commands cover every exit code"
