"""Shared pieces of the Solvimon-compatible resources: errors, references, numbers and times on
the wire, list envelopes, and multi-valued query parameters (`expand[]`, `statuses[]`)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from urllib.parse import urlencode

import msgspec
import orjson
from fastapi import Query, Request
from starlette.responses import Response

from ...ingest.validate import from_micros
from ..errors import ApiError
from ..routes.events import read_limited_body

Item = TypeVar("Item")

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_PAGE = 1_000_000_000
# numbers in events: plenty for usage and money, bounded so no value can blow up storage or output
MAX_DIGITS = 60
MAX_MAGNITUDE = 40
MAX_REFERENCE = 256
CONFIG_STATUSES = ("DRAFT", "ACTIVE", "ARCHIVED", "DEPRECATED")
_NO_WHITESPACE = re.compile(r"\S+")


MAX_BODY = 1024 * 1024
_decode = msgspec.json.Decoder(float_hook=Decimal).decode
OBJECT_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}


async def json_body(request: Request) -> Any:
    """The request's JSON body (at most 1 MiB, else 413), numbers with a fraction as exact
    Decimals; an empty body is 400 MISSING_FIELD, anything not JSON 400
    UNABLE_TO_PROCESS_INSTRUCTIONS, a NUL character anywhere 400 INVALID_FIELD."""
    body = await read_limited_body(request, MAX_BODY)
    if not body.strip():
        raise ApiError(400, "MISSING_FIELD", "the body is empty: send a JSON object")
    try:
        return reject_nul(_decode(body))
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise ApiError(400, "UNABLE_TO_PROCESS_INSTRUCTIONS", "the body is not valid JSON (UTF-8)") from None
    except RecursionError:
        raise ApiError(400, "UNABLE_TO_PROCESS_INSTRUCTIONS", "the body's JSON is nested too deeply") from None


def invalid(field: str | None, message: str) -> ApiError:
    return ApiError(400, "INVALID_FIELD", message, field)


def missing(field: str, message: str | None = None) -> ApiError:
    return ApiError(400, "MISSING_FIELD", message or f"{field} is required", field)


def not_found(label: str, key: str) -> ApiError:
    return ApiError(404, "RESOURCE_NOT_FOUND", f"{label} {key!r} does not exist")


def already_exists(label: str, reference: str, field: str = "reference") -> ApiError:
    return ApiError(409, "RESOURCE_ALREADY_EXISTS", f"a {label} with reference {reference!r} already exists", field)


def invalid_operation(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, "INVALID_OPERATION", message, field)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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


def check_reference(value: Any, field: str = "reference", max_length: int = MAX_REFERENCE,
                    min_length: int = 1) -> str:
    """A reference: a string of min..max characters without whitespace (Solvimon's `^\\S+$`)."""
    if not isinstance(value, str):
        raise invalid(field, f"{field} must be a string")
    if not min_length <= len(value) <= max_length:
        raise invalid(field, f"{field} must be {min_length} to {max_length} characters, got {len(value)}")
    if not _NO_WHITESPACE.fullmatch(value):
        raise invalid(field, f"{field} must not contain whitespace")
    if _CONTROL.search(value):
        raise invalid(field, f"{field} must not contain control characters")
    return value


def check_text(value: Any, field: str, max_length: int = 256) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(field, f"{field} must be a string")
    if len(value) > max_length:
        raise invalid(field, f"{field} must be at most {max_length} characters")
    return value


def check_choice(value: Any, field: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise invalid(field, f"{field} must be one of {', '.join(choices)}, got {value!r}")
    return value


def parse_decimal(value: Any, field: str) -> Decimal:
    """A decimal from a string (Solvimon sends numbers as strings) or a JSON number; exact."""
    if isinstance(value, bool) or value is None:
        raise invalid(field, f"{field} must be a decimal number written as a string, such as \"12.5\"")
    if isinstance(value, float):
        value = repr(value)
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise invalid(field, f"{field} must be a decimal number, got {str(value)[:40]!r}") from None
    if not number.is_finite():
        raise invalid(field, f"{field} must be a finite decimal number")
    if number and (abs(number.adjusted()) > MAX_MAGNITUDE or len(number.as_tuple().digits) > MAX_DIGITS):
        raise invalid(field, f"{field} is out of range: at most {MAX_DIGITS} digits, magnitude 1e±{MAX_MAGNITUDE}")
    return number


def decimal_text(value: Decimal | int) -> str:
    """A plain decimal string (no exponent, no '+'), as Solvimon's number and amount fields want."""
    number = Decimal(value)
    text = format(number, "f")
    return text[1:] if number == 0 and text.startswith("-") else text


def amount(value: Decimal, currency: str) -> dict[str, str]:
    return {"quantity": decimal_text(value), "currency": currency.upper()}


def iso(micros: int | None) -> str | None:
    """µs since epoch -> RFC 3339 in UTC with Z (fractional seconds only when there are any)."""
    if micros is None:
        return None
    moment = from_micros(micros)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def aware(moment: datetime) -> datetime:
    """A naive datetime (what the SDK sends for naive values) is read as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def multi(request: Request, name: str) -> list[str]:
    """A list query parameter as the SDK sends it (`name[]=a&name[]=b`), also bare `name` and
    comma-separated values."""
    values: list[str] = []
    for key in (f"{name}[]", name):
        for raw in request.query_params.getlist(key):
            values += [part.strip() for part in raw.split(",") if part.strip()]
    return values


class Page:
    """limit/page/order_by/order_direction with Solvimon's conventions: 1-based pages, 10 per page
    by default, at most 100; newest first unless asked otherwise."""

    def __init__(self, limit: int | None = Query(None, description=f"1..{MAX_LIMIT}, default {DEFAULT_LIMIT}"),
                 page: int | None = Query(None, description="1-based page number"),
                 order_by: str | None = Query(None), order_direction: str | None = Query(None)) -> None:
        if limit is not None and not 1 <= limit <= MAX_LIMIT:
            raise invalid("limit", f"limit must be 1 to {MAX_LIMIT}, got {limit}")
        if page is not None and not 1 <= page <= MAX_PAGE:
            raise invalid("page", f"page must be 1 to {MAX_PAGE}, got {page}")
        direction = (order_direction or "desc").lower()
        if direction not in ("asc", "desc"):
            raise invalid("order_direction", f"order_direction must be asc or desc, got {order_direction!r}")
        self.explicit_limit = limit
        self.limit = limit or DEFAULT_LIMIT
        self.page = page or 1
        self.order_by = order_by
        self.descending = direction == "desc"

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def envelope(request: Request, data: list[Any], total: int, page: Page) -> dict[str, Any]:
    """The list envelope {data, links{first,previous,current,next}, limit, page, total_number_of_pages}."""
    pages = math.ceil(total / page.limit) if total else 0

    def link(number: int | None) -> str | None:
        if number is None:
            return None
        query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "limit")]
        query += [("page", str(number)), ("limit", str(page.limit))]
        return f"{request.url.path}?{urlencode(query)}"

    return {
        "data": data,
        "links": {
            "first": link(1),
            "previous": link(page.page - 1) if page.page > 1 else None,
            "current": link(page.page),
            "next": link(page.page + 1) if page.page < pages else None,
        },
        "limit": page.limit,
        "page": page.page,
        "total_number_of_pages": pages,
    }


def paginate(request: Request, items: Sequence[Item], page: Page, render: Callable[[Item], Any],
             sort_keys: dict[str, Callable[[Item], Any]], default_key: str = "created_at",
             everything: bool = False) -> dict[str, Any]:
    """Sort (order_by must name a key of `sort_keys`), slice one page and render it. `everything`:
    the SDK cannot page this list, so unless a limit was given every item comes in one page."""
    key_name = page.order_by or default_key
    if key_name not in sort_keys:
        raise invalid("order_by", f"order_by must be one of {', '.join(sorted(sort_keys))}, got {page.order_by!r}")
    key = sort_keys[key_name]
    ordered = sorted(items, key=key, reverse=page.descending)
    if everything and page.explicit_limit is None:
        page.limit = max(len(ordered), 1)
    chosen = ordered[page.offset : page.offset + page.limit]
    return envelope(request, [render(item) for item in chosen], len(ordered), page)


def sortable(value: Any) -> tuple[int, Any]:
    """A sort key that puts missing values first and never compares None with a value."""
    return (0, "") if value is None else (1, value)
