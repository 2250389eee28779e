"""Real `ratecard serve` processes on 127.0.0.1 for the reliability and fuzz tests.

Each server runs in a session of its own (so a multi-worker server and its workers can be
stopped together), writes its output to a log file that failures quote, and is always stopped:
SIGTERM, then SIGKILL after a grace period. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from ..conftest import POSTGRES_URL

RATECARD = str(Path(sys.executable).with_name("ratecard"))
START_TIMEOUT = 45.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One `ratecard serve` process (and its workers)."""

    def __init__(self, db_url: str, log: Path, workers: int = 1, env: dict[str, str] | None = None,
                 args: list[str] | None = None) -> None:
        self.db_url = db_url
        self.args = list(args or [])  # more `ratecard serve` options (--log …)
        self.log_path = log
        self.workers = workers
        self.env = {**os.environ, **(env or {})}
        self.env.pop("RATECARD_DATABASE_URL", None)
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-tail:]
        except OSError:
            return ""

    def start(self) -> Server:
        last_error = ""
        for _attempt in range(3):  # a free port can be taken between the probe and the bind
            self.port = free_port()
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [RATECARD, "serve", "--db", self.db_url, "--host", "127.0.0.1", "--port", str(self.port),
                     "--workers", str(self.workers), *self.args],
                    stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
                )
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    last_error = f"exited with {self.process.returncode}"
                    break
                try:
                    if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            else:
                last_error = f"not healthy after {START_TIMEOUT:.0f}s"
            self.stop()
            if "address already in use" not in self.log().lower():
                break
        raise RuntimeError(f"ratecard serve {last_error}; log:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: the server (and any worker) dies at once, mid-request."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # the session this test started
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self._reap_group()
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        self._reap_group()

    def _reap_group(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # workers left behind, if any
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def create_key(db_url: str, env: str = "live") -> str:
    """`ratecard keys create --json`, as an operator would (also migrates a fresh database)."""
    completed = subprocess.run([RATECARD, "keys", "create", "--env", env, "--db", db_url, "--json"],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)["key"]


@contextmanager
def postgres_schema(label: str = "rel") -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new schema; the schema is dropped afterwards."""
    schema = f"rc_{label}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            # a killed server's backends end when they notice the closed socket; wait for
            # their locks a bounded time rather than forever
            connection.execute(text("SET lock_timeout = '30s'"))
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
