"""Webhook delivery against hostile receivers and hostile endpoint URLs, on SQLite and PostgreSQL.

A receiver that trickles its answer is abandoned at the per-attempt deadline; a receiver that
answers with an enormous body is not read past a small cap; two overlapping `monitor run`s never
deliver to one endpoint at once; `webhooks add` refuses private, loopback, link-local, multicast,
reserved and unspecified targets in every spelling, and so does the delivery after DNS resolution,
unless the endpoint was added with `--allow-private`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ratecard.golive.alerts import create_rule, evaluate
from ratecard.golive.webhooks import create_endpoint, deliver_pending
from ratecard.ingest.importer import import_file
from ratecard.services import monitoring
from ratecard.services.errors import InvalidInput
from ratecard.store import Store
from ratecard.store.monitoring import list_deliveries
from tests.e2e.harness import CATALOG, NOW, RATECARD, Cli, assert_user_error, event, jsonl
from tests.http_thread import serving_thread
from tests.integration.scenario import current, workspace, write_jsonl

T0 = datetime.fromisoformat("2026-11-20T12:00:00+00:00")
SECRET = "test-secret-0123456789"
HUGE = 200 * 1024 * 1024  # the body a hostile receiver offers


# ---------------------------------------------------------------- hostile receivers (raw sockets)


class RawReceiver:
    """A TCP server on 127.0.0.1 that reads one request per connection, then runs `answer(conn)`;
    it counts the bytes of answer the client really took."""

    def __init__(self, answer: Callable[[socket.socket, RawReceiver], None]) -> None:
        self.answer = answer
        self.sent = 0
        self.connections = 0
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request:  # the headers (the body is small and ignored)
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    request += chunk
                try:
                    self.answer(conn, self)
                except OSError:  # the client hung up: what a bounded client does
                    pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.listener.close()


def _trickle(conn: socket.socket, receiver: RawReceiver) -> None:
    """One byte of a valid answer every half second, for as long as the client listens."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + b"X-Slow: " + b"a" * 10_000 + b"\r\n\r\nok"
    for byte in answer:
        if receiver.stop.is_set():
            return
        conn.sendall(bytes([byte]))
        receiver.sent += 1
        receiver.stop.wait(0.5)  # the same pace; a closing receiver stops at once, not half a second later


def _huge(conn: socket.socket, receiver: RawReceiver) -> None:
    """A 200 answer announcing and sending HUGE bytes of body as fast as the client takes them."""
    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {HUGE}\r\n\r\n".encode())
    chunk = b"0" * 65536
    while receiver.sent < HUGE and not receiver.stop.is_set():
        conn.sendall(chunk)
        receiver.sent += len(chunk)


@pytest.fixture
def raw_receiver() -> Iterator[Callable[[Callable[[socket.socket, RawReceiver], None]], RawReceiver]]:
    started: list[RawReceiver] = []

    def start(answer: Callable[[socket.socket, RawReceiver], None]) -> RawReceiver:
        started.append(RawReceiver(answer))
        return started[-1]

    yield start
    for receiver in started:
        receiver.close()


def _one_alert(store: Store, tmp_path: Path) -> datetime:
    """One open silence alert (acme/api_calls); returns the moment it opened."""
    _, catalog = current(store)
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", [
        {"id": "c1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-11-20T11:00:00Z"}]), T0)
    create_rule(store, "live", T0, kind="silence", hours="6", meter="api_calls")
    moment = T0 + timedelta(hours=7)
    assert len(evaluate(store, "live", moment).opened) == 1
    return moment


def _in_thread(work: Callable[[], object], limit: float) -> tuple[object, float]:
    """Run `work`, but never wait for it longer than `limit` seconds: (its result, seconds taken)."""
    outcome: list[object] = []
    started = time.monotonic()
    thread = threading.Thread(target=lambda: outcome.append(work()), daemon=True)
    thread.start()
    thread.join(limit)
    elapsed = time.monotonic() - started
    assert outcome, f"the delivery run was still going after {limit} s"
    return outcome[0], elapsed


def test_a_trickling_receiver_is_abandoned_at_the_deadline(db_url: str, tmp_path: Path, raw_receiver) -> None:
    receiver = raw_receiver(_trickle)
    store, _ = workspace(db_url)
    endpoint, _ = create_endpoint(store, "live", receiver.url, SECRET, T0, allow_private=True)
    moment = _one_alert(store, tmp_path)

    run, elapsed = _in_thread(lambda: deliver_pending(store, "live", moment, max_attempts=1, deadline=1.5), 20)
    assert 1.4 < elapsed < 4, elapsed  # the whole attempt, however the peer trickles
    assert (run.attempted, run.delivered, run.failed) == (1, 0, 1)
    assert receiver.sent <= 8  # ~1.5 s of one byte every 0.5 s
    [delivery] = list_deliveries(store, "live", endpoint, limit=None)
    assert delivery.status == "failed" and delivery.last_status_code is None
    assert "1.5 s" in (delivery.last_error or "")
    store.dispose()


def test_a_huge_answer_is_not_read(db_url: str, tmp_path: Path, raw_receiver) -> None:
    receiver = raw_receiver(_huge)
    store, _ = workspace(db_url)
    endpoint, _ = create_endpoint(store, "live", receiver.url, SECRET, T0, allow_private=True)
    moment = _one_alert(store, tmp_path)

    run, _ = _in_thread(lambda: deliver_pending(store, "live", moment), 30)
    # the status code decides: the 200 delivers, and the body is never taken
    assert (run.attempted, run.delivered) == (1, 1)
    [delivery] = list_deliveries(store, "live", endpoint, limit=None)
    assert (delivery.status, delivery.last_status_code) == ("delivered", 200)
    receiver.close()  # wait until the receiver has given up sending
    # what the receiver managed to push: the client's 64 KiB plus the kernel's socket buffers
    assert receiver.sent < 32 * 1024 * 1024, receiver.sent
    store.dispose()


# ---------------------------------------------------------------- refused targets


REFUSED = [
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://localhost:5432/", "localhost"),
    ("http://LOCALHOST./", "localhost"),
    ("http://api.localhost/hook", "localhost"),
    ("http://127.0.0.1/", "loopback"),
    ("http://0x7f000001/", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://127.1/", "loopback"),
    ("http://0177.0.0.1/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:7f00:1]/", "loopback"),
    ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 around 127.0.0.1
    ("http://10.0.0.8/", "private"),
    ("http://172.16.3.4:8080/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://[fd00::1]/", "private"),
    ("http://[fe80::1]/", "link-local"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://240.0.0.1/", "reserved"),
    ("http://100.64.0.1/", "not a public"),  # carrier-grade NAT
    ("http://hooks.example.com:99999/", "port"),
    ("http://hooks.example.com:0/", "port"),
    ("http://hooks.example.com:http/", "port"),
    ("ftp://hooks.example.com/", "http"),
    ("hooks.example.com/hook", "http"),
    ("http:///hook", "host"),
    ("http://user:pass@hooks.example.com/", "credentials"),
    ("http://hooks.example.com/a b", "space"),
    ("http://hooks.example.com/\r\nX-Injected: 1", "line break"),
    ("http://hooks.example.com/\x00", "control"),
    ("http://hooks_example.com/", "host"),
    ("http://" + "a" * 64 + ".example.com/", "host"),
    ("https://hooks.example.com/" + "a" * 3000, "long"),
]


def test_every_refused_form_is_refused_with_its_reason(db_url: str) -> None:
    store, _ = workspace(db_url)
    wrong = []
    for url, why in REFUSED:
        try:
            monitoring.add_webhook(store, url, T0, "live", SECRET)
        except InvalidInput as exc:
            if why not in str(exc):
                wrong.append(f"{url!r}: {exc} (should say {why!r})")
        else:
            wrong.append(f"{url!r} was accepted")
    assert wrong == []
    assert monitoring.webhooks(store, "live") == []
    store.dispose()


def test_webhooks_add_refuses_what_the_report_showed(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    for url, why in (("http://169.254.169.254/latest/meta-data/", "link-local"),
                     ("http://localhost:5432/", "loopback"), ("http://0x7f000001/", "127.0.0.1, a loopback"),
                     ("http://hooks.example.com:99999/", "port")):
        assert_user_error(cli("webhooks", "add", url), 2, why)
    assert cli.ok("webhooks", "list", "--json").json() == []


def test_public_and_unresolvable_names_are_accepted(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    for url in ("https://hooks.example.com/ratecard", "http://93.184.216.34:8443/x?y=1",
                "https://[2606:2800:220:1:248:1893:25c8:1946]/", "https://receiver.invalid/"):
        cli.ok("webhooks", "add", url)
    assert len(cli.ok("webhooks", "list", "--json").json()) == 4


def test_allow_private_is_explicit_and_stored(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    added = cli.ok("webhooks", "add", "http://127.0.0.1:9/hook", "--allow-private", "--json").json()
    assert added["allow_private"] is True
    assert cli.ok("webhooks", "add", "https://hooks.example.com/", "--json").json()["allow_private"] is False
    # never a target that cannot be one, even when allowed
    assert_user_error(cli("webhooks", "add", "http://0.0.0.0/", "--allow-private"), 2, "unspecified")
    assert_user_error(cli("webhooks", "add", "http://224.0.0.1/", "--allow-private"), 2, "multicast")


def test_a_name_that_resolves_to_a_private_address_is_refused_at_delivery(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS may answer differently at delivery time than when the endpoint was added."""
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serving_thread(server).start()
    port = server.server_address[1]
    store, _ = workspace(db_url)
    try:
        # not resolvable when added (a name of the reserved .test domain): accepted, checked again later
        endpoint, _ = create_endpoint(store, "live", f"http://hooks.example.test:{port}/h", SECRET, T0)
        moment = _one_alert(store, tmp_path)
        real = socket.getaddrinfo

        def rebinding(host: str, *args: object, **kwargs: object) -> list:
            if host == "hooks.example.test":
                return real("127.0.0.1", *args, **kwargs)
            return real(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", rebinding)
        run = deliver_pending(store, "live", moment)
        assert (run.attempted, run.delivered, run.retrying) == (1, 0, 1)
        assert received == []
        [delivery] = list_deliveries(store, "live", endpoint, limit=None)
        assert "127.0.0.1" in (delivery.last_error or "") and "loopback" in (delivery.last_error or "")
        # and adding it now, while it resolves there, is refused
        from ratecard.golive.webhooks import EndpointError

        with pytest.raises(EndpointError, match="loopback"):
            create_endpoint(store, "live", "http://hooks.example.test/h", SECRET, T0)
        # with allow_private the same name delivers
        allowed, _ = create_endpoint(store, "live", f"http://hooks.example.test:{port}/h", SECRET, T0,
                                     allow_private=True)
        create_rule(store, "live", T0, kind="silence", hours="12")
        evaluate(store, "live", T0 + timedelta(hours=13))
        deliver_pending(store, "live", T0 + timedelta(hours=13))
        assert [d.status for d in list_deliveries(store, "live", allowed, limit=None)] == ["delivered"]
        assert len(received) == 1
    finally:
        server.shutdown()
        server.server_close()
        store.dispose()


# ---------------------------------------------------------------- overlapping runs


def _spawn(cli: Cli, now: str, *args: str) -> subprocess.Popen[str]:
    """`ratecard ARGS` in the background, as the harness would run it, with its own "now"."""
    env = {k: v for k, v in os.environ.items() if k not in ("RATECARD_DATABASE_URL", "RATECARD_DEBUG")}
    env |= {"RATECARD_NOW": now, "NO_COLOR": "1", "RATECARD_WEBHOOK_DEADLINE": "60"}
    return subprocess.Popen([str(RATECARD), *args, "--db", cli.db], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=cli.folder)


def test_two_overlapping_runs_never_deliver_to_one_endpoint_at_once(db_url: str, tmp_path: Path) -> None:
    """The first run is still in its attempt when a later run starts, whose "now" is past the first
    run's lease: the later run must keep off the endpoint all the same."""
    in_flight, most, requests = [0], [0], []
    lock, release = threading.Lock(), threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            requests.append(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                in_flight[0] += 1
                most[0] = max(most[0], in_flight[0])
            release.wait(50)  # a slow receiver: it answers once the second run is over (within the deadline)
            with lock:
                in_flight[0] -= 1
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serving_thread(server).start()
    cli = Cli(tmp_path)
    cli.db = db_url
    try:
        cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
        cli.ok("events", "import", cli.write("events.jsonl", jsonl(event("m-1", "calls", "2026-11-25T10:00:00Z"))))
        cli.ok("alerts", "rules", "add", "--kind", "silence", "--hours", "6")
        cli.ok("webhooks", "add", f"http://127.0.0.1:{server.server_address[1]}/hook", "--allow-private")

        first = _spawn(cli, NOW, "monitor", "run", "--json")
        deadline = time.monotonic() + 30
        while not requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert requests, "the first run never reached the receiver"
        later = (datetime.fromisoformat(NOW) + timedelta(minutes=6)).isoformat()  # past a 5-minute lease
        second = _spawn(cli, later, "monitor", "run", "--json")
        try:
            second_out, second_err = second.communicate(timeout=60)
        finally:
            release.set()
        first_out, first_err = first.communicate(timeout=60)
        assert first.returncode == 1 and second.returncode == 1, (first_err, second_err)
        assert most[0] == 1, "two runs delivered to the endpoint at once"
        assert len(requests) == 1
        assert json.loads(second_out)["deliveries"]["skipped_endpoints"] == 1
        assert json.loads(first_out)["deliveries"]["delivered"] == 1
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_an_invalid_deadline_setting_stops_the_run_before_anything_is_recorded(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.ok("alerts", "rules", "add", "--kind", "silence", "--hours", "6")
    for setting in ("soon", "0", "nan", "1e9"):
        cli.env["RATECARD_WEBHOOK_DEADLINE"] = setting
        done = cli("monitor", "run")
        assert done.code == 2 and "RATECARD_WEBHOOK_DEADLINE" in done.err, str(done)
        assert "internal error" not in done.err and "Traceback" not in done.err, str(done)
