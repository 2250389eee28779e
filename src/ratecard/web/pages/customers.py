"""The Customers pages: the list (searched and paged in the database) and one customer's page."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...services.cached_catalog import cached_catalog
from ...services.customer_views import MAX_SEARCH, CustomerDetail, CustomerList, customer_detail, list_customers
from ..charts import bars
from ..context import Visit, visitor
from ..render import fragment, page

router = APIRouter()
MAX_PAGE = 100_000


def _listing(visit: Visit, search: str, number: int) -> CustomerList:
    _, catalog = cached_catalog(visit.store, visit.environment, visit.catalogs, visit.now)
    return list_customers(visit.store, visit.environment, catalog, visit.now, search=search, page=number)


@router.get("/customers")
async def customers_page(visit: Visit = Depends(visitor), q: str = Query("", max_length=MAX_SEARCH),
                         page_number: int = Query(1, ge=1, le=MAX_PAGE, alias="page")) -> Response:
    listing = await run_in_threadpool(_listing, visit, q, page_number)
    return page(visit, "customers/index.html", "customers", listing=listing)


def _detail(visit: Visit, reference: str, number: int, history: str | None) -> CustomerDetail:
    version, catalog = cached_catalog(visit.store, visit.environment, visit.catalogs, visit.now)
    return customer_detail(visit.store, visit.environment, version, catalog, reference, visit.now, page=number,
                           history_of=history)


# {reference:path}: catalog references may hold a slash
@router.get("/customers/{reference:path}")
async def customer_page(reference: str, visit: Visit = Depends(visitor),
                        page_number: int = Query(1, ge=1, le=MAX_PAGE, alias="page"),
                        history: str | None = Query(None, min_length=1, max_length=256)) -> Response:
    detail = await run_in_threadpool(_detail, visit, reference, page_number, history)
    if history is not None and visit.request.headers.get("hx-request") == "true":
        return fragment(visit, "customers/_history.html", detail=detail)
    chart = None
    if detail.chart is not None:
        chart = bars(detail.chart.labels, detail.chart.series, names=detail.chart.meters,
                     title=f"events per day and meter of {detail.customer.reference} this period")
    return page(visit, "customers/detail.html", "customers", detail=detail, chart=chart)
