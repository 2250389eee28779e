"""Go-live cockpit: fix forward or roll back? The decision tree with the current state beside it."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...services.rollback_guide import rollback_guide
from ..context import Visit, visitor
from ..render import page

router = APIRouter()


@router.get("/golive/rollback")
async def rollback_page(visit: Visit = Depends(visitor)) -> Response:
    guide = await run_in_threadpool(rollback_guide, visit.store, visit.environment)
    return page(visit, "golive/rollback.html", "golive", tab="rollback", guide=guide)
