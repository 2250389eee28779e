"""Invoice use cases: generate drafts, list / show / export, and move drafts to final or void."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from ..billing.export import invoice_document, invoices_csv, invoices_json
from ..billing.finalize import DEFAULT_GRACE, DraftQueue, draft_queue, finalize_due
from ..billing.run import MAX_AHEAD, HorizonError, RunReport, check_horizon, generate_invoices
from ..domain.instants import to_micros
from ..domain.invoice import STATUSES, InvoiceStateError, check_transition
from ..store import Store
from ..store.invoice_states import set_hold
from ..store.invoices import InvoiceNotFound, InvoiceRecord, change_status, get_invoice, list_invoices
from . import webhook_events
from .catalog import current_catalog, invoice_prefix
from .errors import Conflict, InvalidInput, NotFound
from .payments import after_finalization

EXPORT_FORMATS = ("json", "csv")
# the invoice documents an entry point shows (`--json`, the HTTP API)
__all__ = ["EXPORT_FORMATS", "Export", "Finalization", "InvoiceDetail", "InvoiceRecord", "check_export_format",
           "check_invoice_status", "check_run_until", "export_invoices", "finalize_due_invoices", "finalize_invoices",
           "find_invoice", "find_invoices", "generate", "hold_invoice", "invoice_or_none", "invoices_json",
           "show_invoice", "void_invoices"]


def check_invoice_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"{status!r} is not one of {', '.join(STATUSES)}", field="status")


def generate(store: Store, until: date | datetime, now: datetime, environment: str = "live", *,
             on_progress: Callable[[int], None] | None = None,
             on_total: Callable[[int], None] | None = None, dry_run: bool = False) -> RunReport:
    """Create or refresh every invoice due at boundaries up to `until` (final invoices are never changed).
    `dry_run`: the same report, nothing written."""
    try:
        check_horizon(until, now)
    except HorizonError as exc:
        raise InvalidInput(str(exc)) from None
    version, catalog = current_catalog(store, environment)
    # each batch of new drafts queues its invoice.created webhooks in the transaction that writes it
    created = None if dry_run else webhook_events.invoices_step(store, environment, "invoice.created", now)
    return generate_invoices(store, catalog, version, until, now, environment=environment, on_progress=on_progress,
                             on_total=on_total, dry_run=dry_run, pause_gc=True, then=created)  # the CLI's process


def check_run_until(until: date | datetime, now: datetime) -> None:
    """A run may reach at most a year ahead: InvalidInput naming `until`, worded for the HTTP API (whose
    messages start with the field; `generate` says it with the CLI's option)."""
    try:
        check_horizon(until, now)
    except HorizonError:
        day = until.date() if isinstance(until, datetime) else until
        latest = (now + MAX_AHEAD).date()
        raise InvalidInput(f"until: {day} is more than a year ahead (latest allowed: {latest}); drafts are cut at "
                           "boundaries that have come or are near", field="until") from None


def find_invoices(store: Store, environment: str = "live", status: str | None = None, *,
                  include_archived: bool = False) -> list[InvoiceRecord]:
    """The environment's invoices (of one status), as the CLI's and the API's lists show them: an
    archived invoice is left out unless `include_archived` (it is still found by find_invoice)."""
    check_invoice_status(status)
    return [invoice for invoice in list_invoices(store, environment, status)
            if include_archived or invoice.archived_at is None]


def find_invoice(store: Store, reference: str, environment: str = "live") -> InvoiceRecord:
    """By number (RC-000001), draft reference (DRAFT-12) or id."""
    try:
        return get_invoice(store, reference, environment)
    except InvoiceNotFound as exc:
        raise NotFound(str(exc)) from None


def invoice_or_none(store: Store, reference: str, environment: str = "live") -> InvoiceRecord | None:
    """By number, draft reference or id; None when there is no such invoice (the caller words the refusal)."""
    try:
        return get_invoice(store, reference, environment)
    except InvoiceNotFound:
        return None


@dataclass
class InvoiceDetail:
    invoice: InvoiceRecord
    corrected: InvoiceRecord | None  # the invoice a credit note or replacement corrects

    def as_dict(self) -> dict[str, Any]:
        return invoice_document(self.invoice)


def show_invoice(store: Store, reference: str, environment: str = "live") -> InvoiceDetail:
    invoice = find_invoice(store, reference, environment)
    corrected = (get_invoice(store, str(invoice.corrects), environment) if invoice.corrects is not None else None)
    return InvoiceDetail(invoice, corrected)


@dataclass
class Export:
    text: str
    count: int


def check_export_format(export_format: str) -> None:
    if export_format not in EXPORT_FORMATS:
        raise InvalidInput(f"{export_format!r} is not one of {', '.join(EXPORT_FORMATS)}", field="format")


def export_invoices(store: Store, export_format: str = "json", environment: str = "live",
                    status: str | None = None) -> Export:
    """Every invoice with its lines: a JSON array of invoice documents, or CSV with one row per line."""
    check_export_format(export_format)
    invoices = find_invoices(store, environment, status, include_archived=True)  # the books: every document
    if export_format == "json":
        text = orjson.dumps(invoices_json(invoices), option=orjson.OPT_INDENT_2).decode() + "\n"
    else:
        text = invoices_csv(invoices)
    return Export(text, len(invoices))


# ---------------------------------------------------------------- draft -> final | void


@dataclass
class Finalization:
    """What finalizing did, or on a dry run what it would do (`planned`: each draft with the number it
    would get, if no other process finalizes an invoice meanwhile)."""

    dry_run: bool
    finalized: list[InvoiceRecord] = field(default_factory=list)
    planned: list[tuple[InvoiceRecord, str]] = field(default_factory=list)
    on_hold: int = 0
    within_grace: int = 0
    skipped_by_other_process: int = 0

    def planned_json(self) -> list[dict[str, Any]]:
        return [{**invoice_document(invoice), "draft": invoice.display_number, "number": number}
                for invoice, number in self.planned]

    def as_dict(self) -> dict[str, Any]:
        """The --due document: finalized invoices (on a dry run, those that would be) and what waits."""
        return {"dry_run": self.dry_run, "finalized": invoices_json(self.finalized),
                **({"would_finalize": self.planned_json()} if self.dry_run else {}),
                "on_hold": self.on_hold, "within_grace": self.within_grace,
                "skipped_by_other_process": self.skipped_by_other_process}


def _next_numbers(store: Store, environment: str, prefix: Callable[[str], str],
                  invoices: Sequence[InvoiceRecord]) -> list[str]:
    """The numbers the invoices would take if finalized in this order: each prefix's sequence is
    gapless, so it continues after the highest number issued with that prefix."""
    issued = [invoice.number for invoice in list_invoices(store, environment) if invoice.number]
    last: dict[str, int] = {}
    numbers = []
    for invoice in invoices:
        code = prefix(invoice.customer)
        if code not in last:
            tails = [number[len(code) + 1:] for number in issued if number.startswith(f"{code}-")]
            last[code] = max((int(tail) for tail in tails if tail.isascii() and tail.isdigit()), default=0)
        last[code] += 1
        numbers.append(f"{code}-{last[code]:06d}")
    return numbers


def _checked_drafts(store: Store, references: Sequence[str], target: str, environment: str,
                    queue: DraftQueue | None) -> list[InvoiceRecord]:
    """Every reference found and allowed to move, before anything changes: a typo changes nothing."""
    invoices = [find_invoice(store, reference, environment) for reference in references]
    for reference, invoice in zip(references, invoices, strict=True):
        if invoice.status == target:  # run twice (a retried script): say so, and under which number
            known_as = f" as {invoice.display_number}" if invoice.display_number != reference else ""
            raise Conflict(f"invoice {reference} is {target} already{known_as}; nothing was changed")
        try:
            check_transition(invoice.status, target)
        except InvoiceStateError as exc:
            raise Conflict(f"invoice {reference}: {exc}; nothing was changed") from None
        if target == "final" and invoice.mode == "shadow":
            raise Conflict(f"invoice {reference} is a shadow invoice (the legacy system bills its periods): it is "
                           "never finalized; nothing was changed")
        if queue is not None and invoice.id in queue.held:
            raise Conflict(f"invoice {reference} is on hold: release it first (`ratecard invoices release "
                           f"{reference}`); nothing was changed")
    return invoices


def _move(store: Store, references: Sequence[str], invoices: Sequence[InvoiceRecord], target: str, now: datetime,
          environment: str, then: Callable[[Any, InvoiceRecord], None] | None = None) -> list[InvoiceRecord]:
    prefix = invoice_prefix(store, environment)
    done: list[InvoiceRecord] = []
    for reference, invoice in zip(references, invoices, strict=True):
        try:
            done.append(change_status(store, invoice.id, target, to_micros(now), prefix, environment, then=then))
        except (InvoiceStateError, RuntimeError) as exc:  # another process moved it after the check
            changed = "the invoices listed above were changed" if done else "nothing was changed"
            raise Conflict(f"invoice {reference}: {exc}; {changed}",
                           details=[f"{d.display_number} is now {d.status}" for d in done]) from None
    return done


def finalize_invoices(store: Store, references: Sequence[str], now: datetime, environment: str = "live", *,
                      dry_run: bool = False) -> Finalization:
    """Finalize the drafts named (all or none are checked first); each gets the next gapless number.
    Shadow drafts and drafts on hold are refused."""
    queue = draft_queue(store, now, DEFAULT_GRACE, environment)
    invoices = _checked_drafts(store, references, "final", environment, queue)
    if dry_run:
        numbers = _next_numbers(store, environment, invoice_prefix(store, environment), invoices)
        return Finalization(True, planned=list(zip(invoices, numbers, strict=True)))
    # each invoice.finalized webhook is queued in the transaction that finalizes its invoice
    finalized = _move(store, references, invoices, "final", now, environment,
                      webhook_events.invoice_step(store, environment, "invoice.finalized", now))
    after_finalization(store, finalized, now, environment)  # the payment outbox: no Stripe call here
    return Finalization(False, finalized=finalized)


def finalize_due_invoices(store: Store, now: datetime, grace: timedelta = DEFAULT_GRACE, environment: str = "live",
                          *, dry_run: bool = False) -> Finalization:
    """Finalize every live draft past its grace period and not on hold (safe from cron, and when two run at
    once). A dry run reads the same queue and writes nothing."""
    prefix = invoice_prefix(store, environment)
    if not dry_run:
        report = finalize_due(store, now, prefix, grace, environment,
                              webhook_events.invoice_step(store, environment, "invoice.finalized", now))
        after_finalization(store, report.finalized, now, environment)
        return Finalization(False, finalized=report.finalized, on_hold=report.on_hold,
                            within_grace=report.within_grace, skipped_by_other_process=report.skipped_by_other_process)
    queue = draft_queue(store, now, grace, environment)
    drafts = {invoice.id: invoice for invoice in list_invoices(store, environment, "draft")}
    due = [drafts[invoice_id] for invoice_id in queue.due if invoice_id in drafts]
    numbers = _next_numbers(store, environment, prefix, due)
    return Finalization(True, planned=list(zip(due, numbers, strict=True)), on_hold=len(queue.held),
                        within_grace=queue.within_grace)


def void_invoices(store: Store, references: Sequence[str], now: datetime, environment: str = "live") -> list[InvoiceRecord]:
    """Void drafts (all are checked first; a final invoice is corrected by a credit note, never voided)."""
    invoices = _checked_drafts(store, references, "void", environment, None)
    return _move(store, references, invoices, "void", now, environment)


def hold_invoice(store: Store, reference: str, hold: bool, environment: str = "live") -> InvoiceRecord:
    """Put a draft on hold (refreshed, never finalized) or release it."""
    invoice = find_invoice(store, reference, environment)
    if not set_hold(store, invoice.id, hold, environment):
        raise Conflict(f"invoice {reference}: only a draft can be {'held' if hold else 'released'} "
                       f"(it is {invoice.status})")
    return invoice
