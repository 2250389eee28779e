"""Reprocess jobs: the work behind a job started over the HTTP API, reported in the jobs table.

Kinds: NOT_MATCHED and CUSTOMER re-match stored unmatched events (one customer's, or a time
window) against the applied catalog; INVOICE recomputes one draft invoice from the applied
catalog and usage (a final or void invoice never changes: the job finishes without touching it).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from ..billing.run import generate_invoices
from ..catalog import Catalog, build_catalog
from ..catalog.schema import CatalogDocument
from ..clock import now
from ..domain.instants import from_micros, to_micros
from ..ingest.reprocess import reprocess
from ..store import Store
from ..store.catalogs import load_version
from ..store.invoices import get_invoice
from ..store.jobs import DONE, FAILED, RUNNING, STATUSES, Job, create_job, get_job, list_jobs, update_job
from .entitlements import usage_changed

log = logging.getLogger(__name__)
KINDS = ("NOT_MATCHED", "INVOICE", "CUSTOMER")
__all__ = ["KINDS", "STATUSES", "Job", "create_reprocess_job", "find_job", "find_jobs", "refresh_invoice", "run_job"]


def create_reprocess_job(store: Store, environment: str, kind: str, params: dict[str, Any], now_us: int) -> Job:
    """Record a PENDING job; `run_job` does its work. An INVOICE job names its invoice by id in
    params["invoice"] (and as the caller wrote it in params["invoice_id"]); the others may name a
    customer (params["customer"]) and a window (params["start_at"], params["end_at"], microseconds)."""
    return create_job(store, environment, kind, params, now_us)


def find_job(store: Store, environment: str, job_id: str) -> Job | None:
    return get_job(store, environment, job_id)


def find_jobs(store: Store, environment: str, kind: str | None, status: str | None, limit: int, offset: int,
              newest_first: bool) -> tuple[int, list[Job]]:
    """(how many match, one page of them) in creation order."""
    return list_jobs(store, environment, kind, status, limit, offset, newest_first)


def run_job(store: Store, environment: str, job: Job) -> None:
    """The job's work; progress and outcome go to the jobs table. It outlives the request that
    started it, so it reads the clock itself as it goes."""
    try:
        update_job_status(store, job, status=RUNNING)
        loaded = load_version(store, environment)
        version, document = loaded if loaded is not None else (0, CatalogDocument())  # nothing can match yet
        catalog = build_catalog(document)
        params = job.params
        if job.type == "INVOICE":
            result = refresh_invoice(store, environment, catalog, version, params["invoice"],
                                     params.get("invoice_id", params["invoice"]))
        else:
            def progress(done: int, total: int) -> None:
                update_job_status(store, job, percentage=done * 100 // total if total else 100)

            counts = reprocess(store, catalog, now(), environment, customer=params.get("customer"),
                               start_us=params.get("start_at"), end_us=params.get("end_at"), on_progress=progress)
            usage_changed(environment, [params["customer"]] if params.get("customer") else None)
            # the job's published result keeps its shape: checked, matched, still_unmatched
            result = {key: counts[key] for key in ("checked", "matched", "still_unmatched")}
        update_job_status(store, job, status=DONE, percentage=100, result=result)
    except Exception as exc:  # noqa: BLE001 - the job reports every failure instead of dying silently
        log.exception("reprocess job %s failed", job.id)
        update_job_status(store, job, status=FAILED, error=_failure(exc))


def update_job_status(store: Store, job: Job, **changes: Any) -> None:
    update_job(store, job.id, to_micros(now()), **changes)


def _failure(exc: Exception) -> str:
    """What the job shows: ratecard's own errors say what went wrong in words meant for users;
    anything else (a library's, a driver's) is named by class only, its detail goes to the log."""
    if type(exc).__module__.startswith("ratecard."):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: unexpected error; see the server log"


def refresh_invoice(store: Store, environment: str, catalog: Catalog, version: int, invoice_id: str,
                    invoice_key: str) -> dict[str, Any]:
    """Recompute one draft from the catalog and usage, for its subscription only; the result names
    the invoice as `invoice_key` (the way the job was asked for it)."""
    invoice = get_invoice(store, invoice_id, environment)
    if invoice.status != "draft":
        return {"invoice": invoice_key, "changed": False, "note": f"a {invoice.status} invoice never changes"}
    subscription = catalog.subscriptions.get(invoice.subscription)
    if subscription is None:
        return {"invoice": invoice_key, "changed": False,
                "note": f"subscription {invoice.subscription!r} is no longer in the catalog"}
    only = dataclasses.replace(catalog, subscriptions={subscription.reference: subscription})
    # owned: the other subscriptions' drafts are not this job's (a run that did not see them
    # would take them for drafts their subscription no longer cuts, and remove them)
    report = generate_invoices(store, only, version, from_micros(invoice.boundary_ts), now(), environment=environment,
                               owned={subscription.reference})
    return {"invoice": invoice_key, "changed": bool(report.updated or report.created), **report.as_dict()}
