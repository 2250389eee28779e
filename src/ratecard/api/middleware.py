"""Request ids, latency metrics and Idempotency-Key replay, as plain ASGI middleware."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..clock import now
from ..domain.instants import to_micros
from ..store import idempotency
from .context import api_key, key_environment
from .errors import INVALID_REQUEST, error_body

MAX_KEY_LENGTH = 255
# event ingestion has its own idempotency: the event id / reference
NOT_IDEMPOTENT_PATHS = ("/v1/events", "/v1/ingest/")


class RequestIdAndLatency:
    """Every response carries X-REQUEST-ID (the caller's, or a new one); latency is recorded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:128] or uuid.uuid4().hex
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            scope["app"].state.metrics.observe_request(scope["method"], path, status, time.perf_counter() - started)


class Idempotency:
    """Idempotency-Key on POSTs (except event ingestion): the first response is stored per
    (environment, key) and replayed to retries; the same key with another body is a 409."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].startswith(NOT_IDEMPOTENT_PATHS):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = headers.get("idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY_LENGTH:
            await _send_error(send, 400, "INVALID_FIELD", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                              "Idempotency-Key")
            return
        body = await _read_body(receive)
        store = scope["app"].state.store
        environment = _environment_of(scope, headers)
        if environment is None:  # let the route answer 401
            await self.app(scope, _replay(body), send)
            return
        fingerprint = hashlib.sha256(scope["path"].encode() + b"\n" + body).hexdigest()
        stored = idempotency.find(store, environment, key)
        if stored is not None:
            if stored.request_sha256 != fingerprint:
                await _send_error(send, 409, "IDEMPOTENCY_CHECK_FAILED",
                                  "this Idempotency-Key was used with a different request", "Idempotency-Key")
                return
            await _send_stored(send, stored.status_code, stored.body.encode(), replayed=True)
            return
        captured: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")

        await self.app(scope, _replay(body), capture)
        status = captured["status"]
        if status < 500:  # a server error may succeed on retry: do not pin it
            first = idempotency.remember(store, environment, key, "POST", scope["path"], fingerprint, status,
                                         captured["body"].decode("utf-8", errors="replace"), to_micros(now()))
            status, captured["body"] = first.status_code, first.body.encode()
        await _send_stored(send, status, captured["body"], replayed=False, headers=captured["headers"])


def _environment_of(scope: Scope, headers: dict[str, str]) -> str | None:
    key = api_key(headers)
    return key_environment(scope["app"].state, key) if key else None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _send_stored(send: Send, status: int, body: bytes, replayed: bool,
                       headers: list[tuple[bytes, bytes]] | None = None) -> None:
    kept = [(k, v) for k, v in (headers or []) if k.lower() not in (b"content-length", b"content-type")]
    kept += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if replayed:
        kept.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": status, "headers": kept})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, status: int, code: str, message: str, field: str) -> None:
    await _send_stored(send, status, error_body(INVALID_REQUEST, code, message, field), replayed=False)
