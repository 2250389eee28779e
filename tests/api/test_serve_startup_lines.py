"""What `ratecard serve` says when it starts, read from its stderr without serving: uvicorn's run is
replaced by a stand-in that records how it was called and returns at once, so no server listens
beyond the bind-and-close check `serve` makes itself. With RATECARD_OPENTELEMETRY=1 a startup line
says FastAPI's OpenTelemetry instrumentation is on (an operator who set it, or left it set, sees
it in the log); off, no line mentions it. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from ..e2e.harness import run_in_process
from ..migrated import at_head
from .live_server import free_port


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append({"app": app, **options}))
    return calls


def _serve(url: str, **settings: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RATECARD_DATABASE_URL", "RATECARD_OPENTELEMETRY")}
    return run_in_process(["serve", "--db", url, "--host", "127.0.0.1", "--port", str(free_port())],
                          {**env, "NO_COLOR": "1", **settings}, Path.cwd())


@pytest.mark.parametrize("setting", ["1", " 1 "])
def test_serve_says_opentelemetry_is_on_when_switched_on(db_url: str, runs: list[dict[str, Any]],
                                                         setting: str) -> None:
    code, _, err = _serve(at_head(db_url), RATECARD_OPENTELEMETRY=setting)
    assert code == 0, err
    assert len(runs) == 1  # the stand-in was called once: nothing was served
    lines = err.splitlines()
    assert ("OpenTelemetry: on (RATECARD_OPENTELEMETRY=1): FastAPI records traces, metrics and logs of each "
            "request through the OpenTelemetry providers this process configures") in lines
    # said with the other startup lines, after the HTTP stack
    assert [line.split(":")[0] for line in lines][-2:] == ["HTTP", "OpenTelemetry"]


@pytest.mark.parametrize("setting", [None, "", "0"])
def test_serve_says_nothing_of_opentelemetry_when_it_is_off(db_url: str, runs: list[dict[str, Any]],
                                                            setting: str | None) -> None:
    code, _, err = _serve(at_head(db_url), **({} if setting is None else {"RATECARD_OPENTELEMETRY": setting}))
    assert code == 0, err
    assert len(runs) == 1
    assert "ratecard API on http://127.0.0.1:" in err and "HTTP: " in err
    assert "OpenTelemetry" not in err
