"""Request ids, latency metrics, authenticated and bounded request bodies, and Idempotency-Key,
as plain ASGI middleware.

Order (outermost first): RequestIdAndLatency -> AuthenticatedBodies -> Idempotency -> routes.
No request body is read before its API key is known to be valid and its size within the route's
limit, so an anonymous or oversized upload costs the server neither memory nor time.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
import uuid
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..clock import now
from ..domain.instants import to_micros
from ..store import idempotency
from ..web.app import PREFIX as CONSOLE_PREFIX
from .bodies import MAX_BYTES
from .context import REPEATED_CREDENTIAL, api_key, credential_repeated, key_environment, unauthorised_message
from .errors import INVALID_REQUEST, error_body
from .metrics import current_environment

MAX_KEY_LENGTH = 255
# event ingestion has its own idempotency: the event id / reference
NOT_IDEMPOTENT_PATHS = ("/v1/events", "/v1/ingest/", "/v1/psp/")
# routes a third party calls without an API key: the route verifies the sender's signature instead
# (the body is still bounded)
SIGNED_PATHS = frozenset({"/v1/psp/stripe/webhooks"})

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# writes that cannot move the catalog fingerprint (store/catalog_state.py): they store events, and
# change no catalog version, resource revision or final invoice. Serving one keeps the fingerprint
# this process read recently, so the reads that reuse it (the entitlements route) stay in memory
# instead of each querying it again after every ingest. Solvimon's meter-data ingestion is not
# listed: with dynamic validation it may create meters and properties (a resource revision).
FINGERPRINT_NEUTRAL = frozenset({("POST", "/v1/events")})
BODY_LIMIT = 1024 * 1024  # every request body, unless its route is listed below
# routes that legitimately take more: event batches (up to 10,000 events) and whole catalogs
BODY_LIMITS = {"/v1/events": MAX_BYTES, "/v1/catalog": MAX_BYTES, "/v1/catalog/check": MAX_BYTES}


class _RequestIds:
    """Request ids unique across processes without a system call per request: a random prefix
    per process (drawn again in a forked child) and a counter. uuid4 reads the system's random
    source at every request, and each read lets another thread take the interpreter for up to
    the switch interval while the event loop waits to get it back."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._counter = itertools.count(1)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


new_request_id = _RequestIds()


class RequestIdAndLatency:
    """Every response carries X-REQUEST-ID (the caller's, or a new one); latency is recorded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:128] or new_request_id()
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
            state = scope["app"].state
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            if scope["method"] not in SAFE_METHODS and hasattr(state, "catalogs") \
                    and (scope["method"], path) not in FINGERPRINT_NEUTRAL:
                state.catalogs.forget_reads()  # what this request changed is read again (caches.py)
            state.metrics.observe_request(scope.get("state", {}).get(ENVIRONMENT), scope["method"],
                                          path, status, time.perf_counter() - started)


ENVIRONMENT = "ratecard.environment"  # where AuthenticatedBodies leaves the key's environment in the scope


class AuthenticatedBodies:
    """Resolves the API key once per request; a request that carries a body is answered 401
    without a valid key and 413 beyond its route's limit, before one byte of the body is read.
    A streamed (chunked) body is counted as it arrives and cut at the limit; the body that passes
    is handed on as it came, so the routes read it as usual."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_console(scope["path"]):
            await self.app(scope, receive, send)  # the console signs in with a session, its guard bounds bodies
            return
        if credential_repeated(scope["headers"]):
            await _send_error(send, 401, "UNAUTHORISED", REPEATED_CREDENTIAL)
            return
        headers = _headers(scope)
        key = api_key(headers)
        try:
            environment = None
            if key:  # a key in the few-seconds cache costs no thread hop
                state = scope["app"].state
                environment = state.keys.get(key) or await run_in_threadpool(key_environment, state, key)
        except Exception:
            if _carries_body(headers):
                raise  # answered as any route's database failure is
            environment = None  # the route (/healthz: 503) reports the database itself
        scope.setdefault("state", {})[ENVIRONMENT] = environment
        token = current_environment.set(environment)
        try:
            if not _carries_body(headers):
                await self.app(scope, receive, send)
                return
            if environment is None and scope["path"] not in SIGNED_PATHS:
                await _send_error(send, 401, "UNAUTHORISED", unauthorised_message(key))
                return
            limit = body_limit(scope["path"])
            declared = headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                await _too_large(send, limit)
                return
            try:
                body = await _read_body(receive, limit)
            except _ClientGone:
                return
            if body is None:
                await _too_large(send, limit)
                return
            await self.app(scope, replay(body, receive), send)
        finally:
            current_environment.reset(token)


class Idempotency:
    """Idempotency-Key on POSTs (except event ingestion). The key is claimed for (environment,
    key) before the route runs: exactly one request runs, its answer is stored and replayed to
    retries; a request arriving while the first still runs gets 409 IDEMPOTENCY_KEY_IN_USE (retry
    it), the same key with another request 409 IDEMPOTENCY_CHECK_FAILED. A 5xx answer is not
    kept: the key is released, so a retry runs again."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].startswith(NOT_IDEMPOTENT_PATHS):
            await self.app(scope, receive, send)
            return
        key = _headers(scope).get("idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY_LENGTH:
            await _send_error(send, 400, "INVALID_FIELD", f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                              "Idempotency-Key")
            return
        environment = scope.get("state", {}).get(ENVIRONMENT)
        if environment is None:  # no valid key: the route answers 401 (a body was refused already)
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        try:
            body = await _read_body(receive, limit)  # AuthenticatedBodies refused a longer one already
        except _ClientGone:
            return
        if body is None:
            await _too_large(send, limit)
            return
        store = scope["app"].state.store
        # the query string is part of the request: `?preview=true` must never replay as the write itself
        target = scope["path"].encode() + b"?" + scope.get("query_string", b"")
        fingerprint = hashlib.sha256(target + b"\n" + body).hexdigest()
        stored = await run_in_threadpool(idempotency.claim, store, environment, key, "POST", scope["path"],
                                         fingerprint, to_micros(now()))
        if stored is not None:
            await _answer_from(send, stored, fingerprint)
            return
        captured: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")

        try:
            await self.app(scope, replay(body, receive), capture)
        except Exception:
            await run_in_threadpool(idempotency.release, store, environment, key)
            raise
        status = captured["status"]
        if status >= 500:  # a server error may succeed on retry: do not pin it
            await run_in_threadpool(idempotency.release, store, environment, key)
        else:
            await run_in_threadpool(idempotency.finish, store, environment, key, status,
                                    captured["body"].decode("utf-8", errors="replace"))
        await _send_stored(send, status, captured["body"], replayed=False, headers=captured["headers"])


async def _answer_from(send: Send, stored: idempotency.StoredResponse, fingerprint: str) -> None:
    if stored.request_sha256 != fingerprint:
        await _send_error(send, 409, "IDEMPOTENCY_CHECK_FAILED",
                          "this Idempotency-Key was used with a different request", "Idempotency-Key")
    elif stored.in_progress:
        await _send_error(send, 409, "IDEMPOTENCY_KEY_IN_USE",
                          "a request with this Idempotency-Key is still being processed: retry it shortly",
                          "Idempotency-Key")
    else:
        await _send_stored(send, stored.status_code, stored.body.encode(), replayed=True)


def _is_console(path: str) -> bool:
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


def body_limit(path: str) -> int:
    return BODY_LIMITS.get(path, BODY_LIMIT)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _carries_body(headers: dict[str, str]) -> bool:
    """HTTP/1.1 frames a body with Content-Length or Transfer-Encoding; without either there is none."""
    return "transfer-encoding" in headers or headers.get("content-length", "0") not in ("", "0")


class _ClientGone(Exception):
    """The client disconnected before its body was complete: there is no one to answer."""


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes `limit` bytes (the rest is never read)."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive, more: bool = False) -> Receive:
    """The body already read, then the connection's own messages (a disconnect, when it comes;
    the rest of the body when `more`)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": more}

    return replayed


async def _send_stored(send: Send, status: int, body: bytes, replayed: bool,
                       headers: list[tuple[bytes, bytes]] | None = None) -> None:
    kept = [(k, v) for k, v in (headers or []) if k.lower() not in (b"content-length", b"content-type")]
    kept += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if replayed:
        kept.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": status, "headers": kept})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, status: int, code: str, message: str, field: str | None = None) -> None:
    await _send_stored(send, status, error_body(INVALID_REQUEST, code, message, field), replayed=False)


async def _too_large(send: Send, limit: int) -> None:
    await _send_error(send, 413, "PAYLOAD_TOO_LARGE", f"the body is larger than {limit} bytes")
