"""The API keys page (admins only): the keys of the session's environment, never their secrets.

The same use cases as `ratecard keys …`. A new key's secret is shown on the answer to the POST that
made it, once; only its hash is stored.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Form, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ...services import keys
from ..context import Visit, acting, viewing
from ..render import page
from .admin_paging import PageNumber, cut, window

router = APIRouter()


@router.get("/keys")
async def keys_page(visit: Visit = Depends(viewing("admin")), page_number: int = PageNumber,
                    done: Literal["revoked"] | None = None) -> Response:
    offset, limit = window(page_number)
    rows = await run_in_threadpool(keys.find, visit.store, visit.environment, offset, limit)
    shown, has_more = cut(rows)
    return page(visit, "admin/keys.html", "keys", keys=shown, page_number=page_number, has_more=has_more, done=done)


@router.post("/keys")
async def create_key(name: str = Form("", max_length=100), visit: Visit = Depends(acting("admin"))) -> Response:
    created = await run_in_threadpool(keys.create, visit.store, visit.environment, visit.now, name.strip() or None)
    return page(visit, "admin/key_created.html", "keys", status_code=201, key=created)


@router.post("/keys/revoke")
async def revoke_key(key_id: str = Query(..., alias="id", min_length=1, max_length=64),
                     visit: Visit = Depends(acting("admin"))) -> Response:
    await run_in_threadpool(keys.revoke, visit.store, key_id, visit.now, visit.environment)
    return RedirectResponse("/console/keys?done=revoked", status_code=303)
