"""The single-event lane: one event per request, answered without the framework's per-request work.

`POST /v1/ingest/meter-data` (and `/v1/events/ingest`, the same route) and a `POST /v1/events`
holding one event are what an application that reports usage as it happens sends all day.
Through the full stack each request passes the middleware, FastAPI's routing, request objects
and dependencies, and two thread hand-offs (the route's worker thread, then the group
committer's writer). The lane answers it on the event loop with the same functions the routes
use: the key from the key cache, the catalog and the Solvimon view from the process's caches,
the body parsed once, the event checked, its row handed to the group committer, and the answer
sent once the shared transaction committed.

A request takes the lane only when all of that is in memory: a POST to one of these paths with
no query string, a Content-Length within the route's limit (for `POST /v1/events` at most
EVENTS_LANE_BODY: longer bodies are batches), a key the cache knows, group commit
on, the catalog fingerprint this process saw last and the catalog built for it. Anything else
goes to the full stack untouched. A request the lane has read but does not finish (a body that
is not JSON, an event the checks refuse, a catalog that moved before the write) is handed to the
full stack with its body, before anything was written, so every refusal is answered and counted
by the code that answers it otherwise: the same envelope, the same figures.

What the lane does itself is what the middleware does for these routes: the X-REQUEST-ID
header, the request's latency in the metrics, the per-environment import counts, and telling
the caches that this process served a write.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from ..clock import now as clock_now
from ..services import meter_data
from ..services.events import RawEvent, Rejection, Row, check_one, import_batch
from ..services.resources.model import View
from .caches import CatalogState
from .context import Caller, credential_repeated
from .errors import unexpected_body
from .metrics import current_environment
from .middleware import body_limit, new_request_id, replay
from .routes.events import batch_summary, parse_events
from .solvimon.common import MAX_BODY as SOLVIMON_MAX_BODY
from .solvimon.common import decode_json, reject_nul
from .solvimon.config import cached_snapshot
from .solvimon.meter_data.checking import check_static
from .solvimon.meter_data.reading import prepare
from .solvimon.meter_data.rendering import render

EVENTS = "/v1/events"
# Solvimon's single-event routes (the SDK's two families); each is the route's own path, which
# the metrics name
SOLVIMON = frozenset({"/v1/ingest/meter-data", "/v1/events/ingest"})
PATHS = SOLVIMON | {EVENTS}
# A `POST /v1/events` body longer than this goes to the routes unread: it is a batch (or one event
# with unusually large properties), which the lane would only parse to find it holds more than one
# event and hand over, the route then parsing it again (for 1,000-event batches that double parse
# was about a fifth of the event loop's CPU per event)
EVENTS_LANE_BODY = 16 * 1024
JSON_HEADERS = [(b"content-type", b"application/json")]


class SingleEventLane:
    """In front of the application's middleware (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answered = 0  # requests the lane answered itself (the others went to the full stack)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in PATHS \
                or scope.get("query_string") or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        application = scope["app"]
        state = application.state
        path = scope["path"]
        committer = getattr(state, "committer", None)
        if committer is None or application.dependency_overrides or (path == EVENTS and state.event_log is not None):
            await self.app(scope, receive, send)
            return
        if credential_repeated(scope["headers"]):  # refused by the middleware, as on every path
            await self.app(scope, receive, send)
            return
        key = length = request_id = None
        for name, value in scope["headers"]:
            name = name.lower()
            if name == b"x-api-key":
                key = value
            elif name == b"authorization" and key is None and value[:7].lower() == b"bearer ":
                key = value[7:].strip()
            elif name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                length = None
                break
            elif name == b"x-request-id":
                request_id = value
        limit = min(body_limit(path), EVENTS_LANE_BODY) if path == EVENTS else min(body_limit(path), SOLVIMON_MAX_BODY)
        environment = state.keys.get(key.decode("latin-1")) if key else None
        if environment is None or length is None or not length.isdigit() or int(length) > limit:
            await self.app(scope, receive, send)
            return
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before its body was complete: there is no one to answer
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
            if not more or size > limit:
                break
        body = b"".join(chunks)
        if more:  # longer than it said: the full stack refuses it as it refuses any such body
            await self.app(scope, replay(body, receive, more=True), send)
            return
        caller = Caller(state.store, environment, clock_now(), state.catalogs, state.solvimon, state.metrics,
                        committer)
        token = current_environment.set(environment)
        try:
            answer = await (_solvimon(caller, body) if path in SOLVIMON else _events(caller, body))
        except Exception as exc:  # noqa: BLE001 - the write failed: answered as any route's unexpected error
            answer = 500, unexpected_body(exc)
        finally:
            current_environment.reset(token)
        if answer is None:
            await self.app(scope, replay(body, receive), send)
            return
        status, content = answer
        request_id = (request_id.decode("latin-1")[:128] if request_id else "") or new_request_id()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", str(len(content)).encode()), *JSON_HEADERS,
                                (b"x-request-id", request_id.encode("latin-1"))]})
        await send({"type": "http.response.body", "body": content})
        self.answered += 1
        # no catalogs.forget_reads(): an event the lane stores changes no catalog version, resource
        # revision or final invoice (it takes only events checked against the catalog as it is, never
        # one that would create a meter), so the reads that reuse a recent fingerprint (the
        # entitlements route) stay in memory; forgetting here sent every read after an ingest to a
        # worker thread to query the fingerprint again
        state.metrics.observe_request(environment, "POST", path, status, time.perf_counter() - started)


async def _solvimon(caller: Caller, body: bytes) -> tuple[int, bytes] | None:
    """One Solvimon event, as the route's STATIC validation takes it; None: the full stack answers."""
    checked = _check_solvimon(caller, body)
    if checked is None:
        return None
    view, events = checked
    environment, moment = caller.environment, caller.now
    assert caller.committer is not None
    outcome = await caller.committer.wait(environment, meter_data.group_rows(environment, moment, events),
                                          caller.fingerprint, keep_duplicates=True)
    if outcome.stale is not None:  # checked against an older catalog: nothing written, the route checks again
        caller.validated_again(outcome.stale)
        return None
    stored = meter_data.stored_batch(caller.store, environment, moment, events, outcome.duplicates)
    caller.metrics.observe_import(len(events), stored.duplicates, stored.unmatched, {})
    return 201, orjson.dumps(render(view, stored.rows()[0]))


def _check_solvimon(caller: Caller, body: bytes) -> tuple[View, list[meter_data.NewEvent]] | None:
    """The view and the checked event when all is in memory and the event passes; else None."""
    try:
        data = decode_json(body)
        if may_hold_nul(body):
            reject_nul(data)  # the walk over every string, only for a body that may hold one
        if caller.group_commit(1) is None or (snapshot := cached_snapshot(caller)) is None:
            return None
        event = prepare(data, "", snapshot.view, caller.now)
        check_static(event, snapshot.view)
        validator = snapshot.catalog_state.validator if snapshot.catalog_state is not None else None
        checked = meter_data.check_events(caller.store, caller.environment, caller.now, [event.raw(1)], validator,
                                          count_rejection=False, archived=caller.fingerprint.archived)
    except Exception:  # noqa: BLE001 - not JSON, refused, …: the route answers and counts it
        return None
    return None if isinstance(checked, meter_data.RejectedEvent) else (snapshot.view, checked)


async def _events(caller: Caller, body: bytes) -> tuple[int, bytes] | None:
    """A `POST /v1/events` of one event; None: the full stack answers."""
    checked = _check_event(caller, body)
    if checked is None:
        return None
    record, row, state = checked
    stamp = caller.fingerprint
    assert caller.committer is not None
    outcome = await caller.committer.wait(caller.environment, [row], stamp)
    if outcome.stale is not None:
        caller.validated_again(outcome.stale)
        return None
    validator, catalog = (state.validator, state.catalog) if state is not None else (None, None)
    report = import_batch(caller.store, caller.environment, caller.now, [record], False, validator, catalog,
                          caller.committer, stamp, written=([row], outcome))
    caller.metrics.observe_import(report.stored, report.duplicates, report.flagged_not_held(), dict(report.rejected))
    return 200, orjson.dumps(batch_summary(report, 1))


def _check_event(caller: Caller, body: bytes) -> tuple[RawEvent, Row, CatalogState | None] | None:
    """The event, its row and the catalog state it was checked with, when all is in memory and
    the event passes; else None."""
    try:
        records = parse_events(body)
        if len(records) != 1 or type(records[0]) is not RawEvent or caller.group_commit(1) is None \
                or "fingerprint" not in caller.__dict__:
            return None
        stamp = caller.fingerprint
        state = caller.catalogs.cached(caller.environment, stamp) if stamp.catalog_version is not None else None
        if stamp.catalog_version is not None and state is None:
            return None
        row = check_one(state.validator if state is not None else None, caller.environment, caller.now, records[0],
                        stamp.archived)
    except Exception:  # noqa: BLE001 - not JSON, too many events, …: the route answers
        return None
    return None if isinstance(row, Rejection) else (records[0], row, state)


def may_hold_nul(body: bytes) -> bool:
    """Whether decoded JSON can hold a NUL character: only from a NUL byte or a `\\u0000` escape
    (false positives, such as an escaped backslash before `u0000`, only cost the full check)."""
    return b"\\u0000" in body or b"\x00" in body


def install(application: Any) -> None:
    """Put the lane in front of the application's middleware stack (built on its first request)."""
    build = application.build_middleware_stack

    def build_with_lane() -> ASGIApp:
        return SingleEventLane(build())

    application.build_middleware_stack = build_with_lane
