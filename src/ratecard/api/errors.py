"""The error envelope {type, code, field, message}, as Solvimon's API shapes it."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ..services.errors import AlreadyExists, Conflict, InvalidInput, MissingInput, NoCatalog, NotFound, ServiceError

INVALID_REQUEST = "INVALID_REQUEST"
# pydantic names the branch of a union it tried ("until.date"); users know the field only
TYPE_TAGS = ("date", "datetime", "int", "str", "float", "decimal", "bool", "list", "dict")
API_ERROR = "API_ERROR"


class ApiError(Exception):
    """Raised by handlers; rendered as the error envelope with its status code."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 kind: str = INVALID_REQUEST) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.kind = kind


def error_body(kind: str, code: str, message: str, field: str | None = None) -> bytes:
    return orjson.dumps({"type": kind, "code": code, "field": field, "message": message})


def error_response(status: int, kind: str, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(kind, code, message, field), status_code=status, media_type="application/json",
                    headers=headers)


def invalid(field: str | None, message: str) -> ApiError:
    return ApiError(400, "INVALID_FIELD", message, field)


def missing(field: str, message: str | None = None) -> ApiError:
    return ApiError(400, "MISSING_FIELD", message or f"{field} is required", field)


def not_found(what: str, reference: str) -> ApiError:
    """A 404 naming what was asked for (its first 80 characters: a key is echoed back bounded)."""
    return ApiError(404, "RESOURCE_NOT_FOUND", f"{what} {reference[:80]!r} does not exist")


# How a use case's refusal is answered, by class, most specific first: (class, status, code).
SERVICE_ERRORS: tuple[tuple[type[ServiceError], int, str], ...] = (
    (NoCatalog, 409, INVALID_REQUEST),
    (NotFound, 404, "RESOURCE_NOT_FOUND"),
    (AlreadyExists, 409, "RESOURCE_ALREADY_EXISTS"),
    (Conflict, 400, "INVALID_OPERATION"),
    (MissingInput, 400, "MISSING_FIELD"),
    (InvalidInput, 400, "INVALID_FIELD"),
    (ServiceError, 400, INVALID_REQUEST),
)
# the service's sentence names a CLI command; over HTTP the catalog is missing in the key's environment
NO_CATALOG_MESSAGE = "no catalog has been applied in this environment"


def service_error(exc: ServiceError) -> ApiError:
    """The envelope for a use case's typed error: the first class in SERVICE_ERRORS it is an instance of.
    The envelope names the field on its own, so the message is the error's sentence without it."""
    status, code = next((status, code) for kind, status, code in SERVICE_ERRORS if isinstance(exc, kind))
    message = NO_CATALOG_MESSAGE if isinstance(exc, NoCatalog) else exc.message
    return ApiError(status, code, message, exc.field)


async def service_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return await api_error_handler(request, service_error(exc))


async def api_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.kind, exc.code, exc.message, exc.field)


# pydantic's error types (stable identifiers, unlike its messages) -> what ratecard says
PROBLEMS = {
    "missing": "is required",
    "int_parsing": "must be an integer", "int_type": "must be an integer", "int_from_float": "must be an integer",
    "bool_parsing": "must be true or false", "bool_type": "must be true or false",
    "string_type": "must be a string", "extra_forbidden": "is not a field of this request",
    "model_type": "must be an object", "dict_type": "must be an object", "json_invalid": "is not valid JSON",
    "date_parsing": "must be a date (YYYY-MM-DD) or a date-time with a timezone offset",
    "date_from_datetime_parsing": "must be a date (YYYY-MM-DD) or a date-time with a timezone offset",
    "date_from_datetime_inexact": "must be a date (YYYY-MM-DD) or a date-time with a timezone offset",
    "datetime_parsing": "must be a date (YYYY-MM-DD) or a date-time with a timezone offset",
    "datetime_from_date_parsing": "must be a date (YYYY-MM-DD) or a date-time with a timezone offset",
    "date_type": "must be a date (YYYY-MM-DD) or a date-time with a timezone offset",
    "datetime_type": "must be a date (YYYY-MM-DD) or a date-time with a timezone offset",
}


def _problem(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    context = error.get("ctx") or {}
    if kind == "string_pattern_mismatch" and "pattern" in context:
        return f"must match {context['pattern']}"
    for bound, words in (("ge", "at least"), ("gt", "more than"), ("le", "at most"), ("lt", "less than")):
        if bound in context:
            return f"must be {words} {context[bound]}"
    return PROBLEMS.get(kind, "is not valid")


async def validation_error_handler(_: Request, exc: Exception) -> Response:
    """FastAPI's 422 becomes a 400 naming the first field at fault, in ratecard's words (chosen
    by pydantic's error type, never its message text)."""
    assert isinstance(exc, RequestValidationError)
    errors: list[dict[str, Any]] = list(exc.errors())
    first = errors[0] if errors else {"loc": (), "type": ""}
    location = [str(part) for part in first.get("loc", ())
                if part not in ("body", "query", "path", "header", *TYPE_TAGS) and not str(part).startswith("function-")]
    field = ".".join(location) or None
    code = "MISSING_FIELD" if first.get("type") == "missing" else "INVALID_FIELD"
    return error_response(400, INVALID_REQUEST, code, f"{field or 'request'}: {_problem(first)}", field)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """What the router answers itself, by status code. No route for the path, or none for the
    method (which Starlette calls 405), is a 404 `RESOURCE_NOT_FOUND` saying the operation is not
    implemented: the code Solvimon's SDK knows, as for any Solvimon operation ratecard lacks."""
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status in (404, 405):
        return error_response(404, INVALID_REQUEST, "RESOURCE_NOT_FOUND",
                              f"{request.method} {request.url.path} is not implemented by ratecard")
    codes = {401: "UNAUTHORISED", 413: "PAYLOAD_TOO_LARGE"}
    try:
        fallback = HTTPStatus(status).phrase
    except ValueError:
        fallback = "the request cannot be served"
    return error_response(status, INVALID_REQUEST, codes.get(status, "INVALID_REQUEST"), fallback,
                          headers=exc.headers)


async def unexpected_error_handler(_: Request, exc: Exception) -> Response:
    return Response(unexpected_body(exc), status_code=500, media_type="application/json")


def unexpected_body(exc: Exception) -> bytes:
    """The 500 envelope of an error no handler expected."""
    return error_body(API_ERROR, "INTERNAL_ERROR", f"unexpected error ({type(exc).__name__}); "
                                                   "nothing was half-written; please report it")
