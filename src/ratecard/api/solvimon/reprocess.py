"""/v1/reprocess: background jobs, stored in the database so every worker reports them.

- NOT_MATCHED: re-match the stored NOT_MATCHED events (optionally one customer's, or a time
  window) against the current catalog;
- CUSTOMER: the same for one customer (required);
- INVOICE: recompute one draft invoice from the current catalog and usage (a final or void
  invoice never changes: the job finishes without touching it).
POST answers 201 with the job (PENDING) at once; GET shows `status` (PENDING, RUNNING, DONE,
FAILED) and `percentage` (0–100), plus what it did in the extension field `ratecard_result`.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from ...domain.instants import to_micros
from ...services.invoices import invoice_or_none
from ...services.reprocess_jobs import KINDS, STATUSES, Job, create_reprocess_job, find_job, find_jobs, run_job
from ...services.resources.checks import check_choice
from ..context import Caller, current_caller
from ..errors import invalid, missing, not_found
from ..pagination import Page, envelope, solvimon_page
from .common import OBJECT_BODY, aware, json_body, json_response, param, wire_instant
from .config import snapshot
from .invoices import ID_PREFIX
from .vocabulary import require_object

router = APIRouter(tags=["reprocess"])
TYPES = KINDS
SECTIONS = {"NOT_MATCHED": "not_matched", "INVOICE": "invoice", "CUSTOMER": "customer"}


def render(job: Job, now_us: int) -> dict[str, Any]:
    """The job as seen at `now_us` (a PENDING job older than its lease shows as failed, …)."""
    job = job.as_seen_at(now_us)
    out: dict[str, Any] = {"object_type": "REPROCESS", "id": job.id, "type": job.type, "status": job.status,
                           "percentage": int(job.percentage), "created_at": wire_instant(job.created_at),
                           "updated_at": wire_instant(job.updated_at), "finished_at": wire_instant(job.finished_at)}
    section = SECTIONS[job.type]
    echo = {key: value for key, value in job.params.items() if key in ("customer_id", "invoice_id", "id")}
    for key in ("start_at", "end_at"):
        if job.params.get(key) is not None:
            echo[key] = wire_instant(job.params[key])
    out[section] = echo
    if job.result is not None:
        out["ratecard_result"] = job.result
    if job.error is not None:
        out["ratecard_error"] = job.error
    return {key: value for key, value in out.items() if value is not None}


def _moment(value: Any, field: str) -> int:
    if not isinstance(value, str):
        raise invalid(field, f"{field} must be an ISO 8601 date-time")
    try:
        return to_micros(aware(datetime.fromisoformat(value.strip())))
    except ValueError:
        raise invalid(field, f"{field}: {value[:60]!r} is not an ISO 8601 date-time") from None


def _params(caller: Caller, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if data.get("type") is None:
        raise missing("type", "type is required: NOT_MATCHED, INVOICE or CUSTOMER")
    kind = check_choice(data["type"], "type", TYPES)
    section_name = SECTIONS[kind]
    section = data.get(section_name) or {}
    if not isinstance(section, dict):
        raise invalid(section_name, f"{section_name} must be an object")
    params: dict[str, Any] = {}
    view = snapshot(caller).view
    if kind == "INVOICE":
        key = section.get("invoice_id") or section.get("id")
        if key is None:
            raise missing(f"{section_name}.invoice_id")
        reference = str(key)[len(ID_PREFIX):] if str(key).startswith(ID_PREFIX) else str(key)
        invoice = invoice_or_none(caller.store, reference, caller.environment)
        if invoice is None:
            raise invalid(f"{section_name}.invoice_id", f"there is no invoice {key!r}")
        params["invoice_id"] = f"{ID_PREFIX}{invoice.id}"
        params["invoice"] = str(invoice.id)
        return kind, params
    customer_key = section.get("customer_id") or section.get("id") or (section.get("customer") or {}).get("id") \
        or (section.get("customer") or {}).get("reference")
    if kind == "CUSTOMER" and customer_key is None:
        raise missing(f"{section_name}.customer_id")
    if customer_key is not None:
        if not isinstance(customer_key, str):
            raise invalid(f"{section_name}.customer_id", "customer_id must be a string")
        found = view.find_customer(customer_key)
        params["customer_id"] = customer_key
        params["customer"] = found[0].reference if found is not None else customer_key
    for key in ("start_at", "end_at"):
        if section.get(key) is not None:
            params[key] = _moment(section[key], f"{section_name}.{key}")
    if params.get("start_at") is not None and params.get("end_at") is not None and params["start_at"] >= params["end_at"]:
        raise invalid(f"{section_name}.end_at", "end_at must be after start_at")
    return kind, params


@router.post("/v1/reprocess", status_code=201, openapi_extra=OBJECT_BODY,
             summary="Start a reprocess job (answers at once; poll GET for progress)")
def start(body: Any = Depends(json_body), caller: Caller = Depends(current_caller)) -> Response:
    kind, params = _params(caller, require_object(body))
    job = create_reprocess_job(caller.store, caller.environment, kind, params, caller.now_us)
    threading.Thread(target=run_job, args=(caller.store, caller.environment, job), name=f"reprocess-{job.id}",
                     daemon=True).start()
    return json_response(render(job, caller.now_us), 201)


@router.get("/v1/reprocess", summary="List reprocess jobs, newest first")
def list_all(request: Request, page: Page = Depends(solvimon_page), type: str | None = Query(None),
             status: str | None = Query(None), expand: list[str] | None = Query(None, alias="expand[]"),
             caller: Caller = Depends(current_caller)) -> Response:
    if type is not None:
        check_choice(type, "type", TYPES)
    if status is not None:
        check_choice(status, "status", STATUSES)
    if page.order_by not in (None, "created_at"):
        raise invalid("order_by", "order_by must be created_at")
    total, jobs = find_jobs(caller.store, caller.environment, type, status, page.limit, page.offset, page.descending)
    return json_response(envelope(request, [render(job, caller.now_us) for job in jobs], total, page))


@router.get("/v1/reprocess/{job_id}", summary="A reprocess job: status and percentage")
def get_one(job_id: str, expand: list[str] | None = Query(None, alias="expand[]"),
            caller: Caller = Depends(current_caller)) -> Response:
    job = find_job(caller.store, caller.environment, param(job_id, "resourceId") or job_id)
    if job is None:
        raise not_found("reprocess job", job_id)
    return json_response(render(job, caller.now_us))

