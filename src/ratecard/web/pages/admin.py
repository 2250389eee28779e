"""The Users page(s)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from ..context import Visit, viewing
from ..render import page

router = APIRouter()


@router.get("/users")
async def admin_page(visit: Visit = Depends(viewing("admin"))) -> Response:
    return page(visit, "admin/index.html", "users")
