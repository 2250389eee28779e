"""The runtime dependencies are complete: a virtual environment holding only what `make demo`
installs (the lock's runtime set, no dev extras) runs every CLI command.

A command that imports a dev-only library (say httpx for webhooks) passes every other test,
because the test environment has the dev extras; this one builds an environment without them.
It installs from uv.lock with uv from the local cache, so it needs no network once the suite's
own `make test` has installed the same versions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")

# Walks the Typer app's command tree inside the runtime-only environment and asks every command
# for its --help; prints {"commands": [...], "failures": [...]} as JSON.
WALK_COMMANDS = r"""
import json, sys
import typer
import typer.testing
from typer.testing import CliRunner
from ratecard.cli import app

root = typer.main.get_command(app)
typer.testing._get_command = lambda _app: root  # built once, as a process does (not ~100 times, ~70 ms each)
paths = []
def walk(command, path):
    # typer ships its own click in some versions: a group is whatever has sub-commands
    for name, sub in (getattr(command, "commands", None) or {}).items():
        walk(sub, path + [name])
    paths.append(path)
walk(root, [])
runner = CliRunner()
failures = []
for path in paths:
    result = runner.invoke(app, path + ["--help"])
    if result.exit_code != 0 or result.exception is not None:
        failures.append({"command": " ".join(path), "exit": result.exit_code,
                         "error": repr(result.exception), "output": result.output[-500:]})
print(json.dumps({"commands": [" ".join(p) for p in paths], "failures": failures}))
"""


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert UV is not None, "uv is a dev dependency (pyproject.toml); run `make test`, which installs it"
    venv = tmp_path_factory.mktemp("runtime") / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    env.pop("VIRTUAL_ENV", None)
    # --no-dev and no --extra: exactly the runtime set of uv.lock, as `make demo` installs it
    done = subprocess.run([UV, "sync", "--locked", "--no-dev", "--quiet", "--python", sys.executable,
                           "--project", str(ROOT)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"uv sync of the runtime set failed:\n{done.stderr}"
    return venv


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RATECARD_")}
    env["RATECARD_NOW"] = "2026-11-26T00:00:00Z"
    return subprocess.run([str(venv / "bin" / "ratecard"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_runtime_environment_has_no_dev_tools(runtime_venv: Path) -> None:
    for dev_only in ("pytest", "hypothesis", "schemathesis"):
        probe = subprocess.run([str(runtime_venv / "bin" / "python"), "-c", f"import {dev_only}"],
                               capture_output=True, text=True)
        assert probe.returncode != 0, f"{dev_only} is in the runtime environment: the check below proves nothing"


def test_every_command_answers_help_with_runtime_dependencies_only(runtime_venv: Path) -> None:
    done = subprocess.run([str(runtime_venv / "bin" / "python"), "-c", WALK_COMMANDS], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # the tree really was walked: the verb groups users rely on are all there
    for command in ("catalog check", "events import", "invoices generate", "reconcile", "monitor run",
                    "webhooks add", "serve", "demo"):
        assert command in report["commands"], f"{command!r} not found in the CLI"
    assert report["failures"] == []


def test_webhooks_and_monitor_run_work_with_runtime_dependencies_only(runtime_venv: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runtime.db'}"
    # a receiver on a closed port: the delivery fails and is recorded, the command itself does not crash
    added = _run(runtime_venv, "webhooks", "add", "http://127.0.0.1:9/hooks/ratecard", "--allow-private", "--db", db,
                 cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert "internal error" not in added.stderr
    ran = _run(runtime_venv, "monitor", "run", "--db", db, "--json", cwd=tmp_path)
    assert ran.returncode in (0, 1), ran.stderr
    assert "internal error" not in ran.stderr and "ModuleNotFoundError" not in ran.stderr
    json.loads(ran.stdout)
