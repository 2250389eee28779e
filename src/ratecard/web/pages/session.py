"""Signing in and out, and the environment switch.

The login form is protected against CSRF by a double-submit token (a cookie and a form field that
must match), since there is no session yet; every later form carries the session's own token.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Depends, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ...clock import now as clock_now
from ...services import users
from ..context import SESSION_COOKIE, Visit, acting, store_of, visitor
from ..render import bare

router = APIRouter()
LOGIN_CSRF_COOKIE = "ratecard_login_csrf"
HOME = "/console/"


def safe_next(target: str | None) -> str:
    """Only a console path: never another site (`//evil.example`, `https://…`) after login."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _login_page(request: Request, next_path: str, error: str | None = None, email: str = "") -> Response:
    token = secrets.token_urlsafe(32)
    response = bare("login.html", next=safe_next(next_path), error=error, email=email, csrf_token=token)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="lax", secure=_secure(request),
                        path="/console/login")
    return response


@router.get("/login")
async def login_form(request: Request, next: str = "") -> Response:
    return _login_page(request, next)


@router.post("/login")
async def login(request: Request, email: str = Form("", max_length=1000), password: str = Form("", max_length=2048),
                csrf_token: str = Form("", max_length=200), next: str = Form("", max_length=2000)) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        return _login_page(request, next, "The form expired; please sign in again.", email)
    try:
        opened = await run_in_threadpool(users.login, store_of(request), email, password, clock_now())
    except users.LoginRefused as refused:
        return _login_page(request, next, refused.reason[:1].upper() + refused.reason[1:] + ".", email)
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:
        # the browser's session from before (anyone's: a token planted in it, say) ends here; only
        # the new token, made at this login, opens a session
        await run_in_threadpool(users.logout, store_of(request), previous)
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, opened.token, httponly=True, samesite="lax", secure=_secure(request),
                        path="/console")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    return response


@router.post("/logout")
async def logout(visit: Visit = Depends(acting("viewer"))) -> Response:
    await run_in_threadpool(users.logout, visit.store, visit.session.token)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


@router.post("/environment")
async def switch_environment(environment: str = Form(..., max_length=16), back: str = Form("", max_length=2000),
                             visit: Visit = Depends(acting("viewer"))) -> Response:
    """Switching changes what every page shows; pages of one environment never show the other's data."""
    await run_in_threadpool(users.switch_environment, visit.store, visit.session, environment, visit.now)
    return RedirectResponse(safe_next(back), status_code=303)


@router.get("/whoami")
async def whoami(visit: Visit = Depends(visitor)) -> dict[str, str]:
    """For scripts and tests: who the cookie belongs to and where they are."""
    return {"email": visit.session.email, "role": visit.session.role, "environment": visit.environment}
