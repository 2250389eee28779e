"""Hostile HTTP and catalog input: every request body bounded and authenticated before it is
read, YAML loaded with alias, depth and size limits, CPU-heavy catalog work off the event loop,
Idempotency-Key claimed atomically, /metrics behind a key and scoped to its environment, and
RFC 3339 timestamps parsed strictly."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ratecard.catalog.load import CatalogFileError, load_document, parse_text
from ratecard.ingest.validate import parse_timestamp
from ratecard.store import idempotency, open_store

from ..api.conftest import Api
from ..api.live_server import Server, create_key
from ..migrated import at_head


def alias_bomb(levels: int = 7, fan_out: int = 9) -> str:
    """A few hundred bytes that expand to fan_out ** levels strings when walked."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * fan_out)}]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * fan_out)}]")
    lines.append(f"plans: [*a{levels - 1}]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- YAML limits (item: alias bomb)

def test_an_alias_bomb_is_refused_in_under_a_second_by_the_cli_loader(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(), encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(CatalogFileError, match="alias"):
        load_document(path)
    assert time.perf_counter() - started < 1.0


def test_a_few_aliases_still_load() -> None:
    document = parse_text("base: &base {meter: calls, unit_amount: 1}\nplans: [{charges: [*base, *base]}]\n",
                          "catalog.yaml")
    assert document["plans"][0]["charges"] == [{"meter": "calls", "unit_amount": 1}] * 2


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(CatalogFileError, match="alias"):
        parse_text("plans: &p [*p]\n", "catalog.yaml")


def test_deep_nesting_and_oversized_catalogs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(CatalogFileError, match="nested"):
        parse_text("plans: " + "[" * 200 + "]" * 200 + "\n", "catalog.yaml")
    with pytest.raises(CatalogFileError, match="nested"):
        parse_text('{"plans": ' + "[" * 200 + "]" * 200 + "}", "catalog.json")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (10 * 1024 * 1024) + b"\nplans: []\n")
    with pytest.raises(CatalogFileError, match="larger than"):
        load_document(big)


def test_the_api_refuses_an_alias_bomb_quickly(api: Api) -> None:  # noqa: F811
    started = time.perf_counter()
    response = api.post("/v1/catalog/check", content=alias_bomb().encode(), env="sandbox",
                        headers={"content-type": "application/yaml"})
    assert response.status_code == 400 and "alias" in response.json()["message"]
    assert time.perf_counter() - started < 1.0


def test_catalog_checks_run_off_the_event_loop(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from ratecard.services import catalog as catalogs

    real = catalogs.check_catalog

    def slow_check(*args, **kwargs):
        time.sleep(1.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(catalogs, "check_catalog", slow_check)
    worker = threading.Thread(target=api.post, args=("/v1/catalog/check",),
                              kwargs={"content": b"plans: []\n"})
    worker.start()
    time.sleep(0.3)  # the check is running
    started = time.perf_counter()
    assert api.client.get("/healthz").status_code == 200
    assert time.perf_counter() - started < 1.0, "the event loop was blocked by a catalog check"
    worker.join(10)


# ---------------------------------------------------------------- request bodies (item: memory exhaustion)

def _rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants (Linux /proc)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _raw_post(port: int, path: str, headers: dict[str, str], size: int, chunked: bool = False) -> tuple[int, float]:
    """POST `size` zero bytes with a raw socket (no client buffering); the status and seconds
    until it came. Sending stops as soon as the server answers or closes."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
                *(f"{k}: {v}" for k, v in headers.items())]
        head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        sock.setblocking(False)
        block = b"0" * 65536
        sent, answer = 0, b""
        while sent < size:
            try:
                answer += sock.recv(65536)
                if answer:
                    break
            except BlockingIOError:
                pass
            except OSError:
                break
            piece = block if not chunked else f"{len(block):x}\r\n".encode() + block + b"\r\n"
            try:
                sock.setblocking(True)
                sock.settimeout(5)
                sock.sendall(piece)
                sock.setblocking(False)
            except OSError:
                break
            sent += len(block)
        sock.setblocking(True)
        sock.settimeout(20)
        if chunked and sent >= size:
            try:
                sock.sendall(b"0\r\n\r\n")
            except OSError:
                pass
        while b"\r\n" not in answer:
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, time.perf_counter() - started


@pytest.fixture
def live(db_url: str, tmp_path: Path):
    key = create_key(db_url, "live")
    with Server(db_url, tmp_path / "server.log") as server:
        yield server, key


def test_big_bodies_without_a_key_or_beyond_the_limit_are_refused_before_they_are_read(live) -> None:
    server, key = live
    size = 50 * 1024 * 1024
    before = _rss_kib(server.process.pid)
    # no key, with and without Idempotency-Key: 401 at once, the body never buffered
    for headers in ({"Idempotency-Key": "k-1"}, {}):
        status, seconds = _raw_post(server.port, "/v1/reprocess", {"content-type": "application/json", **headers},
                                    size)
        assert status == 401 and seconds < 3
    status, _ = _raw_post(server.port, "/v1/invoice-runs", {"X-API-KEY": "rc_wrong"}, size, chunked=True)
    assert status == 401
    # a valid key: the declared length is refused up front, a streamed body is cut at the limit
    status, seconds = _raw_post(server.port, "/v1/invoice-runs", {"X-API-KEY": key, "Idempotency-Key": "k-2"}, size)
    assert status == 413 and seconds < 3
    status, seconds = _raw_post(server.port, "/v1/events", {"X-API-KEY": key}, size, chunked=True)
    assert status == 413 and seconds < 5
    assert _rss_kib(server.process.pid) - before < 30 * 1024, "the server buffered a refused body"
    # bodies within the limits work as before
    ok = httpx.post(f"{server.base_url}/v1/catalog/check", headers={"X-API-KEY": key}, content=b"plans: []\n")
    assert ok.status_code == 200


def test_the_body_limit_has_per_route_overrides(api: Api) -> None:  # noqa: F811
    two_mib = b"[" + b" " * (2 * 1024 * 1024) + b"]"
    # the default limit (1 MiB) on an ordinary route; events and catalogs take up to 10 MiB
    assert api.post("/v1/invoice-runs", content=two_mib,
                    headers={"content-type": "application/json"}).status_code == 413
    events = api.post("/v1/events", content=two_mib, headers={"content-type": "application/json"})
    assert events.status_code == 200, events.text
    too_big = api.post("/v1/events", content=b" " * (10 * 1024 * 1024 + 1))
    assert too_big.status_code == 413 and too_big.json()["code"] == "PAYLOAD_TOO_LARGE"


# ---------------------------------------------------------------- Idempotency-Key (item: races)

def test_concurrent_requests_with_one_idempotency_key_create_one_job(api: Api) -> None:  # noqa: F811
    body = {"type": "NOT_MATCHED", "not_matched": {}}

    def send(_: int) -> httpx.Response:
        return api.post("/v1/reprocess", json=body, headers={"Idempotency-Key": "race-1"})

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, range(6)))
    created = [a for a in answers if a.status_code == 201]
    in_use = [a for a in answers if a.status_code == 409]
    assert len(created) + len(in_use) == 6, [a.text for a in answers]
    assert all(a.json()["code"] == "IDEMPOTENCY_KEY_IN_USE" for a in in_use)
    assert len({a.json()["id"] for a in created}) == 1
    jobs = api.get("/v1/reprocess").json()["data"]
    assert len(jobs) == 1
    replay = send(0)
    assert replay.status_code == 201 and replay.headers.get("idempotent-replayed") == "true"
    assert replay.json()["id"] == jobs[0]["id"]
    deadline = time.monotonic() + 20  # let the job's thread end before the database goes
    while api.get(f"/v1/reprocess/{jobs[0]['id']}").json()["status"] in ("PENDING", "RUNNING"):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_key_is_claimed_once_across_processes_and_released_on_failure(db_url: str) -> None:
    first, second = open_store(at_head(db_url)), open_store(db_url)  # two connection pools, as two processes
    try:
        claim = idempotency.claim(first, "live", "k", "POST", "/v1/reprocess", "a" * 64, 1_000)
        assert claim is None  # ours
        other = idempotency.claim(second, "live", "k", "POST", "/v1/reprocess", "a" * 64, 1_001)
        assert other is not None and other.in_progress
        idempotency.release(first, "live", "k")
        assert idempotency.claim(second, "live", "k", "POST", "/v1/reprocess", "a" * 64, 1_002) is None
        idempotency.finish(second, "live", "k", 201, '{"id": 1}')
        done = idempotency.claim(first, "live", "k", "POST", "/v1/reprocess", "a" * 64, 1_003)
        assert done is not None and not done.in_progress and done.status_code == 201
        # a claim left by a process that died is taken over once it is stale
        assert idempotency.claim(first, "live", "dead", "POST", "/p", "b" * 64, 0) is None
        assert idempotency.claim(second, "live", "dead", "POST", "/p", "b" * 64,
                                 idempotency.CLAIM_EXPIRES_US + 1) is None
    finally:
        first.dispose()
        second.dispose()


# ---------------------------------------------------------------- /metrics

def test_metrics_need_a_key_and_show_only_its_environment(api: Api) -> None:  # noqa: F811
    event = {"id": "m-1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"}
    assert api.post("/v1/events", json=[event]).status_code == 200
    assert api.client.get("/metrics").status_code == 401
    live = api.client.get("/metrics", headers={"Authorization": f"Bearer {api.live}"})
    assert live.status_code == 200 and "ratecard_events_accepted_total 1" in live.text
    sandbox = api.client.get("/metrics", headers={"Authorization": f"Bearer {api.sandbox}"})
    assert "ratecard_events_accepted_total 0" in sandbox.text
    assert 'route="/v1/events"' not in sandbox.text


# ---------------------------------------------------------------- RFC 3339

UTC_10 = datetime(2026, 10, 5, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-10-05T10:00:00Z", UTC_10),
    ("2026-10-05t10:00:00z", UTC_10),
    ("2026-10-05 10:00:00Z", UTC_10),
    ("2026-10-05T12:00:00+02:00", UTC_10),
    ("2026-10-05T09:30:00-00:30", UTC_10),
    ("2026-10-05T10:00:00.5Z", UTC_10 + timedelta(microseconds=500_000)),
    ("2026-10-05T10:00:00.123456789Z", UTC_10 + timedelta(microseconds=123_456)),
    (" 2026-10-05T10:00:00Z\n", UTC_10),  # surrounding blanks (CSV padding) as before
])
def test_rfc3339_forms_are_accepted(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert isinstance(parsed, datetime) and parsed == expected and parsed.utcoffset() is not None


@pytest.mark.parametrize("text", [
    "2026-W41-1T10:00Z", "20261005T100000Z", "2026-10-05T10:00:00\x00Z", "2026-10-05T10:00Z",
    "2026-10-05T10:00:00.Z", "2026-10-05T10:00:00.1234567890Z", "2026-10-05T10:00:00+0200",
    "2026-10-05T10:00:00+02", "2026-10-05T10:00:00 Z", "2026-10-05", "2026-278T10:00:00Z",
    "2026-10-05T24:00:00Z", "2026-02-30T10:00:00Z", "2026-10-05T10:00:00+24:00", "２０２６-10-05T10:00:00Z",
    "2026-10-05T10:00:00,5Z", "2026-10-05T10:00:60Z", "+2026-10-05T10:00:00Z", "",
])
def test_anything_else_is_not_rfc3339(text: str) -> None:
    assert isinstance(parse_timestamp(text), str)


def test_a_datetime_without_zone_keeps_its_reason() -> None:
    assert "no timezone" in parse_timestamp("2026-10-05T10:00:00")
    assert isinstance(parse_timestamp(1), str)
