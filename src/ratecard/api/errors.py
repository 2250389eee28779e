"""The error envelope {type, code, field, message}, as Solvimon's API shapes it."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

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
    return ApiError(404, "RESOURCE_NOT_FOUND", f"{what} {reference!r} does not exist")


def already_exists(label: str, reference: str, field: str = "reference") -> ApiError:
    return ApiError(409, "RESOURCE_ALREADY_EXISTS", f"a {label} with reference {reference!r} already exists", field)


def invalid_operation(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, "INVALID_OPERATION", message, field)


async def api_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.kind, exc.code, exc.message, exc.field)


async def validation_error_handler(_: Request, exc: Exception) -> Response:
    """FastAPI's 422 becomes a 400 naming the first field at fault."""
    assert isinstance(exc, RequestValidationError)
    errors: list[dict[str, Any]] = list(exc.errors())
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    location = [str(part) for part in first.get("loc", ())
                if part not in ("body", "query", "path", "header", *TYPE_TAGS) and not str(part).startswith("function-")]
    field = ".".join(location) or None
    missing = first.get("type") == "missing"
    code = "MISSING_FIELD" if missing else "INVALID_FIELD"
    message = f"{field or 'request'}: {'is required' if missing else first.get('msg', 'is invalid')}"
    return error_response(400, INVALID_REQUEST, code, message, field)


async def http_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "RESOURCE_NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 401: "UNAUTHORISED", 413: "PAYLOAD_TOO_LARGE"}
    return error_response(exc.status_code, INVALID_REQUEST, codes.get(exc.status_code, "INVALID_REQUEST"),
                          str(exc.detail))


async def unexpected_error_handler(_: Request, exc: Exception) -> Response:
    return error_response(500, API_ERROR, "INTERNAL_ERROR", f"unexpected error ({type(exc).__name__}); "
                                                             "nothing was half-written; please report it")
