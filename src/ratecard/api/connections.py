"""Bounds on what one HTTP connection can hold, for `ratecard serve` (docs/security/http.md).

uvicorn's HTTP protocol (httptools) arms no timer before a connection's first answer, and none
while a request's head or body is arriving: a client that sends its headers a byte every few
seconds (slowloris), or a body slower than it said, keeps its connection, its memory and its
file descriptor for as long as it likes, and enough such clients make the server refuse every
new one. `BoundedHttpTools` is uvicorn's protocol with those bounds added:

- the request line and headers must arrive within RATECARD_HEADER_TIMEOUT seconds of the
  connection opening or of the request's first byte; the body within RATECARD_BODY_TIMEOUT
  seconds of the headers. Past either, the request is answered `408 REQUEST_TIMEOUT` and the
  connection closed (a connection that sent nothing is closed without an answer).
- the request line and headers may take at most RATECARD_MAX_HEADER_BYTES: past it the request
  is answered `414 URI_TOO_LONG` (when the request line is most of it) or `431
  HEADERS_TOO_LARGE`, and the connection closed. httptools itself has no such limit: it buffered
  a 64 MiB header whole, copying what it had at every piece (about ten seconds of the event
  loop, during which no other client was answered).
- a worker keeps at most RATECARD_MAX_CONNECTIONS connections open (by default 4,096, and never
  more than its open-file limit allows, less a reserve for the database and its own files). A
  connection past the cap closes the connection that has waited longest for a request (idle
  between requests, or still sending its head); when every connection has a request under way,
  the new one is answered `503 SERVER_BUSY` and closed. Without a cap, slow connections took
  every file descriptor and honest clients' connections were reset. (uvicorn's own
  `limit_concurrency` counts slow connections too and answers honest requests 503 while they
  are held: it is not used.)
- an answer the client does not take: once the connection's send buffer is full, the client has
  RATECARD_SEND_TIMEOUT seconds to read enough of it for the server to write again, else the
  connection is dropped (a client that reads nothing held its connection and every answer it
  asked for, in memory, for as long as it stayed connected).

It also answers a client that half-closes: one that sends its whole request and then shuts down
its sending side (`nc -N`, some HTTP/1.0 clients) got no answer at all, uvicorn closing the
connection at the end of what it read; its requests are now answered, then the connection closed.

A request that arrives whole in one read (what every honest client's small request does) arms
no timer at all: the timers are armed only when a read ends with a request incomplete.
"""

from __future__ import annotations

import asyncio
import resource
from functools import cache
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ..settings import knob
from .errors import INVALID_REQUEST

HEADER_TIMEOUT = 10.0  # seconds for a request's line and headers
BODY_TIMEOUT = 60.0  # seconds for its body once the headers arrived
MAX_HEADER_BYTES = 64 * 1024  # the request line and headers of one request
MAX_CONNECTIONS = 4096  # open connections per worker process
SEND_TIMEOUT = 60.0  # seconds an answer may wait for the client to read
# file descriptors kept for what is not a client: the database (SQLite's files, PostgreSQL
# connections), the event log, the listening socket, logs
RESERVED_FILES = 128


@cache
def limits() -> tuple[float, float, int, int, float]:
    """(header timeout, body timeout) in seconds, the most bytes of a request's head, the most
    open connections and the send timeout, read once per worker process."""
    return (knob("RATECARD_HEADER_TIMEOUT", HEADER_TIMEOUT), knob("RATECARD_BODY_TIMEOUT", BODY_TIMEOUT),
            int(knob("RATECARD_MAX_HEADER_BYTES", MAX_HEADER_BYTES)), max_connections(),
            knob("RATECARD_SEND_TIMEOUT", SEND_TIMEOUT))


def max_connections() -> int:
    """RATECARD_MAX_CONNECTIONS (default 4,096), never more than the open-file limit allows."""
    files, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = int(knob("RATECARD_MAX_CONNECTIONS", MAX_CONNECTIONS))
    if files == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, files - RESERVED_FILES))


# The connections of this process waiting for a request (idle between requests, or sending a
# head), oldest first: the one a connection past the cap closes. Kept in step as requests come
# and go (a dict's order is its insertion order), so the choice never walks every connection.
_WAITING: dict[BoundedHttpTools, None] = {}


def refusal(status: int, code: str, message: str) -> bytes:
    """A whole HTTP answer in the API's error envelope, closing the connection."""
    body = orjson.dumps({"type": INVALID_REQUEST, "code": code, "field": None, "message": message})
    return b"".join([STATUS_LINE[status], b"content-type: application/json\r\n",
                     b"content-length: ", str(len(body)).encode(), b"\r\nconnection: close\r\n\r\n", body])


class HeadTooLarge(Exception):
    """Stops the parser once a head past the limit was refused."""


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds above (see the module's docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout, self._body_timeout, self._max_head, self._max_connections, self._send_timeout = limits()
        self._send_deadline: asyncio.TimerHandle | None = None  # armed while the send buffer is full
        self._answering: Any = None  # the request whose answer is being written (pipelined ones wait)
        self._head_bytes = 0  # bytes received since the current request's head began (about)
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = 0  # 0: between requests, 1: receiving a head, 2: receiving a body
        self._phase_started = 0.0  # loop time the head (or body) began

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._max_connections and not self._make_room():
            transport.write(refusal(503, "SERVER_BUSY", "the server has as many connections as it takes, each "
                                    "with a request under way; retry shortly"))
            transport.close()
            return
        _WAITING[self] = None
        # a connection that never sends a byte is closed too
        self._phase_started = self.loop.time()
        self._arm(self._header_timeout, self._head_late)

    def connection_lost(self, exc: Exception | None) -> None:
        # uvicorn marks only the last request parsed as cut off; with requests pipelined the one
        # being answered is an earlier one, which otherwise goes on writing to the closed transport
        answering = self._answering
        if answering is not None and not answering.response_complete:
            answering.disconnected = True
            answering.message_event.set()
        self._disarm()
        if self._send_deadline is not None:
            self._send_deadline.cancel()
            self._send_deadline = None
        _WAITING.pop(self, None)
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_deadline is None:
            self._send_deadline = self.loop.call_later(self._send_timeout, self._send_late)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._send_deadline is not None:
            self._send_deadline.cancel()
            self._send_deadline = None

    def _send_late(self) -> None:
        """The client took nothing for the send timeout: dropped, with what was waiting for it."""
        self._send_deadline = None
        # the request being answered (self.cycle may be a later, queued one) writes no more: marked
        # before the transport, emptied, wakes the writer waiting for room
        for cycle in (self._answering, self.cycle):
            if cycle is not None:
                cycle.disconnected = True
                cycle.message_event.set()
        self.transport.abort()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        self._answering = cycle
        super()._start_asgi_task(cycle, app)

    def eof_received(self) -> bool | None:
        """The client will send nothing more. Requests received whole are still answered (then the
        connection closes); a request that is incomplete never will be, so the connection closes."""
        cycle = self.cycle
        if self._phase == 0 and cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False  # the last request received: closes the connection once answered
            return True  # keep the sending side open for the answers
        return None

    def _make_room(self) -> bool:
        """Closes the connection that has waited longest for a request; False when none waits."""
        for waiting in _WAITING:
            _WAITING.pop(waiting)
            waiting._disarm()
            waiting.transport.close()
            return True
        return False

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.cycle.response_complete and self._phase != 2 and not self.transport.is_closing():
            _WAITING[self] = None  # between requests (or the next one's head arriving)

    def data_received(self, data: bytes) -> None:
        if self._phase != 2:
            self._head_bytes += len(data)  # set back to 0 when the head is complete
        super().data_received(data)
        if self._phase == 1 and self._head_bytes > self._max_head and not self.transport.is_closing():
            self._head_too_large()
            return
        # a read that leaves a request incomplete arms its timer (a whole request arms none)
        if self._deadline is None and self.parser is not None:
            if self._phase == 1:
                self._arm(self._header_timeout, self._head_late)
            elif self._phase == 2:
                self._arm(self._body_timeout, self._body_late)
            elif (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                # bytes that began no request on an idle connection (blank lines between requests,
                # allowed) cancelled uvicorn's keep-alive timer: they start the next head's time
                self._phase_started = self.loop.time()
                self._arm(self._header_timeout, self._head_late)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase != 1:  # a connection's first request keeps the timer armed at connect
            self._phase = 1
            self._phase_started = self.loop.time()

    def on_headers_complete(self) -> None:
        self._disarm()
        _WAITING.pop(self, None)
        if self._head_bytes > self._max_head and self._head_size() > self._max_head:
            # a whole head past the limit in one read: refused before the application sees it, the
            # parser stopped by the exception (uvicorn's answer to it is not sent: send_400_response)
            self._head_too_large()
            raise HeadTooLarge
        self._head_bytes = 0
        self._phase = 2
        self._phase_started = self.loop.time()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._phase = 0
        super().on_message_complete()

    def _head_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def send_400_response(self, msg: str) -> None:
        if not self.transport.is_closing():  # not after a refusal of ours
            super().send_400_response(msg)

    def _head_too_large(self) -> None:
        """Refuses a head past the limit: httptools keeps all of it (and copies it at every read)."""
        self._disarm()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:  # an answer under way: it is cut off
            cycle.disconnected = True
            cycle.message_event.set()
        elif len(self.url) * 2 > self._head_bytes:
            self.transport.write(refusal(414, "URI_TOO_LONG",
                                         f"the request line is longer than {self._max_head} bytes"))
        else:
            self.transport.write(refusal(431, "HEADERS_TOO_LARGE",
                                         f"the request line and headers are longer than {self._max_head} bytes"))
        self.transport.close()

    def _arm(self, timeout: float, callback: Any) -> None:
        self._deadline = self.loop.call_at(self._phase_started + timeout, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False  # the answer under way is sent, then the connection closes
            return
        if self._phase == 1:
            self.transport.write(refusal(408, "REQUEST_TIMEOUT", "the request line and headers did not arrive "
                                         f"within {self._header_timeout:g} seconds"))
        self.transport.close()

    def _body_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.pipeline or self.flow.read_paused:
            # the server is not reading (an earlier request of the connection is being answered,
            # or the application has not taken what came): the client is not late, wait again
            self._phase_started = self.loop.time()
            self._arm(self._body_timeout, self._body_late)
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            self.transport.write(refusal(408, "REQUEST_TIMEOUT",
                                         f"the request body did not arrive within {self._body_timeout:g} seconds"))
            cycle.disconnected = True  # the application's read ends, whatever it would answer is dropped
            cycle.message_event.set()
        self.transport.close()
