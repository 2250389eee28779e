"""The FastAPI application: one store per process, routers per resource, conventions as middleware."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse

from .. import __version__
from ..services.errors import ServiceError
from ..services.event_log import publisher_from_environment
from ..services.events import MAX_GROUP_EVENTS, MAX_GROUP_WAIT, GroupCommitter
from ..settings import OPENTELEMETRY, SINGLE_EVENT_LANE, knob, switch
from ..store import Store, open_store
from ..web.app import PREFIX as CONSOLE_PREFIX
from ..web.app import create_console
from .caches import CatalogCache, KeyCache
from .dispatch import include_flat
from .dispatch import install as install_route_index
from .errors import (
    ApiError,
    api_error_handler,
    http_error_handler,
    service_error_handler,
    unexpected_error_handler,
    validation_error_handler,
)
from .lane import install as install_single_event_lane
from .metrics import Metrics
from .middleware import AuthenticatedBodies, Idempotency, RequestIdAndLatency
from .routes import catalog, customers, events, invoices, monitoring, payments, subscriptions, system
from .routing import arrange
from .solvimon import ROUTERS as SOLVIMON_ROUTERS
from .solvimon.config import SolvimonCache


# FastAPI's own OpenTelemetry (traces, metrics and logs of each request) asks the global providers
# on every request whether one was configured, environment lookups included: ~5% of the event
# loop's CPU per single event with none configured, as ratecard configures none. Off unless
# RATECARD_OPENTELEMETRY=1 (for an operator who installs an OpenTelemetry SDK, e.g. runs the
# server under `opentelemetry-instrument`); ratecard's own figures are on /metrics either way.
def framework_telemetry() -> dict[str, object]:
    """FastAPI's `telemetry` argument: {} (its defaults) when RATECARD_OPENTELEMETRY is 1, else all off."""
    if switch(OPENTELEMETRY, False):
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def create_app(database_url: str | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # each lifespan closes what it opened (a test client entered twice runs two of them)
        store = open_store(database_url)
        committer = group_committer(store)
        app.state.store = console.state.store = store
        app.state.committer = committer
        yield
        if app.state.event_log is not None:
            await app.state.event_log.close()
        if committer is not None:
            committer.close()  # what is queued is written first
        store.dispose()

    console = create_console()
    app = FastAPI(title="ratecard", version=__version__, lifespan=lifespan,
                  description="Usage-based billing API. Solvimon-compatible where Solvimon defines the resource.",
                  **framework_telemetry())
    app.state.metrics = Metrics()
    app.state.event_log = None  # the embedded default; `serve --log` sets a publisher (app_from_environment)
    app.state.catalogs = CatalogCache()
    app.state.keys = KeyCache()
    app.state.solvimon = SolvimonCache()
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(ServiceError, service_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
    # the last added runs first: request id and latency, then key and body limits, then Idempotency-Key
    app.add_middleware(Idempotency)
    app.add_middleware(AuthenticatedBodies)
    app.add_middleware(RequestIdAndLatency)
    # ratecard's own routes first: /v1/customers/{reference}/upcoming-invoice before the Solvimon
    # customers' catch-all /v1/customers/{key:path}
    for module in (system, events, catalog, subscriptions, customers, invoices, payments, monitoring):
        include_flat(app, arrange(module.router))
    for router in SOLVIMON_ROUTERS:  # a {key:path} never swallows a sub-resource: see routing.py
        include_flat(app, arrange(router))
    # the console shares the store, the catalog cache and the metrics; its own guard and error pages
    console.state.catalogs = app.state.catalogs
    console.state.metrics = app.state.metrics
    app.mount(CONSOLE_PREFIX, console)
    app.add_api_route("/", _to_console, include_in_schema=False)
    app.add_api_route(CONSOLE_PREFIX, _to_console, include_in_schema=False)
    install_route_index(app)  # last: every route is in place
    if switch(SINGLE_EVENT_LANE, True):  # 0: every request takes the full stack
        install_single_event_lane(app)  # one-event ingestion answered ahead of the middleware (lane.py)
    return app


async def _to_console() -> RedirectResponse:
    return RedirectResponse(CONSOLE_PREFIX + "/", status_code=307)


def group_committer(store: Store) -> GroupCommitter | None:
    """The process's group committer, tuned by RATECARD_GROUP_COMMIT_MAX_EVENTS (rows per shared
    transaction; 0 turns group commit off),
    RATECARD_GROUP_COMMIT_MAX_WAIT_MS (how long the writer waits for requests still validating) and
    RATECARD_GROUP_COMMIT_WRITERS (writer threads, each with its own connection)."""
    max_events = knob("RATECARD_GROUP_COMMIT_MAX_EVENTS", MAX_GROUP_EVENTS)
    if max_events == 0:
        return None
    max_wait = knob("RATECARD_GROUP_COMMIT_MAX_WAIT_MS", MAX_GROUP_WAIT * 1000) / 1000
    # PostgreSQL: two writer threads, so one batch is written while the other waits for its commit
    # (the server's own WAL flush then serves both); SQLite takes one writer at a time anyway
    writers = knob("RATECARD_GROUP_COMMIT_WRITERS", 2 if store.is_postgres else 1)
    return GroupCommitter(store, int(max_events), max_wait, int(writers))


# How long a server thread may hold the GIL while another waits for it (Python's default: 5 ms).
# A request hands off between threads: the event loop, the thread that validates it, the group
# committer's writer. With the default, each hand-off could wait up to 5 ms behind the thread
# parsing the next request; at 0.5 ms the single-event p50 halved under load (docs/scaling.md).
SWITCH_INTERVAL_MS = 0.5


def app_from_environment() -> FastAPI:
    """Factory for `uvicorn --factory` (and `ratecard serve --workers N`): the URL comes from
    RATECARD_DATABASE_URL, which `ratecard serve --db` sets for its workers. Being the server
    process, it also sets the interpreter's thread switch interval (RATECARD_SWITCH_INTERVAL_MS)."""
    sys.setswitchinterval(knob("RATECARD_SWITCH_INTERVAL_MS", SWITCH_INTERVAL_MS) / 1000)
    app = create_app(os.environ.get("RATECARD_DATABASE_URL"))
    app.state.event_log = publisher_from_environment()  # `serve --log`: events go to the log, workers store them
    return app
