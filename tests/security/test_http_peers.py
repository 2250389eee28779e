"""`ratecard serve` against hostile or broken network peers, over plain sockets: clients that send
their request slowly (slowloris), never finish a body, send huge heads, hold many connections or
never read their answers. Each server runs with short limits so every test ends in seconds."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import orjson
import pytest

from ..api.live_server import Server, create_key, postgres_schema
from ..conftest import _require_postgres
from ..integration.scenario import CATALOG

# the limits the servers of these tests run with (docs/security/http.md gives the defaults)
FAST = {"RATECARD_HEADER_TIMEOUT": "1", "RATECARD_BODY_TIMEOUT": "2", "RATECARD_SEND_TIMEOUT": "1"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           postgres_reason: str | None) -> Iterator[tuple[Server, str]]:
    """One server per store for the module (each test leaves it as it found it), with a catalog."""
    with ExitStack() as stack:
        folder = tmp_path_factory.mktemp("peers")
        if request.param == "sqlite":
            url = f"sqlite:///{folder / 'ratecard.db'}"
        else:
            _require_postgres(postgres_reason)
            url = stack.enter_context(postgres_schema("peers"))
        key = create_key(url, "live")
        server = stack.enter_context(Server(url, folder / "server.log", env=FAST))
        applied = httpx.post(f"{server.base_url}/v1/catalog", content=CATALOG.encode(), timeout=30,
                             headers={"X-API-KEY": key, "content-type": "application/yaml"})
        assert applied.status_code == 201, applied.text
        yield server, key


def _connect(server: Server, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


def _answer(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection (or `timeout` passes)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def _honest(server: Server) -> tuple[int, float]:
    """One honest GET /healthz on a new connection: its status and how long it took."""
    started = time.perf_counter()
    with _connect(server, 3) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return _status(_answer(sock, 3)), time.perf_counter() - started


def _event(reference: str) -> bytes:
    return orjson.dumps({"reference": reference, "customer_reference": "acme", "meter_reference": "tokens",
                         "timestamp": "2026-01-20T10:00:00Z", "meter_values": [{"reference": "tokens", "number": "1"}]})


def test_a_request_head_sent_a_byte_at_a_time_is_answered_408_and_closed(served) -> None:
    """Slowloris: connections that send their request line and headers one byte every half second
    (each byte before the previous timer could fire), and one that sends nothing at all, are ended
    once the head has not arrived within RATECARD_HEADER_TIMEOUT; honest clients are answered
    meanwhile."""
    server, _ = served
    slow = [_connect(server) for _ in range(20)]
    silent = _connect(server)
    for sock in slow:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    closed_at: dict[int, float] = {}
    while time.monotonic() - started < 4 and len(closed_at) < len(slow):
        for number, sock in enumerate(slow):
            if number in closed_at:
                continue
            try:
                sock.sendall(b"X")
            except OSError:
                closed_at[number] = time.monotonic() - started
        status, seconds = _honest(server)
        assert status == 200 and seconds < 1
        time.sleep(0.5)
    answers = [_answer(sock, 2) for sock in slow]
    assert all(_status(answer) == 408 for answer in answers), answers[0][:200]
    assert b'"code":"REQUEST_TIMEOUT"' in answers[0] and b"connection: close" in answers[0].lower()
    assert _answer(silent, 2) == b""  # nothing was asked: the connection is closed without an answer
    for sock in [*slow, silent]:
        sock.close()


@pytest.mark.parametrize("path", ["/v1/events", "/v1/ingest/meter-data", "/v1/ingest/meter-datas"])
def test_a_body_trickled_after_valid_headers_is_answered_408(served, path: str) -> None:
    """Content-Length: 1000000 and then a byte at a time: the request is abandoned with 408 once its
    body has not arrived within RATECARD_BODY_TIMEOUT, and the connection closed."""
    server, key = served
    with _connect(server) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nX-API-KEY: {key}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n".encode())
        started = time.monotonic()
        answer = b""
        sock.settimeout(0.3)
        while time.monotonic() - started < 6:
            try:
                sock.sendall(b" ")
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
        elapsed = time.monotonic() - started
    assert _status(answer) == 408, answer[:300]
    assert 1.5 < elapsed < 4.5
    assert b'"code":"REQUEST_TIMEOUT"' in answer
    assert _honest(server)[0] == 200
    assert "Traceback" not in server.log(), server.log()


def test_a_keep_alive_connection_sending_requests_back_to_back_is_not_cut(served) -> None:
    """The limits bound each request, not the connection: one connection sending single events
    back to back for longer than both timeouts is answered every time."""
    server, key = served
    with _connect(server) as sock:
        started = time.monotonic()
        number = 0
        while time.monotonic() - started < 3:
            body = _event(f"keep-alive-{number:05d}")
            sock.sendall(f"POST /v1/ingest/meter-data HTTP/1.1\r\nHost: x\r\nX-API-KEY: {key}\r\n"
                         f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(65536)
            assert _status(head) == 201, head[:200]
            length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
            rest = head.split(b"\r\n\r\n", 1)[1]
            while len(rest) < length:
                rest += sock.recv(65536)
            number += 1
            time.sleep(0.05)
    assert number > 20
    assert b"Traceback" not in server.log().encode()


def test_honest_clients_are_answered_while_slow_ones_hold_connections(served) -> None:
    """Many slow connections at once: honest requests keep being answered quickly."""
    server, _ = served
    slow = [_connect(server) for _ in range(200)]
    for sock in slow:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    worst = 0.0
    done = threading.Event()

    def trickle() -> None:
        while not done.is_set():
            for sock in slow:
                try:
                    sock.send(b"Y")
                except OSError:
                    pass
            done.wait(0.3)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        for _ in range(10):
            status, seconds = _honest(server)
            assert status == 200
            worst = max(worst, seconds)
            time.sleep(0.1)
    finally:
        done.set()
        thread.join(5)
        for sock in slow:
            sock.close()
    assert worst < 1


def _send_head(server: Server, head: bytes) -> tuple[bytes, float]:
    """Sends a request head (the server may close before taking it all) and reads the answer."""
    started = time.perf_counter()
    with _connect(server, 10) as sock:
        try:
            sock.sendall(head)
        except OSError:  # refused part way: the answer is still there to read
            pass
        return _answer(sock, 10), time.perf_counter() - started


@pytest.mark.parametrize(("what", "head", "status"), [
    ("one 1 MiB header", b"X-Big: " + b"a" * (1 << 20) + b"\r\n", 431),
    ("10,000 headers", b"".join(b"X-H%d: v\r\n" % number for number in range(10_000)), 431),
    ("a 1 MiB request line", None, 414)])
def test_a_huge_request_head_is_refused_before_it_is_buffered(served, what: str, head: bytes | None,
                                                              status: int) -> None:
    server, _ = served
    if head is None:
        raw = b"GET /healthz/" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    else:
        raw = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + head + b"Connection: close\r\n\r\n"
    answer, seconds = _send_head(server, raw)
    assert _status(answer) == status, (what, answer[:300])
    assert b'"code":"' in answer and seconds < 3
    assert _honest(server)[0] == 200


def test_a_giant_header_does_not_stall_other_clients(served) -> None:
    """A 64 MiB header was buffered whole, copied again at each piece (about 10 seconds of the
    event loop, every other client waiting); it is refused at the limit instead."""
    server, _ = served
    finished = threading.Event()
    answers: list[bytes] = []

    def attack() -> None:
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (64 << 20) + b"\r\n\r\n"
        answers.append(_send_head(server, head)[0])
        finished.set()

    thread = threading.Thread(target=attack, daemon=True)
    thread.start()
    worst = 0.0
    while not finished.wait(0.05):
        status, seconds = _honest(server)
        assert status == 200
        worst = max(worst, seconds)
    thread.join(30)
    assert _status(answers[0]) == 431
    assert worst < 1


def test_connections_past_the_cap_push_out_the_slowest_and_honest_clients_are_served(db_url: str,
                                                                                     tmp_path: Path) -> None:
    """A server allowed 256 open files: 300 connections that never finish their head used to take
    every file descriptor, so an honest client's connection was reset. With
    RATECARD_MAX_CONNECTIONS=100 a new connection past the cap closes the one that has waited
    longest for its request, and the honest client is answered."""
    import resource

    env = {"RATECARD_HEADER_TIMEOUT": "30", "RATECARD_MAX_CONNECTIONS": "100"}
    with Server(db_url, tmp_path / "server.log", env=env) as server:
        assert server.process is not None
        resource.prlimit(server.process.pid, resource.RLIMIT_NOFILE, (256, 256))
        slow = []
        try:
            for _ in range(300):
                sock = _connect(server)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                slow.append(sock)
            time.sleep(0.5)
            assert _honest(server)[0] == 200
            # the oldest slow connections were closed, the newest are still open
            assert _answer(slow[0], 2) == b""
            slow[-1].setblocking(False)
            with pytest.raises(BlockingIOError):
                slow[-1].recv(1)
        finally:
            for sock in slow:
                sock.close()


def test_a_client_that_never_reads_its_answers_is_dropped(served) -> None:
    """Large answers (the OpenAPI document, ~200 KB) asked for twenty times in one write by a
    client that reads nothing: the server used to hold the connection and the answers in memory
    for as long as the client stayed. Once it has waited RATECARD_SEND_TIMEOUT for the client to
    take anything, the connection is dropped."""
    server, _ = served
    whole = len(httpx.get(f"{server.base_url}/openapi.json", timeout=10).content)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    try:
        sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * 20)
        time.sleep(3)
        received = len(_answer(sock, 3))
    finally:
        sock.close()
    assert received < 20 * whole, "the server still held every answer for a client that read nothing"
    assert _honest(server)[0] == 200
    # the answer being written when the connection went (an earlier one than the last parsed)
    # stops writing instead of failing on the closed connection
    assert "Traceback" not in server.log(), server.log()


@pytest.mark.parametrize("path", ["/v1/ingest/meter-data", "/v1/events", "/v1/plans"])
def test_a_request_followed_by_a_half_close_is_answered(served, path: str) -> None:
    """A client that sends its whole request and then shuts down its sending side (as `nc -N` and
    some HTTP/1.0 clients do) says it will send no more requests, not that it wants no answer:
    it gets its answer, then the connection closes."""
    server, key = served
    if path == "/v1/plans":
        raw = f"GET {path} HTTP/1.1\r\nHost: x\r\nX-API-KEY: {key}\r\n\r\n".encode()
    else:
        body = _event("half-closed") if "ingest" in path else orjson.dumps(
            [{"id": "half-closed-2", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z",
              "properties": {"tokens": "1"}}])
        raw = (f"POST {path} HTTP/1.1\r\nHost: x\r\nX-API-KEY: {key}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with _connect(server) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        started = time.monotonic()
        answer = _answer(sock, 8)
    assert _status(answer) in (200, 201), answer[:300]
    # then closed by the server at once (not after the 5 s an idle kept-alive connection waits)
    assert time.monotonic() - started < 3


def test_blank_lines_between_requests_do_not_keep_a_connection_open(served) -> None:
    """Empty lines between requests are allowed, and each one used to cancel the idle kept-alive
    connection's timer: a CRLF every few seconds held it forever. They count as the next
    request's head now, which must arrive within RATECARD_HEADER_TIMEOUT."""
    server, _ = served
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(sock.recv(65536)) == 200
        started = time.monotonic()
        closed = False
        sock.settimeout(0.5)
        while time.monotonic() - started < 5 and not closed:
            try:
                sock.sendall(b"\r\n")
                closed = sock.recv(65536) == b""
            except TimeoutError:
                pass
            except OSError:
                closed = True
        assert closed and time.monotonic() - started < 3
