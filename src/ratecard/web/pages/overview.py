"""The overview (/console/): money invoiced, drafts waiting, the last day's ingestion, open alerts."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...services.overview import ACTIVITY_SERIES, BUCKET_MINUTES, overview
from ..charts import bars
from ..context import Visit, visitor
from ..render import page

router = APIRouter()


@router.get("/")
async def overview_page(visit: Visit = Depends(visitor)) -> Response:
    figures = await run_in_threadpool(overview, visit.store, visit.now, visit.environment)
    activity = figures.activity
    chart = bars(activity.labels, [activity.series[name] for name in ACTIVITY_SERIES], names=ACTIVITY_SERIES,
                 title=f"events per {BUCKET_MINUTES} minutes over the last 24 hours (UTC)")
    return page(visit, "overview/index.html", "overview", figures=figures, chart=chart, series=ACTIVITY_SERIES,
                bucket_minutes=BUCKET_MINUTES)
