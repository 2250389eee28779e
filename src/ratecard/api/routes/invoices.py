"""ratecard's own invoice resources: runs and exports (Solvimon-shaped invoices live elsewhere)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ...billing.export import invoices_csv, invoices_json
from ...billing.run import MAX_AHEAD, HorizonError, check_horizon, generate_invoices
from ...store.invoices import list_invoices
from ..context import Caller, current_caller
from ..errors import ApiError

router = APIRouter(tags=["invoices"])
EARLIEST_UNTIL, LATEST_UNTIL = date(1970, 1, 1), date(9998, 12, 31)


class InvoiceRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    until: date | datetime


@router.post("/v1/invoice-runs", summary="Create or refresh every invoice due at boundaries <= until")
async def run_invoices(run: InvoiceRun, caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    if isinstance(run.until, datetime) and run.until.tzinfo is None:
        raise ApiError(400, "INVALID_FIELD", "until: a datetime needs a timezone offset", "until")
    day = run.until.date() if isinstance(run.until, datetime) else run.until
    if not EARLIEST_UNTIL <= day <= LATEST_UNTIL:  # the period arithmetic would leave the calendar
        raise ApiError(400, "INVALID_FIELD", f"until: must be between {EARLIEST_UNTIL} and {LATEST_UNTIL}", "until")
    try:
        check_horizon(run.until, caller.now)
    except HorizonError:
        latest = (caller.now + MAX_AHEAD).date()  # the message is the API's, not the CLI's
        raise ApiError(400, "INVALID_FIELD", f"until: {day} is more than a year ahead (latest allowed: {latest}); "
                                             "drafts are cut at boundaries that have come or are near", "until") from None
    state = await run_in_threadpool(caller.catalog)
    if state is None:
        raise ApiError(409, "INVALID_REQUEST", "no catalog has been applied in this environment")
    report = await run_in_threadpool(generate_invoices, caller.store, state.catalog, state.version, run.until,
                                     caller.now, environment=caller.environment)
    return report.as_dict()


@router.get("/v1/exports/invoices", summary="Every invoice with its lines, in the export shape (JSON or CSV)")
def export_invoices(status: str | None = Query(None, pattern="^(draft|final|void)$"),
                    format: str = Query("json", pattern="^(json|csv)$"),
                    caller: Caller = Depends(current_caller)) -> Any:
    invoices = list_invoices(caller.store, caller.environment, status)
    if format == "csv":
        return Response(invoices_csv(invoices), media_type="text/csv")
    return invoices_json(invoices)
