"""ratecard's own catalog resources: check and apply a catalog, read plans (subscriptions: subscriptions.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from ...catalog import CatalogFileError
from ...catalog.load import parse_text
from ...services import catalog as catalogs
from ...services.rollups import rebuild_in_background
from ..bodies import read_limited_body
from ..caches import CatalogState
from ..context import Caller, current_caller
from ..errors import ApiError, not_found
from ..pagination import Page, paginate, ratecard_page

router = APIRouter(tags=["catalog"])


async def _checked(request: Request) -> catalogs.CatalogCheck:
    """The body parsed and validated in a worker thread: a catalog can take real CPU to check
    (the loader bounds it), and the event loop must keep serving every other request meanwhile."""
    body = await read_limited_body(request)
    return await run_in_threadpool(_parse_and_check, body, request.headers.get("content-type", ""))


def _parse_and_check(body: bytes, kind: str) -> catalogs.CatalogCheck:
    return catalogs.check_catalog(_document(body, kind), "body")


def _document(body: bytes, kind: str) -> Any:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "INVALID_FIELD", "the catalog is not UTF-8 text", "body") from None
    if not text.strip():
        raise ApiError(400, "MISSING_FIELD", "the body holds no catalog (send YAML or JSON)", "body")
    try:
        return parse_text(text, "catalog.json" if "json" in kind else "catalog.yaml")
    except CatalogFileError as exc:
        raise ApiError(400, "INVALID_FIELD", str(exc), "body") from None


@router.post("/v1/catalog/check", summary="Validate a catalog (YAML or JSON body); every problem with its path")
async def check_catalog(request: Request, _: Caller = Depends(current_caller)) -> dict[str, Any]:
    checked = await _checked(request)
    document = checked.as_dict()
    return {"valid": checked.valid, "problems": document["problems"], "warnings": document["warnings"]}


@router.post("/v1/catalog", status_code=201, summary="Apply a catalog as a new version (all or nothing)")
async def apply_catalog(request: Request, caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    checked = await _checked(request)
    if checked.problems:
        first = checked.problems[0]
        raise ApiError(400, "INVALID_FIELD", f"{len(checked.problems)} problem(s); nothing was applied. First: {first}",
                       first.path)
    applied = await run_in_threadpool(catalogs.apply_checked, caller.store, checked, caller.now, caller.environment)
    if applied["created"]:  # meters whose definition changed: their roll-ups are rebuilt in the background
        await run_in_threadpool(rebuild_in_background, caller.store, caller.environment, caller.now)
    return {"version": applied["version"], "created": applied["created"]}


def _catalog(caller: Caller) -> CatalogState:
    state = caller.catalog()
    if state is None:
        raise ApiError(404, "RESOURCE_NOT_FOUND", "no catalog has been applied in this environment")
    return state


@router.get("/v1/catalog", summary="The current catalog version")
def get_catalog(caller: Caller = Depends(current_caller)) -> dict:
    state = _catalog(caller)
    return {"version": state.version, "catalog": state.catalog.document.model_dump(mode="json")}


@router.get("/v1/plans", summary="Plans of the current catalog")
def list_plans(request: Request, page: Page = Depends(ratecard_page), caller: Caller = Depends(current_caller)) -> dict:
    plans = _catalog(caller).catalog.document.plans
    return paginate(request, plans, page, lambda p: p.model_dump(mode="json"), {"code": lambda p: p.code})


@router.get("/v1/plans/{code}")
def get_plan(code: str, caller: Caller = Depends(current_caller)) -> dict:
    for plan in _catalog(caller).catalog.document.plans:
        if plan.code == code:
            return plan.model_dump(mode="json")
    raise not_found("plan", code)
