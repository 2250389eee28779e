"""Which URLs a webhook may be sent to.

A webhook URL is typed by whoever holds the CLI (or, later, an API key), and ratecard then sends
requests to it from inside the operator's network: without a check, that is a way to reach the
cloud metadata service (169.254.169.254), the database port on localhost or any internal service
(server-side request forgery). So an endpoint must be a plain http(s) URL with a real host and
port, and its host must be a public address — checked when the endpoint is added (the literal
address, or what the name resolves to then) and again before every delivery, on the addresses the
name resolves to at that moment, which are the only ones the delivery connects to.

`allow_private` (the operator's `webhooks add --allow-private`, stored on the endpoint) lifts the
address check for receivers on the operator's own network — and the tests' local receivers — except
for unspecified and multicast addresses, which can never be a receiver.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
# a host name: dot-separated labels of letters, digits and inner hyphens, at most 63 each, 253 in all
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# what the OS resolver (and browsers) read as an IPv4 address: 0x7f000001, 2130706433, 127.1, 0177.0.0.1
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
# IPv6 prefixes that carry an IPv4 address a gateway may forward to: NAT64 (64:ff9b::/96)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(ValueError):
    """A URL that is not a webhook target; the message says why."""


@dataclass(frozen=True)
class Target:
    """A checked URL, split into what a request needs."""
    scheme: str  # http | https
    host: str  # lower case, no trailing dot; an IPv6 address without brackets
    port: int
    path: str  # path and query, at least "/"
    address: Address | None  # the host when it is an address literal (in any spelling)


def parse_target(url: str) -> Target:
    """Check the URL's form: http(s), a real host, port 1-65535, no credentials, nothing that could
    split a request line. Raises TargetRefused."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"the URL is too long ({len(url)} characters, at most {MAX_URL_LENGTH})")
    if any(ch.isspace() for ch in url):
        raise TargetRefused(f"URL {url!r} contains a space or line break")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise TargetRefused(f"URL {url!r} contains a control character")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TargetRefused(f"URL {url!r} is not an http:// or https:// address with a host")
    if "@" in parts.netloc:
        raise TargetRefused(f"URL {url!r} carries credentials (user@host): put them in the receiver's "
                            "check of Ratecard-Signature instead")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise TargetRefused(f"URL {url!r} has no host")
    try:
        port = parts.port
    except ValueError:
        raise TargetRefused(f"URL {url!r} has an invalid port (a number from 1 to 65535)") from None
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    elif not 1 <= port <= 65535:
        raise TargetRefused(f"URL {url!r} has an invalid port {port} (a number from 1 to 65535)")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port, path, _address_literal(url, host, "[" in parts.netloc))


def _address_literal(url: str, host: str, bracketed: bool) -> Address | None:
    """The host as an address when it is one (every spelling the resolver accepts), else None after
    checking it is a well-formed name."""
    if bracketed:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise TargetRefused(f"URL {url!r} has an invalid IPv6 host") from None
    labels = host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):  # ends in a number: the resolver reads it as IPv4, so do we
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise TargetRefused(f"URL {url!r} has an invalid IPv4 host") from None
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise TargetRefused(f"URL {url!r} has an invalid host name") from None
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in ascii_host.split(".")):
        raise TargetRefused(f"URL {url!r} has an invalid host name (letters, digits, hyphens and dots)")
    return None


def address_problem(address: Address, allow_private: bool) -> str | None:
    """Why a delivery may not go to this address ("a loopback address"), or None."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        problem = address_problem(embedded, allow_private)
        if problem:
            return problem
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if allow_private:
        return None
    # the narrower names first: the private ranges of `ipaddress` include loopback, link-local and reserved
    for kind, flag in (("a loopback", address.is_loopback), ("a link-local", address.is_link_local),
                       ("a reserved", address.is_reserved), ("a private", address.is_private)):
        if flag:
            return f"{kind} address"
    if not address.is_global:  # shared (100.64/10), documentation and benchmarking ranges, …
        return "not a public address"
    return None


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (::ffff:a.b.c.d, 6to4, NAT64), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refuse_unless_allowed(target: Target, address: Address, allow_private: bool, resolved: bool) -> None:
    """Raise TargetRefused when `address` (the target's host, or what it resolved to) is not allowed."""
    problem = address_problem(address, allow_private)
    if problem is None:
        return
    if str(address) == target.host:
        subject = f"{target.host} is"
    else:
        subject = f"{target.host} {'resolves to' if resolved else 'is'} {address},"
    raise TargetRefused(f"{subject} {problem}{_hint(problem)}")


def _hint(problem: str) -> str:
    if problem in ("an unspecified address", "a multicast address"):
        return ""  # never a receiver, allowed or not
    return " (add the endpoint with --allow-private for a receiver on your own network)"


def check_name(target: Target, allow_private: bool) -> None:
    """The checks that need no resolver: an address literal's range, and localhost by name
    (RFC 6761: localhost and *.localhost are always the local machine)."""
    if target.address is not None:
        refuse_unless_allowed(target, target.address, allow_private, resolved=False)
    elif not allow_private and (target.host == "localhost" or target.host.endswith(".localhost")):
        problem = "the local machine, a loopback address"
        raise TargetRefused(f"{target.host} is {problem}{_hint(problem)}")
