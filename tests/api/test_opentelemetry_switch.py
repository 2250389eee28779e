"""FastAPI's own OpenTelemetry instrumentation is off unless RATECARD_OPENTELEMETRY=1: an operator
who installs a tracer provider and opts in gets a span per request; everyone else does not pay
for the framework asking the providers on every request. An on/off setting takes 0 or 1 only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .live_server import RATECARD

# A process of its own: a global tracer provider can be set once per interpreter.
SCRIPT = """
import json, sys
from opentelemetry import trace
from fastapi.testclient import TestClient

spans = []

class Recording(trace.TracerProvider):
    def get_tracer(self, *args, **kwargs):
        spans.append(args[0] if args else "")
        return trace.NoOpTracer()

trace.set_tracer_provider(Recording())
from ratecard.api.app import create_app
with TestClient(create_app(sys.argv[1])) as client:
    answer = client.get("/healthz")
print(json.dumps({"status": answer.status_code, "traced": bool(spans)}))
"""


def _run(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RATECARD_OPENTELEMETRY", "RATECARD_SINGLE_EVENT_LANE")}
    return subprocess.run([sys.executable, "-c", SCRIPT, f"sqlite:///{tmp_path / 'otel.db'}"],
                          env={**env, **settings}, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("setting", "traced"), [(None, False), ("", False), ("0", False), (" 0 ", False),
                                                 ("1", True), (" 1", True), ("1\n", True)])
def test_requests_are_traced_only_when_opentelemetry_is_switched_on(
        tmp_path: Path, setting: str | None, traced: bool) -> None:
    done = _run(tmp_path, **({} if setting is None else {"RATECARD_OPENTELEMETRY": setting}))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"status": 200, "traced": traced}


@pytest.mark.parametrize(("name", "setting"), [("RATECARD_OPENTELEMETRY", "true"), ("RATECARD_OPENTELEMETRY", "yes"),
                                               ("RATECARD_OPENTELEMETRY", "on"), ("RATECARD_OPENTELEMETRY", "2"),
                                               ("RATECARD_SINGLE_EVENT_LANE", "false"),
                                               ("RATECARD_SINGLE_EVENT_LANE", "off")])
def test_a_switch_set_to_neither_0_nor_1_stops_the_server_naming_it(tmp_path: Path, name: str, setting: str) -> None:
    """`true` or `yes` is not read as on (nor `false` as off): the server does not start, and says
    which setting takes what, rather than running with the opposite of what was meant."""
    done = _run(tmp_path, **{name: setting})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == f"{name}={setting!r} must be 0 (off) or 1 (on)"


@pytest.mark.parametrize(("name", "setting", "said"), [
    ("RATECARD_OPENTELEMETRY", "true", "RATECARD_OPENTELEMETRY='true' must be 0 (off) or 1 (on)"),
    ("RATECARD_SWITCH_INTERVAL_MS", "0", "RATECARD_SWITCH_INTERVAL_MS='0' must be between 0.05 and 100"),
    # a count is whole: MAX_EVENTS=0.5 (not 0, so group commit stayed on) made a committer of int(0.5) = 0
    # events, whose writer never took a request: every POST /v1/events waited for ever
    ("RATECARD_GROUP_COMMIT_MAX_EVENTS", "0.5",
     "RATECARD_GROUP_COMMIT_MAX_EVENTS='0.5' must be a whole number between 0 and 5000"),
    ("RATECARD_GROUP_COMMIT_WRITERS", "1.5", "RATECARD_GROUP_COMMIT_WRITERS='1.5' must be a whole number between 1 and 8"),
    ("RATECARD_HEADER_TIMEOUT", "0", "RATECARD_HEADER_TIMEOUT='0' must be between 0.1 and 3600"),
    ("RATECARD_BODY_TIMEOUT", "forever", "RATECARD_BODY_TIMEOUT='forever' is not a number"),
    ("RATECARD_MAX_CONNECTIONS", "10.5", "RATECARD_MAX_CONNECTIONS='10.5' must be a whole number between 1 and 100000")])
def test_serve_refuses_a_wrong_setting_before_it_starts_its_workers(tmp_path: Path, name: str, setting: str,
                                                                    said: str) -> None:
    """With several workers each would fail at start and be started again without end: `ratecard
    serve` reads the settings itself first, exits 2 and names the wrong one."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RATECARD_GROUP_COMMIT_")}, name: setting}
    env.pop("RATECARD_DATABASE_URL", None)
    done = subprocess.run([RATECARD, "serve", "--workers", "2", "--port", "1", "--db",
                           f"sqlite:///{tmp_path / 'serve.db'}"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert said in done.stderr
    assert not (tmp_path / "serve.db").exists()  # refused before anything was made
