"""The README's tour runs exactly as written, in order, after `make demo`.

What runs: every ```sh block of README.md after the install section (the `## Install …` heading
and its text), in order, in ONE bash process (so `export`, `$KEY` and `kill %1` carry from one
command to the next), in a fresh folder holding a copy of the project's tracked files
(`git ls-files`), with this virtual environment's bin first on PATH.

Before it, the demo runs there: the recipe lines of the Makefile's `demo` target, read from the
Makefile itself (make's variables BIN, DEMO_DB and CURDIR expanded, `$$` unescaped, `@#` comment
lines dropped) so the test cannot drift from `make demo`; going through make would install again.

How a command's exit code is declared: a command must exit 0, unless its trailing comment starts
with `exit N` (`ratecard catalog check bad.yaml   # exit 1: three problems`); then it must exit N.
A command is one logical line: a line ending in a backslash continues on the next one; blank
lines and comment-only lines are not commands.

Skipping a block (none is skipped today; keep it that way when you can): put
`<!-- readme-test: skip REASON -->` on the line right before its opening fence. The test prints
every skipped block with its reason.

A failure names the command, the exit code expected and got, and the command's stderr.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EXPECTED_EXIT = re.compile(r"\s#\s*exit\s+(\d+)\b")
SKIP_MARKER = re.compile(r"<!--\s*readme-test:\s*skip\s+(.+?)\s*-->")
TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class Command:
    text: str
    expected: int
    line: int  # in README.md, for the failure message


def _fenced_blocks(readme: str) -> list[tuple[int, str, str | None]]:
    """(first line number, body, skip reason) of every ```sh block after the install section."""
    lines = readme.splitlines()
    install = next(i for i, line in enumerate(lines) if line.startswith("## Install"))
    after_install = next(i for i in range(install + 1, len(lines)) if lines[i].startswith("## "))
    blocks = []
    index = after_install
    while index < len(lines):
        if lines[index].strip() == "```sh":
            previous = lines[index - 1] if index else ""
            skip = SKIP_MARKER.search(previous)
            end = next(j for j in range(index + 1, len(lines)) if lines[j].strip() == "```")
            blocks.append((index + 2, "\n".join(lines[index + 1:end]), skip.group(1) if skip else None))
            index = end
        index += 1
    return blocks


def _commands(first_line: int, body: str) -> list[Command]:
    commands: list[Command] = []
    pending: list[str] = []
    start = first_line
    for number, line in enumerate(body.splitlines(), start=first_line):
        if not pending:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = number
        if line.endswith("\\"):
            pending.append(line)
            continue
        text = "\n".join([*pending, line])
        pending = []
        expected = EXPECTED_EXIT.search(text)
        commands.append(Command(text, int(expected.group(1)) if expected else 0, start))
    assert not pending, f"README.md line {start}: a command ends with a backslash and nothing follows"
    return commands


def readme_commands() -> tuple[list[Command], list[str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands: list[Command] = []
    skipped: list[str] = []
    for first_line, body, skip in _fenced_blocks(readme):
        if skip:
            skipped.append(f"README.md line {first_line}: {skip}")
        else:
            commands += _commands(first_line, body)
    return commands, skipped


def demo_recipe(folder: Path) -> list[str]:
    """The Makefile's `demo` recipe, one shell command per line, make's variables expanded."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    demo_db = re.search(r"^DEMO_DB \?= (.+)$", makefile, re.MULTILINE)
    assert demo_db, "the Makefile no longer sets DEMO_DB: the README's tour relies on demo.db"
    demo_now = re.search(r"^DEMO_NOW \?= (.+)$", makefile, re.MULTILINE)
    assert demo_now, "the Makefile no longer sets DEMO_NOW: the demo's clock must not run ahead of the tour's"
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe, "the Makefile has no demo target"
    joined = recipe.group(1).replace("\\\n", " ")
    variables = {"BIN": str(BIN), "CURDIR": str(folder), "DEMO_DB": demo_db.group(1), "DEMO_NOW": demo_now.group(1)}
    commands = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("@#"):
            continue
        line = line.removeprefix("@")  # make's "do not echo the command": the shell runs the same
        for _ in range(2):  # DEMO_DB holds $(CURDIR)
            line = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), m.group(0)), line)
        unknown = re.findall(r"(?<!\$)\$\((\w+)\)", line)
        assert not unknown, f"the demo recipe uses make variables this test does not know: {unknown}"
        commands.append(line.replace("$$", "$"))
    expanded_db = variables["DEMO_DB"].replace("$(CURDIR)", str(folder))
    assert expanded_db == f"sqlite:///{folder}/demo.db", (
        f"make demo writes {expanded_db}; the README's tour reads sqlite:///demo.db in the project folder")
    return commands


def copy_tracked_files(destination: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    for name in listed.stdout.decode().split("\0"):
        source = ROOT / name
        if name and source.is_file():  # a tracked file deleted in the working tree is gone for a clone too
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def clean_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RATECARD_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(BIN.parent)
    env.pop("COLUMNS", None)
    return env


def print_durations(commands: list[Command], logs: Path) -> None:
    """Seconds per command (shown with -s, or on failure): the tour must stay quick to run."""
    previous = float((logs / "start").read_text())
    for index, command in enumerate(commands):
        code_file = logs / f"{index}.rc"
        if not code_file.exists():
            break
        finished = float(code_file.read_text().split()[1])
        print(f"{finished - previous:6.2f} s  {command.text.splitlines()[0][:100]}")
        previous = finished


def test_demo_recipe_runs_with_this_environment(tmp_path: Path) -> None:
    """Cheap guard: the demo recipe still parses, and runs nothing but this venv's python and ratecard."""
    commands = demo_recipe(tmp_path)
    assert commands, "the demo recipe is empty"
    # the program is the first word that is not a variable assignment (RATECARD_NOW=… ratecard demo)
    programs = {next(word for word in shlex.split(command) if not re.match(r"\w+=", word)) for command in commands}
    assert programs <= {"rm", "echo", str(BIN / "python"), str(BIN / "ratecard")}, programs


def test_demo_recipe_ends_with_how_to_open_the_console_as_the_demo_user(tmp_path: Path) -> None:
    from ratecard.services.demo import DEMO_EMAIL, DEMO_PASSWORD

    commands = demo_recipe(tmp_path)
    closing = commands[max(i for i, command in enumerate(commands) if not command.startswith("echo")) + 1:]
    shown = subprocess.run(["bash", "-c", "\n".join(closing)], capture_output=True, text=True, check=True).stdout
    db = f"sqlite:///{tmp_path}/demo.db"
    assert shown.strip().splitlines() == [
        "Open the console on the demo data:",
        f"  {BIN}/ratecard serve --db {db}",
        f"  then http://127.0.0.1:8000/console/ and sign in as {DEMO_EMAIL}, password {DEMO_PASSWORD}",
        "  (a fixed demo password, fine only because demo.db stays on this machine; set your own with",
        f"  {BIN}/ratecard users reset {DEMO_EMAIL} --db {db})",
    ], shown


@pytest.mark.slow
def test_readme_tour_runs_as_written(tmp_path: Path) -> None:
    commands, skipped = readme_commands()
    assert commands, "no ```sh block after the install section of README.md"
    for reason in skipped:
        print(f"skipped block: {reason}")
    folder = tmp_path / "ratecard"
    copy_tracked_files(folder)
    env = clean_environment()

    for step in demo_recipe(folder):
        result = subprocess.run(["bash", "-c", step], cwd=folder, env=env, capture_output=True, text=True,
                                timeout=TIMEOUT_SECONDS)
        assert result.returncode == 0, f"the demo step failed (exit {result.returncode}): {step}\n{result.stderr}"

    logs = tmp_path / "logs"
    logs.mkdir()
    script = ["set +e", f'echo "$EPOCHREALTIME" > "{logs}/start"']
    for index, command in enumerate(commands):
        script += [f'exec 1>"{logs}/{index}.out" 2>"{logs}/{index}.err"', command.text,
                   f'echo "$? $EPOCHREALTIME" > "{logs}/{index}.rc"']
    process = subprocess.Popen(["bash", "-c", "\n".join(script)], cwd=folder, env=env, start_new_session=True,
                               stdin=subprocess.DEVNULL)
    try:
        process.wait(timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    finally:
        # the tour stops its own server; this only reaps what a failing tour left behind
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()

    print_durations(commands, logs)
    for index, command in enumerate(commands):
        code_file = logs / f"{index}.rc"
        stderr = (logs / f"{index}.err").read_text(errors="replace") if (logs / f"{index}.err").exists() else ""
        where = f"README.md line {command.line}:\n    {command.text}\n"
        assert code_file.exists(), f"{where}did not finish within {TIMEOUT_SECONDS} s\n--- stderr ---\n{stderr[-3000:]}"
        code = int(code_file.read_text().split()[0])
        if code != command.expected:
            stdout = (logs / f"{index}.out").read_text(errors="replace")
            pytest.fail(f"{where}exited {code}, the README says {command.expected}\n--- stderr ---\n{stderr[-3000:]}"
                        f"\n--- stdout (end) ---\n{stdout[-1500:]}")

    # every event the tour bills arrived before its invoice was computed: none is late (make demo's
    # clock must not run ahead of the tour's pinned "now", or finalizing flags billed events late)
    late = subprocess.run([str(BIN / "ratecard"), "events", "list", "--late", "--limit", "0", "--json"], cwd=folder,
                          env=env | {"RATECARD_DATABASE_URL": "sqlite:///demo.db"}, capture_output=True, text=True,
                          timeout=TIMEOUT_SECONDS)
    assert late.returncode == 0, late.stderr
    assert [event["id"] for event in json.loads(late.stdout)] == [], "events the tour billed are listed as late"
