"""The Customers page(s)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from ..context import Visit, visitor
from ..render import page

router = APIRouter()


@router.get("/customers")
async def customers_page(visit: Visit = Depends(visitor)) -> Response:
    return page(visit, "customers/index.html", "customers")
