"""`ratecard serve` runs on uvicorn's C HTTP parser and event loop (httptools, uvloop: runtime
dependencies), says so when it starts, and answers single events over real HTTP on both stores."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from ratecard.cli.serve import http_stack

from ..integration.scenario import CATALOG
from .live_server import Server, create_key


@pytest.mark.slow
def test_serve_names_its_http_stack_and_answers_single_events(db_url: str, tmp_path: Path) -> None:
    assert http_stack() == ("httptools", "uvloop")  # both are in uv.lock's runtime set
    key = create_key(db_url)
    headers = {"X-API-KEY": key, "content-type": "application/json"}
    with Server(db_url, tmp_path / "serve.log", workers=2) as server, \
            httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        assert "HTTP: httptools parser, uvloop event loop" in server.log()
        # two workers on SQLite: the server says one would do as well (PostgreSQL: nothing to say)
        assert ("SQLite writes one transaction at a time" in server.log()) == db_url.startswith("sqlite")
        applied = client.post("/v1/catalog", content=CATALOG.encode(), headers={"content-type": "application/yaml"})
        assert applied.status_code == 201, applied.text
        for number in range(20):  # one keep-alive connection, both workers
            event = {"reference": f"over-http-{number:03d}", "customer_reference": "acme",
                     "meter_reference": "tokens", "timestamp": "2026-01-20T10:00:00Z",
                     "meter_values": [{"reference": "tokens", "number": "1.5"}]}
            answer = client.post("/v1/ingest/meter-data", content=orjson.dumps(event))
            assert answer.status_code == 201, answer.text
            assert answer.json()["processed_details"]["type"] == "DEFAULT" and answer.headers["x-request-id"]
        refused = client.post("/v1/ingest/meter-data", content=b'{"reference": "short"}')
        assert refused.status_code == 400 and refused.json()["field"] == "reference"
        again = client.post("/v1/events", content=orjson.dumps([{"id": "over-http-000", "customer": "acme",
                                                                 "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z",
                                                                 "properties": {"tokens": "1.5"}}]))
        assert again.status_code == 200 and again.json()["duplicates"] == 1


def test_an_address_in_use_is_refused_as_bad_usage(db_url: str) -> None:
    """`ratecard serve` on a port another program listens on: exit 2 and the reason, before it
    announces an address it cannot serve (one worker and several alike)."""
    import os
    import socket
    import subprocess
    import sys

    from ..migrated import at_head

    url = at_head(db_url)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    ratecard = str(Path(sys.executable).with_name("ratecard"))
    env = {k: v for k, v in os.environ.items() if k != "RATECARD_DATABASE_URL"}
    try:
        for workers in ("1", "2"):
            done = subprocess.run([ratecard, "serve", "--db", url, "--host", "127.0.0.1", "--port", str(port),
                                   "--workers", workers], capture_output=True, text=True, timeout=60, env=env)
            assert done.returncode == 2, (workers, done.returncode, done.stderr)
            assert f"--port {port}: cannot listen there" in done.stderr
            assert "ratecard API on" not in done.stderr
    finally:
        taken.close()
