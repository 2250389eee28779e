"""One outgoing POST that a receiver can neither stall nor flood.

Everything an attempt does — resolving the name, connecting, the TLS handshake, sending, reading
the status line and headers — ends within one total deadline, however slowly the peer trickles
bytes: every socket operation waits at most for what is left of it (a per-read timeout alone lets
a receiver sending a byte every few seconds hold the run forever). Of the answer, at most
ANSWER_CAP bytes are read: the status code decides, the body is never read.

The name is resolved here, each address it resolves to is checked against the target policy
(webhook_targets), and the connection goes to a checked address: a name cannot resolve to a public
address for the check and to 127.0.0.1 for the connection. http.client writes the request and
parses the answer over that socket.
"""

from __future__ import annotations

import errno
import http.client
import io
import ipaddress
import socket
import ssl
import threading
import time
from typing import Any

from .webhook_targets import Address, Target, TargetRefused, refuse_unless_allowed

ANSWER_CAP = 64 * 1024  # bytes of the answer ever read: status line and headers


class DeliveryFailed(Exception):
    """An attempt that got no usable answer; the message is what the delivery log shows."""


class Unresolvable(DeliveryFailed):
    """The target's name does not resolve (now)."""


class _DeadlinePassed(Exception):
    pass


class _AnswerTooLarge(Exception):
    pass


class Deadline:
    """A total time budget; remaining() raises once it is spent."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0:
            raise _DeadlinePassed
        return left


def post(target: Target, body: bytes, headers: dict[str, str], *, allow_private: bool, deadline: float) -> int:
    """POST `body` to the target; returns the answer's status code. Raises DeliveryFailed (the
    target refused, no answer within `deadline` seconds, an answer that is not HTTP, …)."""
    clock = Deadline(deadline)
    try:
        addresses = resolve(target, clock)
        for address in addresses:  # every address, not just the first: DNS answers vary
            refuse_unless_allowed(target, address, allow_private, resolved=True)
        sock = _connect(target, addresses, clock)
    except TargetRefused as exc:
        raise DeliveryFailed(f"refused: {exc}") from None
    except (_DeadlinePassed, TimeoutError):
        raise DeliveryFailed(_late(clock)) from None
    try:
        return _exchange(target, sock, body, headers, clock)
    finally:
        sock.close()


def resolve(target: Target, clock: Deadline) -> list[Address]:
    """The addresses the target's host stands for now, within the deadline. The resolver has no
    timeout of its own, so it runs in a thread that is left behind when the time is up."""
    if target.address is not None:
        return [target.address]
    found: list[Any] = []

    def lookup() -> None:
        try:
            found.append(socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            found.append(exc)

    thread = threading.Thread(target=lookup, name="webhook-resolve", daemon=True)
    thread.start()
    thread.join(clock.remaining())
    if not found:
        raise Unresolvable(f"{target.host} did not resolve within {clock.seconds:g} s")
    if isinstance(found[0], Exception) or not found[0]:
        raise Unresolvable(f"{target.host} does not resolve")
    addresses: list[Address] = []
    for info in found[0]:
        address = ipaddress.ip_address(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _connect(target: Target, addresses: list[Address], clock: Deadline) -> socket.socket:
    failure = "failed"
    for address in addresses:
        try:
            return socket.create_connection((str(address), target.port), timeout=clock.remaining())
        except TimeoutError:
            raise
        except OSError as exc:
            failure = _CONNECT_FAILURES.get(exc.errno or 0, "failed")
    raise DeliveryFailed(f"Connection to {target.host}:{target.port} {failure}")


_CONNECT_FAILURES = {errno.ECONNREFUSED: "refused", errno.ENETUNREACH: "failed (network unreachable)",
                     errno.EHOSTUNREACH: "failed (host unreachable)", errno.ECONNRESET: "reset"}


def _exchange(target: Target, sock: socket.socket, body: bytes, headers: dict[str, str], clock: Deadline) -> int:
    try:
        if target.scheme == "https":
            sock.settimeout(clock.remaining())  # the handshake as a whole: CPython bounds it by this
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=target.host)
        connection = _Connection(target, _BoundedSocket(sock, clock))
        connection.request("POST", target.path, body=body, headers={**headers, "Connection": "close"})
        response = connection.getresponse()
        response.close()  # the body is never read
        return response.status
    except (_DeadlinePassed, TimeoutError):
        raise DeliveryFailed(_late(clock)) from None
    except _AnswerTooLarge:
        raise DeliveryFailed(f"the answer's status line and headers exceed {ANSWER_CAP // 1024} KiB") from None
    except ssl.SSLCertVerificationError:
        raise DeliveryFailed(f"the TLS certificate of {target.host} is not valid for it") from None
    except ssl.SSLError:
        raise DeliveryFailed(f"the TLS handshake with {target.host} failed") from None
    except http.client.RemoteDisconnected:
        raise DeliveryFailed("the receiver closed the connection without answering") from None
    except http.client.HTTPException:
        raise DeliveryFailed("the answer is not HTTP") from None
    except OSError as exc:
        raise DeliveryFailed(f"Connection to {target.host}:{target.port} "
                             f"{_CONNECT_FAILURES.get(exc.errno or 0, 'lost')}") from None


def _late(clock: Deadline) -> str:
    return f"no complete answer within {clock.seconds:g} s (the deadline of one attempt)"


class _Connection(http.client.HTTPConnection):
    """http.client over a socket that is already connected to a checked address: it never connects
    by itself (that would resolve the name again)."""

    def __init__(self, target: Target, sock: _BoundedSocket) -> None:
        super().__init__(target.host, target.port)
        self.default_port = 443 if target.scheme == "https" else 80  # so Host carries no default port
        self.auto_open = 0
        self.sock = sock  # type: ignore[assignment]


class _BoundedSocket:
    """The socket as http.client uses it (sendall, makefile, close), every operation bounded by
    the deadline and the answer by ANSWER_CAP."""

    def __init__(self, sock: socket.socket, clock: Deadline) -> None:
        self._sock = sock
        self._clock = clock

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # one send at a time: each waits at most for what is left
            self._sock.settimeout(self._clock.remaining())
            view = view[self._sock.send(view):]

    def makefile(self, mode: str, *_: Any, **__: Any) -> io.BufferedReader:
        return io.BufferedReader(_AnswerReader(self._sock, self._clock))

    def close(self) -> None:
        self._sock.close()


class _AnswerReader(io.RawIOBase):
    def __init__(self, sock: socket.socket, clock: Deadline) -> None:
        self._sock = sock
        self._clock = clock
        self._taken = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        room = ANSWER_CAP - self._taken
        if room <= 0:
            raise _AnswerTooLarge
        self._sock.settimeout(self._clock.remaining())
        count = self._sock.recv_into(memoryview(buffer).cast("B")[:room])
        self._taken += count
        return count
