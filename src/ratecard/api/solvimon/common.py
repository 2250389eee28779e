"""Shared pieces of the Solvimon-compatible resources: JSON bodies, references, numbers and
times on the wire, and multi-valued query parameters (`expand[]`, `statuses[]`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import msgspec
import orjson
from fastapi import Request
from starlette.responses import Response

from ...domain.instants import rfc3339
from ...domain.money import MoneyError, to_decimal
from ...domain.numbers import number_problem
from ...services.errors import NotFound
from ...services.resources.model import View
from ..bodies import read_limited_body
from ..errors import ApiError, invalid, not_found

MAX_BODY = 1024 * 1024
R = TypeVar("R")
decode_json = msgspec.json.Decoder(float_hook=Decimal).decode  # numbers with a fraction as exact Decimals
OBJECT_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}


async def json_body(request: Request) -> Any:
    """The request's JSON body (at most 1 MiB, else 413), numbers with a fraction as exact
    Decimals; an empty body is 400 MISSING_FIELD, anything not JSON 400
    UNABLE_TO_PROCESS_INSTRUCTIONS, a NUL character anywhere 400 INVALID_FIELD."""
    body = await read_limited_body(request, MAX_BODY)
    if not body.strip():
        raise ApiError(400, "MISSING_FIELD", "the body is empty: send a JSON object")
    try:
        return reject_nul(decode_json(body))
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise ApiError(400, "UNABLE_TO_PROCESS_INSTRUCTIONS", "the body is not valid JSON (UTF-8)") from None
    except RecursionError:
        raise ApiError(400, "UNABLE_TO_PROCESS_INSTRUCTIONS", "the body's JSON is nested too deeply") from None



def reject_nul(data: Any, path: str = "") -> Any:
    """Refuse a NUL character anywhere in a request body (PostgreSQL text cannot hold one);
    returns the data unchanged."""
    stack = [(data, path)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise invalid(where or None, f"{where or 'the body'} contains a NUL character")
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and "\x00" in key:
                    raise invalid(where or None, "a field name contains a NUL character")
                stack.append((item, f"{where}.{key}" if where else str(key)))
        elif isinstance(value, list):
            stack.extend((item, f"{where}.{index}" if where else str(index)) for index, item in enumerate(value))
    return data


def param(value: str | None, field: str) -> str | None:
    """A path or query parameter that goes into SQL: no NUL characters."""
    if value is not None and "\x00" in value:
        raise invalid(field, f"{field} contains a NUL character")
    return value


def stored(caller: Any, find: Callable[[Any, str, str], R], key: str, noun: str, field: str = "resourceId") -> R:
    """The stored resource a path key names, read by the service's `find(store, environment, key)`:
    a key with a NUL is a 400 on `field`, none found a 404 naming the `noun` (payment methods, usage
    limits)."""
    param(key, field)
    try:
        return find(caller.store, caller.environment, key)
    except NotFound:
        raise not_found(noun, key) from None


def named(key: Any, field: str, noun: str, find: Callable[[str], tuple[Any, ...] | None]) -> Any:
    """The catalog item a body field or query parameter names by id or reference (what `find`
    returns first): a non-empty string without NUL, else a 400 on `field`; none found is a 400 too."""
    if not isinstance(key, str) or not key:
        raise invalid(field, f"{field} must be a {noun}'s id or reference")
    param(key, field)
    found = find(key)
    if found is None:
        raise invalid(field, f"{field}: no {noun} {key[:60]!r}")
    return found[0]


def customer_of(view: View, key: Any, field: str = "customer_id") -> str:
    """The reference of the customer `field` names by id or reference (a 400 on `field` if none)."""
    return str(named(key, field, "customer", view.find_customer).reference)


def parse_decimal(value: Any, field: str) -> Decimal:
    """A decimal from a string (Solvimon sends numbers as strings) or a JSON number; exact."""
    if isinstance(value, bool) or value is None:
        raise invalid(field, f"{field} must be a decimal number written as a string, such as \"12.5\"")
    if isinstance(value, float):
        value = repr(value)
    try:
        # the one syntax of a number written as text, and the one bound of event numbers
        return to_decimal(value, bound=number_problem)
    except MoneyError as exc:
        raise invalid(field, f"{field}: {exc}") from None


def decimal_text(value: Decimal | int) -> str:
    """A plain decimal string (no exponent, no '+'), as Solvimon's number and amount fields want."""
    number = Decimal(value)
    text = format(number, "f")
    return text[1:] if number == 0 and text.startswith("-") else text


def amount(value: Decimal, currency: str) -> dict[str, str]:
    return {"quantity": decimal_text(value), "currency": currency.upper()}


def wire_instant(micros: int | None) -> str | None:
    """An instant as Solvimon's resources show it: RFC 3339 in UTC with Z, like
    domain.instants.rfc3339, but a fraction drops its trailing zeros (`.25Z`, not `.250000Z`),
    the shortest form of the instant, as the published wire examples write it."""
    if micros is None:
        return None
    text = rfc3339(micros)
    if "." in text:
        text = text[:-1].rstrip("0") + "Z"
    return text


def aware(moment: datetime) -> datetime:
    """A naive datetime (what the SDK sends for naive values) is read as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def expansions(request: Request, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The `expand[]` values of a request, each one of `allowed` (else a 400 naming them)."""
    values = tuple(multi(request, "expand"))
    for value in values:
        if value not in allowed:
            among = allowed[0] if len(allowed) == 1 else f"among {', '.join(allowed)}"
            raise invalid("expand", f"expand must be {among}, got {value[:40]!r}")
    return values


def multi(request: Request, name: str) -> list[str]:
    """A list query parameter as the SDK sends it (`name[]=a&name[]=b`), also bare `name` and
    comma-separated values."""
    values: list[str] = []
    for key in (f"{name}[]", name):
        for raw in request.query_params.getlist(key):
            values += [part.strip() for part in raw.split(",") if part.strip()]
    return values
