"""Alert webhooks against a real HTTP server on localhost, on SQLite and PostgreSQL: signed with
the endpoint's secret, at least once, retried with backoff, in order per endpoint, given up after
a set number of attempts — all visible in the delivery log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from ratecard.golive.alerts import create_rule, evaluate
from ratecard.golive.webhooks import SIGNATURE_HEADER, create_endpoint, deliver_pending, sign, verify
from ratecard.ingest.importer import import_file
from ratecard.store import Store
from ratecard.store.monitoring import list_deliveries

from ..http_thread import serving_thread
from .scenario import current, workspace, write_jsonl

T0 = datetime.fromisoformat("2026-11-20T12:00:00+00:00")
SECRET = "test-secret-0123456789"


class Receiver:
    """Records every request; answers each path with its scripted status codes, then 200."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.script: dict[str, list[int]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                codes = receiver.script.get(self.path, [])
                status = codes.pop(0) if codes else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = serving_thread(self.server)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def on(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _two_alerts(store: Store, tmp_path: Path) -> None:
    """Open two silence alerts (acme/api_calls, then acme/tokens) at T0 + 7h."""
    _, catalog = current(store)
    events = [{"id": "c1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-11-20T11:00:00Z"},
              {"id": "t1", "customer": "acme", "meter": "tokens", "timestamp": "2026-11-20T11:00:00Z",
               "properties": {"tokens": 5}}]
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", events), T0)
    create_rule(store, "live", T0, kind="silence", hours="6")
    opened = evaluate(store, "live", T0 + timedelta(hours=7)).opened
    assert [a["meter"] for a in opened] == ["api_calls", "tokens"]


def _log(store: Store, endpoint: int) -> list:
    return list(reversed(list_deliveries(store, "live", endpoint, limit=None)))


def test_deliveries_are_signed_with_the_endpoints_secret(db_url: str, tmp_path: Path, receiver: Receiver) -> None:
    store, _ = workspace(db_url)
    endpoint, secret = create_endpoint(store, "live", receiver.url("/hook"), SECRET, T0, allow_private=True)
    assert secret == SECRET
    _two_alerts(store, tmp_path)
    sent_at = T0 + timedelta(hours=7, seconds=5)
    run = deliver_pending(store, "live", sent_at)
    assert run.delivered == 2 and run.attempted == 2

    first = receiver.on("/hook")[0]
    header = first["headers"][SIGNATURE_HEADER]
    timestamp = int(sent_at.timestamp())
    assert header.startswith(f"t={timestamp},v1=")
    assert verify(SECRET, header, first["body"], now_seconds=timestamp)
    assert header == sign(SECRET, timestamp, first["body"])
    assert not verify("another-secret-012345", header, first["body"], now_seconds=timestamp)
    assert not verify(SECRET, header, first["body"] + b" ", now_seconds=timestamp)  # the raw body is signed
    assert not verify(SECRET, header, first["body"], now_seconds=timestamp + 3600)  # too old: a replay
    document = orjson.loads(first["body"])
    assert document["type"] == "alert.opened" and first["headers"]["Ratecard-Event"] == "alert.opened"
    assert document["data"]["customer"] == "acme" and document["data"]["meter"] == "api_calls"
    assert first["headers"]["Content-Type"] == "application/json"

    # a generated secret when none is given, and it signs that endpoint's deliveries
    other, generated = create_endpoint(store, "live", receiver.url("/other"), None, T0, allow_private=True)
    assert generated.startswith("whsec_") and len(generated) > 30 and other != endpoint
    assert [d.status for d in _log(store, endpoint)] == ["delivered", "delivered"]
    store.dispose()


def test_a_500_then_a_200_is_two_attempts_and_one_delivery(db_url: str, tmp_path: Path, receiver: Receiver) -> None:
    store, _ = workspace(db_url)
    endpoint, _ = create_endpoint(store, "live", receiver.url("/flaky"), SECRET, T0, allow_private=True)
    create_rule(store, "live", T0, kind="silence", hours="6", meter="api_calls")
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", [
        {"id": "c1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-11-20T11:00:00Z"}]), T0)
    assert len(evaluate(store, "live", T0 + timedelta(hours=7)).opened) == 1
    receiver.script["/flaky"] = [500]

    now = T0 + timedelta(hours=7)
    first = deliver_pending(store, "live", now)
    assert (first.attempted, first.delivered, first.retrying) == (1, 0, 1)
    [delivery] = _log(store, endpoint)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.last_error == "HTTP 500"
    assert delivery.next_attempt_at == int((now + timedelta(seconds=30)).timestamp()) * 1_000_000

    # not due yet: nothing is sent
    assert deliver_pending(store, "live", now + timedelta(seconds=10)).attempted == 0
    second = deliver_pending(store, "live", now + timedelta(seconds=30))
    assert (second.attempted, second.delivered) == (1, 1)
    [delivery] = _log(store, endpoint)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 2, 200)
    assert delivery.next_attempt_at is None

    requests = receiver.on("/flaky")
    assert len(requests) == 2
    assert requests[0]["body"] == requests[1]["body"]  # the same event, at least once
    assert requests[0]["headers"]["Ratecard-Delivery"] == requests[1]["headers"]["Ratecard-Delivery"]
    # delivered means done: later runs send nothing more
    assert deliver_pending(store, "live", now + timedelta(hours=1)).attempted == 0
    store.dispose()


def test_order_per_endpoint_holds_while_the_first_delivery_is_retried(
        db_url: str, tmp_path: Path, receiver: Receiver) -> None:
    store, _ = workspace(db_url)
    slow, _ = create_endpoint(store, "live", receiver.url("/slow"), SECRET, T0, allow_private=True)
    fine, _ = create_endpoint(store, "live", receiver.url("/fine"), SECRET, T0, allow_private=True)
    _two_alerts(store, tmp_path)
    receiver.script["/slow"] = [503]
    now = T0 + timedelta(hours=7)

    deliver_pending(store, "live", now)
    # /slow got only the first event (it failed); the second waits behind it
    assert [orjson.loads(r["body"])["data"]["meter"] for r in receiver.on("/slow")] == ["api_calls"]
    assert [d.status for d in _log(store, slow)] == ["pending", "pending"]
    assert [d.attempts for d in _log(store, slow)] == [1, 0]
    # another endpoint is not held up
    assert [orjson.loads(r["body"])["data"]["meter"] for r in receiver.on("/fine")] == ["api_calls", "tokens"]
    assert [d.status for d in _log(store, fine)] == ["delivered", "delivered"]

    deliver_pending(store, "live", now + timedelta(seconds=31))
    assert [orjson.loads(r["body"])["data"]["meter"] for r in receiver.on("/slow")] == [
        "api_calls", "api_calls", "tokens"]
    assert [(d.status, d.attempts) for d in _log(store, slow)] == [("delivered", 2), ("delivered", 1)]
    store.dispose()


def test_a_delivery_gives_up_after_the_set_number_of_attempts(db_url: str, tmp_path: Path,
                                                              receiver: Receiver) -> None:
    store, _ = workspace(db_url)
    broken, _ = create_endpoint(store, "live", receiver.url("/broken"), SECRET, T0, allow_private=True)
    _two_alerts(store, tmp_path)
    receiver.script["/broken"] = [500, 500, 500]  # the first delivery's three attempts
    now = T0 + timedelta(hours=7)
    waits = []
    for _ in range(3):
        run = deliver_pending(store, "live", now, max_attempts=3)
        first = _log(store, broken)[0]
        if first.status == "pending":
            waits.append((first.next_attempt_at - int(now.timestamp()) * 1_000_000) // 1_000_000)
            now = now + timedelta(seconds=waits[-1])
    assert waits == [30, 60]  # exponential backoff between attempts
    first, second = _log(store, broken)
    assert (first.status, first.attempts, first.last_status_code, first.last_error) == ("failed", 3, 500, "HTTP 500")
    assert first.next_attempt_at is None
    # once the first gives up, the next one goes (in the same run)
    assert run.failed == 1 and run.delivered == 1
    assert (second.status, second.attempts) == ("delivered", 1)
    assert len(receiver.on("/broken")) == 4

    # an endpoint that does not answer at all: the error is logged, the delivery retried
    down, _ = create_endpoint(store, "live", "http://127.0.0.1:9/nothing-listens", SECRET, T0, allow_private=True)
    create_rule(store, "live", T0, kind="silence", hours="12")
    assert len(evaluate(store, "live", T0 + timedelta(hours=13)).opened) == 2
    deliver_pending(store, "live", T0 + timedelta(hours=13))
    log = _log(store, down)
    assert log[0].status == "pending" and log[0].attempts == 1 and log[0].last_status_code is None
    assert "Connect" in (log[0].last_error or "")
    store.dispose()
