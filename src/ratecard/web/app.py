"""The console application, mounted by the API app at /console.

It shares the API's store, catalog cache and metrics (set by the API's lifespan), has its own
guard (bounded bodies, security headers) and answers errors as pages, not JSON.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from ..services.errors import NotFound, ServiceError
from .context import Forbidden, LoginNeeded
from .guard import ConsoleGuard
from .pages import ROUTERS
from .render import bare

PREFIX = "/console"


def create_console() -> FastAPI:
    console = FastAPI(title="ratecard console", docs_url=None, redoc_url=None, openapi_url=None)
    console.add_middleware(ConsoleGuard)
    console.mount("/static", StaticFiles(directory=str(files("ratecard.web") / "static")), name="static")
    for router in ROUTERS:
        console.include_router(router)
    console.add_exception_handler(LoginNeeded, _login_needed)
    console.add_exception_handler(Forbidden, _forbidden)
    console.add_exception_handler(ServiceError, _refused)
    console.add_exception_handler(RequestValidationError, _bad_request)
    console.add_exception_handler(StarletteHTTPException, _http_error)
    console.add_exception_handler(Exception, _failed)
    return console


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


async def _login_needed(request: Request, _: Any) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"{PREFIX}/login?next={_quote(target)}" if request.method == "GET" else f"{PREFIX}/login"
    if _is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


async def _forbidden(request: Request, error: Any) -> Response:
    return _problem(request, 403, "Not allowed", error.reason)


async def _refused(request: Request, error: Any) -> Response:
    status = 404 if isinstance(error, NotFound) else 400
    return _problem(request, status, "Not found" if status == 404 else "Refused", error.message)


async def _bad_request(request: Request, error: Any) -> Response:
    fields = ", ".join(".".join(str(part) for part in issue.get("loc", ())[1:]) for issue in error.errors()[:5])
    return _problem(request, 400, "Bad request", f"check these fields: {fields}" if fields else "the request is malformed")


async def _http_error(request: Request, error: Any) -> Response:
    titles = {404: "Not found", 405: "Not allowed here", 413: "Too large"}
    return _problem(request, error.status_code, titles.get(error.status_code, "Error"), str(error.detail))


async def _failed(request: Request, _: Exception) -> Response:
    """A defect: a page that says where the details are (the server logs the traceback as before),
    never the exception's text, which may hold data of another request or of the database."""
    return _problem(request, 500, "Something went wrong",
                    "The server failed to answer this request; the details are in the server's log. "
                    "Try again, or go back to where you were.")


def _problem(request: Request, status: int, title: str, reason: str) -> HTMLResponse:
    if _is_htmx(request):
        return bare("problem_fragment.html", status_code=status, title=title, reason=reason)
    return bare("problem.html", status_code=status, title=title, reason=reason)


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")
