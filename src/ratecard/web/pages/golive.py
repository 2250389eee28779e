"""The Go-live cockpit page(s)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from ..context import Visit, visitor
from ..render import page

router = APIRouter()


@router.get("/golive")
async def golive_page(visit: Visit = Depends(visitor)) -> Response:
    return page(visit, "golive/index.html", "golive")
