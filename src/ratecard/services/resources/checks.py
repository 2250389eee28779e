"""Checks of the plain data a configuration edit is given, and the typed errors they raise
(each names the field at fault, as the request wrote it)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ...domain.text import printed_text_problem
from ..errors import AlreadyExists, Conflict, InvalidInput, MissingInput, NotFound

MAX_REFERENCE = 256
CONFIG_STATUSES = ("DRAFT", "ACTIVE", "ARCHIVED", "DEPRECATED")
_NO_WHITESPACE = re.compile(r"\S+")


def invalid(field: str | None, message: str) -> InvalidInput:
    return InvalidInput(message, field=field)


def missing(field: str, message: str | None = None) -> MissingInput:
    return MissingInput(message or f"{field} is required", field=field)


def not_found(what: str, reference: str) -> NotFound:
    return NotFound(f"{what} {reference!r} does not exist")


def already_exists(label: str, reference: str, field: str = "reference") -> AlreadyExists:
    return AlreadyExists(f"a {label} with reference {reference!r} already exists", field=field)


def invalid_operation(message: str, field: str | None = None) -> Conflict:
    return Conflict(message, field=field)


def check_reference(value: Any, field: str = "reference", max_length: int = MAX_REFERENCE,
                    min_length: int = 1) -> str:
    """A reference: a string of min..max characters without whitespace (Solvimon's `^\\S+$`)."""
    if not isinstance(value, str):
        raise invalid(field, f"{field} must be a string")
    if not min_length <= len(value) <= max_length:
        raise invalid(field, f"{field} must be {min_length} to {max_length} characters, got {len(value)}")
    if not _NO_WHITESPACE.fullmatch(value):
        raise invalid(field, f"{field} must not contain whitespace")
    if (problem := printed_text_problem(value)) is not None:
        raise invalid(field, f"{field} {problem}")
    return value


def check_text(value: Any, field: str, max_length: int = 256, *, lines: bool = False) -> str | None:
    """Text the API stores and later prints (a name, a description): bounded, and refused when it
    holds what the catalog refuses in printed words (control characters, bidi overrides; with
    `lines`, tabs and line breaks are allowed)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(field, f"{field} must be a string")
    if len(value) > max_length:
        raise invalid(field, f"{field} must be at most {max_length} characters")
    if (problem := printed_text_problem(value, lines=lines)) is not None:
        raise invalid(field, f"{field} {problem}")
    return value


def choice_or_default(value: Any, field: str, choices: Sequence[str], default: str) -> str:
    """An optional choice (a status a request may leave out): `default` when absent."""
    if value is None:
        return default
    if value not in choices:
        raise invalid(field, f"{field} must be one of {', '.join(choices)}")
    return str(value)


def check_choice(value: Any, field: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise invalid(field, f"{field} must be one of {', '.join(choices)}, got {value!r}")
    return value
