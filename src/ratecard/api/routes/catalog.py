"""ratecard's own catalog resources: check and apply a catalog, read plans and subscriptions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from ...catalog import CatalogFileError, check_document
from ...catalog.load import parse_text
from ...ingest.validate import to_micros
from ...store import Store
from ...store.catalogs import save_version
from ..context import environment, get_store, now
from ..errors import ApiError, not_found
from ..pagination import PageParams, envelope
from .events import read_limited_body

router = APIRouter(tags=["catalog"])


async def _document(request: Request) -> Any:
    body = await read_limited_body(request)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "INVALID_FIELD", "the catalog is not UTF-8 text", "body") from None
    if not text.strip():
        raise ApiError(400, "MISSING_FIELD", "the body holds no catalog (send YAML or JSON)", "body")
    kind = request.headers.get("content-type", "")
    try:
        return parse_text(text, "catalog.json" if "json" in kind else "catalog.yaml")
    except CatalogFileError as exc:
        raise ApiError(400, "INVALID_FIELD", str(exc), "body") from None


@router.post("/v1/catalog/check", summary="Validate a catalog (YAML or JSON body); every problem with its path")
async def check_catalog(request: Request, _: str = Depends(environment)) -> dict[str, Any]:
    document, problems = check_document(await _document(request))
    return {"valid": not problems, "problems": [{"path": p.path, "message": p.message} for p in problems]}


@router.post("/v1/catalog", status_code=201, summary="Apply a catalog as a new version (all or nothing)")
async def apply_catalog(request: Request, env: str = Depends(environment),
                        store: Store = Depends(get_store)) -> dict[str, Any]:
    document, problems = check_document(await _document(request))
    if problems:
        first = problems[0]
        raise ApiError(400, "INVALID_FIELD", f"{len(problems)} problem(s); nothing was applied. First: {first}",
                       first.path)
    version, created = await run_in_threadpool(save_version, store, document, to_micros(now()), env)
    return {"version": version, "created": created}


def _catalog(request: Request, store: Store, env: str):
    state = request.app.state.catalogs.current(store, env)
    if state is None:
        raise ApiError(404, "RESOURCE_NOT_FOUND", "no catalog has been applied in this environment")
    return state


@router.get("/v1/catalog", summary="The current catalog version")
def get_catalog(request: Request, env: str = Depends(environment), store: Store = Depends(get_store)) -> dict:
    state = _catalog(request, store, env)
    return {"version": state.version, "catalog": state.catalog.document.model_dump(mode="json")}


@router.get("/v1/plans", summary="Plans of the current catalog")
def list_plans(request: Request, params: PageParams = Depends(), env: str = Depends(environment),
               store: Store = Depends(get_store)) -> dict:
    plans = _catalog(request, store, env).catalog.document.plans
    return envelope(request, plans, params, lambda p: p.model_dump(mode="json"), {"code": lambda p: p.code})


@router.get("/v1/plans/{code}")
def get_plan(code: str, request: Request, env: str = Depends(environment), store: Store = Depends(get_store)) -> dict:
    for plan in _catalog(request, store, env).catalog.document.plans:
        if plan.code == code:
            return plan.model_dump(mode="json")
    raise not_found("plan", code)


@router.get("/v1/subscriptions", summary="Subscriptions of the current catalog")
def list_subscriptions(request: Request, customer: str | None = Query(None), params: PageParams = Depends(),
                       env: str = Depends(environment), store: Store = Depends(get_store)) -> dict:
    items = [s for s in _catalog(request, store, env).catalog.document.subscriptions
             if customer is None or s.customer == customer]
    return envelope(request, items, params, lambda s: s.model_dump(mode="json"),
                    {"reference": lambda s: s.reference, "customer": lambda s: s.customer})


@router.get("/v1/subscriptions/{reference}")
def get_subscription(reference: str, request: Request, env: str = Depends(environment),
                     store: Store = Depends(get_store)) -> dict:
    for subscription in _catalog(request, store, env).catalog.document.subscriptions:
        if subscription.reference == reference:
            return subscription.model_dump(mode="json")
    raise not_found("subscription", reference)
