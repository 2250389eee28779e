"""The typed errors of the use cases: one base class, one subclass per kind of refusal.

Each front end maps them the same way for every use case: the CLI exits 2 (1 for Refused) with
the message as one sentence on stderr; the HTTP API answers 4xx. `str(error)` is that sentence.
A `field` names the input at fault (the CLI shows it as its option, `--field`); `details` are
the individual problems behind a summary (each printed on its own line before the sentence).
"""

from __future__ import annotations

from collections.abc import Iterable


class ServiceError(Exception):
    """A use case could not do what was asked; nothing was written unless the message says so."""

    def __init__(self, message: str, *, field: str | None = None, details: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = tuple(details)

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidInput(ServiceError):
    """An argument or a file given to the use case is not acceptable."""


class MissingInput(InvalidInput):
    """A required argument or field was not given."""


class NotFound(ServiceError):
    """The thing named (an invoice, a cohort, a key, a rule …) does not exist."""


class Conflict(ServiceError):
    """The thing exists but its state does not allow this (a final invoice cannot be voided)."""


class AlreadyExists(Conflict):
    """Something with that reference exists already (creating it again is refused)."""


class NoCatalog(NotFound):
    """No catalog has been applied yet, and the use case needs one."""


class Refused(Conflict):
    """A safety check refused an otherwise valid request (a cutover that would bill a period twice);
    the caller may insist (--force). The CLI exits 1 for it: the command ran and found a problem."""
