"""`ratecard serve`: the HTTP API. uvicorn is imported only here, when serving."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from .common import DbOption, fail, masked_url, store_for
from .console import err, say
from .worker import DEFAULT_DEDUP_WINDOW, DEFAULT_STREAM, DedupOption, LogOption, LogStreamOption, use_log

APP_FACTORY = "ratecard.api.app:app_from_environment"
# uvicorn's httptools protocol with bounds on how long a request may take to arrive
BOUNDED_PROTOCOL = "ratecard.api.connections:BoundedHttpTools"


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0 or :: for every "
                                                       "interface; the default answers this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Server processes.")] = 1,
    db: DbOption = None,
    log: LogOption = None,
    log_stream: LogStreamOption = DEFAULT_STREAM,
    log_dedup_window: DedupOption = DEFAULT_DEDUP_WINDOW,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json) and the console (/console/)."""
    import uvicorn

    from ..settings import OPENTELEMETRY, check_server, switch
    from ..store.db import resolve_url

    try:
        check_server()  # the environment's settings, before anything starts (exit 2 naming a wrong one)
    except SystemExit as exc:
        fail(str(exc))
    url = resolve_url(db)
    if log is None and (log_stream != DEFAULT_STREAM or log_dedup_window != DEFAULT_DEDUP_WINDOW):
        fail("--log-stream and --log-dedup-window go with --log URL (the event log); without --log events "
             "are stored inside the request and no stream is used")
    if log is not None:
        use_log(log, log_stream, log_dedup_window)  # the stream checked first: a wrong one fails fast
    with store_for(url):
        pass  # migrate once, before the workers start
    os.environ["RATECARD_DATABASE_URL"] = url
    # bound here, before anything is printed: an address in use is refused with exit 2 and its
    # reason, as a bad --port is (uvicorn alone would say so and exit 3)
    listener = _tcp_listener(host, port)
    address = f"[{host}]" if ":" in host else host
    say(err, f"ratecard API on http://{address}:{port} (OpenAPI at /openapi.json), {workers} worker(s)")
    say(err, f"console on http://{address}:{port}/console/ (sign in as a user of `ratecard users create`)")
    say(err, f"database: {masked_url(url)}")
    http, loop = http_stack()
    say(err, f"HTTP: {http} parser, {loop} event loop")
    if switch(OPENTELEMETRY, False):  # off by default: said only when an operator switched it on
        say(err, f"OpenTelemetry: on ({OPENTELEMETRY}=1): FastAPI records traces, metrics and logs of each request "
                 "through the OpenTelemetry providers this process configures")
    protocol = bounded_protocol(http)
    if workers > 1 and url.startswith("sqlite"):
        # measured on 2 cores: one process's group committer merges every client's events, several
        # processes split them and wait for each other in SQLite's busy handler
        say(err, f"note: SQLite writes one transaction at a time; {workers} workers store events no faster than "
                 "one (one worker answered 1.3-2x the single events of two, measured). Use one worker with "
                 "SQLite, or PostgreSQL for several.")
    if workers == 1:
        listener.close()  # one worker: uvicorn binds the address again itself
        uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, log_level="warning", access_log=False,
                    http=protocol, loop=loop)
        return
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_level="warning",
                            access_log=False, http=protocol, loop=loop)
    Multiprocess(config, sockets=[listener]).run()


def http_stack() -> tuple[str, str]:
    """uvicorn's HTTP parser and event loop: httptools and uvloop (C, runtime dependencies) where
    they install, else uvicorn's pure-Python h11 parser and asyncio's own loop. Named, not left to
    uvicorn's "auto", so the startup line says what serves."""
    import importlib.util

    http = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    return http, loop


def bounded_protocol(http: str) -> str:
    """What uvicorn is told to serve HTTP with: on httptools, ratecard's protocol bounding how long
    a request's head and body may take to arrive (api/connections.py)."""
    return BOUNDED_PROTOCOL if http == "httptools" else http


def _tcp_listener(host: str, port: int) -> Any:
    """The shared listening socket for several workers, created with proto=IPPROTO_TCP.

    uvicorn's own creates it with proto 0, and asyncio only turns TCP_NODELAY on for sockets
    whose proto is IPPROTO_TCP: without it every response waits ~40 ms for a delayed ACK.
    """
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        fail(f"--host {host} --port {port}: cannot listen there: {exc.strerror}")
    sock.set_inheritable(True)
    return sock
