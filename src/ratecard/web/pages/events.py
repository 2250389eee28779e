"""The events explorer (/console/events) and reprocessing the unmatched events (operator)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from ...services.errors import InvalidInput, NoCatalog
from ...services.event_explorer import MAX_PAGE, EventFilters, EventPage, explore
from ...services.events import reprocess_events
from ..context import Visit, acting, visitor
from ..render import page

router = APIRouter()
BASE = "/console/events"
NOTICES = ("no-catalog",)  # the notices a link may ask for; "reprocessed" is only ever the POST's own answer


@router.get("/events")
async def events_page(
    visit: Visit = Depends(visitor),
    customer: str = Query("", max_length=300),
    meter: str = Query("", max_length=300),
    event_id: str = Query("", max_length=300),
    start: str = Query("", alias="from", max_length=64),
    end: str = Query("", alias="until", max_length=64),
    status: str = Query("", max_length=32),
    page_number: int = Query(1, alias="page", ge=1, le=MAX_PAGE),
    done: str = Query("", max_length=32),
) -> Response:
    filters = EventFilters(customer, meter, event_id, start, end, status)
    return await _explorer(visit, filters, page_number, done if done in NOTICES else "", {})


async def _explorer(visit: Visit, filters: EventFilters, page_number: int, notice: str,
                    counts: dict[str, int]) -> Response:
    """The page; a filter that cannot be understood ('yesterday' as a date) is refused on the page
    itself (400) with the form as typed, not on an error page that drops what was typed."""
    try:
        found = await run_in_threadpool(explore, visit.store, visit.now, filters, page_number, visit.environment)
    except InvalidInput as refused:
        return page(visit, "events/index.html", "events", status_code=400, found=EventPage([], 1, False, 0, {}),
                    filters=filters, params=filters.as_params(), base=BASE, notice="", counts=counts,
                    refusal=refused.message)
    return page(visit, "events/index.html", "events", found=found, filters=filters, params=filters.as_params(),
                base=BASE, notice=notice, counts=counts, refusal=None)


@router.post("/events/reprocess")
async def reprocess(visit: Visit = Depends(acting("operator"))) -> Response:
    """The same use case as `ratecard events reprocess`: every unmatched event re-matched against
    the environment's current catalog."""
    try:
        result = await run_in_threadpool(reprocess_events, visit.store, visit.now, visit.environment)
    except NoCatalog:
        return RedirectResponse(f"{BASE}?done=no-catalog", status_code=303)
    # the counts are shown on the answer itself, never carried in a link: a crafted link could
    # otherwise show any numbers under "Reprocessed"
    counts = {"checked": int(result["checked"]), "matched": int(result["matched"]), "late": int(result["late"]),
              "unmatched": sum(result["still_unmatched"].values())}
    return await _explorer(visit, EventFilters(), 1, "reprocessed", counts)
