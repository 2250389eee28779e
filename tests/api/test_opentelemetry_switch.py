"""FastAPI's own OpenTelemetry instrumentation is off unless RATECARD_OPENTELEMETRY=1: an operator
who installs a tracer provider and opts in gets a span per request; everyone else does not pay
for the framework asking the providers on every request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.parametrize(("setting", "traced"), [(None, False), ("0", False), ("1", True)])
def test_requests_are_traced_only_when_opentelemetry_is_switched_on(
        tmp_path: Path, setting: str | None, traced: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RATECARD_OPENTELEMETRY"}
    if setting is not None:
        env["RATECARD_OPENTELEMETRY"] = setting
    done = subprocess.run([sys.executable, "-c", SCRIPT, f"sqlite:///{tmp_path / 'otel.db'}"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"status": 200, "traced": traced}
