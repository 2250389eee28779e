"""Who is asking, in which environment, at what moment: the console's counterpart of the API's
Caller, built once per request by the `visitor` dependency (and `acting` for every POST, which
also checks the CSRF token and the role before the action runs)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from ..clock import now as clock_now
from ..services import users
from ..services.errors import InvalidInput
from ..store import Store

SESSION_COOKIE = "ratecard_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class LoginNeeded(Exception):
    """No live session: answered with a redirect to the login page (HX-Redirect for htmx)."""


class Forbidden(Exception):
    """A 403 page saying why: the role does not allow the action, or the CSRF token is missing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Visit:
    request: Request
    store: Store
    session: users.ConsoleSession
    now: datetime

    @property
    def environment(self) -> str:
        return self.session.environment

    def can(self, role: str) -> bool:
        return self.session.can(role)

    @property
    def catalogs(self) -> Any:
        """The API's per-process catalog cache (shared: one build serves both)."""
        return self.request.app.state.catalogs


def store_of(request: Request) -> Store:
    return request.app.state.store


async def visitor(request: Request) -> Visit:
    """The dependency of every page: the session behind the cookie, or LoginNeeded."""
    token = request.cookies.get(SESSION_COOKIE, "")
    moment = clock_now()
    store = store_of(request)
    found = await run_in_threadpool(users.session, store, token, moment) if token else None
    if found is None:
        raise LoginNeeded()
    _refuse_nul([*request.path_params.values(), *(part for item in request.query_params.multi_items() for part in item)])
    return Visit(request, store, found, moment)


def _refuse_nul(values: Any) -> None:
    """No console input needs a NUL character, and PostgreSQL text cannot hold one: a path, query or
    form value with one is a 400 page before it reaches a query (on SQLite it would pass unseen)."""
    if any(isinstance(value, str) and "\x00" in value for value in values):
        raise InvalidInput("the request holds a NUL character, which no field accepts")


def acting(role: str) -> Callable[..., Any]:
    """The dependency of every action (POST): a live session, the session's CSRF token in the form
    (or the X-CSRF-Token header htmx sends), and a role that includes `role`."""

    async def dependency(request: Request, visit: Visit = Depends(visitor)) -> Visit:
        presented = request.headers.get(CSRF_HEADER)
        values: list[Any] = []
        if request.headers.get("content-type", "").lower().startswith(FORM_TYPES):
            form = await request.form()  # parsed once: FastAPI and the upload pages get this same form
            values = [part for item in form.multi_items() for part in item]
            field = form.get(CSRF_FIELD)
            if presented is None:
                presented = field if isinstance(field, str) else None
        if not presented or not hmac.compare_digest(presented.encode(), visit.session.csrf_token.encode()):
            raise Forbidden("this form is missing its security token or it has expired; reload the page and try again")
        if not visit.can(role):
            raise Forbidden(f"this needs the {role} role; you are signed in as a {visit.session.role}")
        _refuse_nul(values)
        return visit

    return dependency


def viewing(role: str) -> Callable[..., Any]:
    """The dependency of a page only a role may see (user management: admin)."""

    async def dependency(visit: Visit = Depends(visitor)) -> Visit:
        if not visit.can(role):
            raise Forbidden(f"this page needs the {role} role; you are signed in as a {visit.session.role}")
        return visit

    return dependency
