"""Rollback: a promoted cohort goes back to shadow at once.

Its customers' unsent (draft) live invoices are voided, so nothing more goes out from ratecard
(a draft cut ahead, whose invoice date has not come, is removed instead: a void invoice is never
recomputed, and it would keep that period from ratecard after the next promotion, billed by
nobody; the next invoice run recomputes the cut in the customer's mode);
the invoices ratecard already finalized since the promotion are listed with the correction each
needs (a credit note, when the legacy system bills that period again). Nothing final is edited.
From the next invoice run the customers' invoices are shadow again; promote the cohort again
once it is fixed (README: "Fix forward or roll back").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..domain.instants import to_micros
from ..domain.invoice import InvoiceStateError
from ..store import Store
from ..store.cohorts import cutover_applied_at, set_members
from ..store.invoice_states import live_invoices_of
from ..store.invoices import InvoiceChanged, InvoiceRecord, Prefix, change_status, delete_drafts, get_invoice
from .cohorts import CohortError, cohort_status


@dataclass
class RollbackReport:
    cohort: str
    customers: list[str]
    voided: list[InvoiceRecord] = field(default_factory=list)
    removed: list[InvoiceRecord] = field(default_factory=list)  # drafts cut ahead of their invoice date
    issued: list[InvoiceRecord] = field(default_factory=list)  # final live invoices since the promotion
    dry_run: bool = False  # what a rollback would do now: the same lists, nothing changed

    def as_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "cohort": self.cohort,
            "customers": self.customers,
            "voided_drafts": [invoice.display_number for invoice in self.voided],
            "removed_drafts": [invoice.display_number for invoice in self.removed],
            "final_invoices_since_promotion": [{
                "number": invoice.display_number, "customer": invoice.customer, "subscription": invoice.subscription,
                "issue_date": invoice.issue_date, "currency": invoice.currency, "total": f"{invoice.total:f}",
                "correction": f"credit note for {invoice.total:f} {invoice.currency} if the legacy system bills "
                              "these periods again",
            } for invoice in self.issued],
        }


def rollback(store: Store, environment: str, name: str, now: datetime, prefix: Prefix,
             dry_run: bool = False) -> RollbackReport:
    """`dry_run`: the drafts it would void or remove and the final invoices it would list, nothing changed."""
    (status,) = cohort_status(store, environment, name)
    # customers put in a fresh cohort after a full cutover are rolled back from the cutover
    since = status.cohort.promoted_at if status.state == "live" else cutover_applied_at(store, environment)
    if since is None:
        raise CohortError(f"cohort {name!r} is not promoted ({status.state}) and no cutover is recorded; "
                          "there is nothing to roll back")
    if not status.cohort.members:
        raise CohortError(f"cohort {name!r} has no customers")
    members = list(status.cohort.members)
    now_us = to_micros(now)
    report = RollbackReport(name, members, dry_run=dry_run)
    if dry_run:
        for invoice in live_invoices_of(store, environment, members):
            if invoice.status == "draft":
                (report.removed if invoice.boundary_ts > now_us else report.voided).append(
                    get_invoice(store, str(invoice.id), environment))
            elif invoice.status == "final" and invoice.finalized_at is not None and invoice.finalized_at >= since:
                report.issued.append(get_invoice(store, str(invoice.id), environment))
        return report
    set_members(store, environment, name, dict.fromkeys(members), now_us, rolled_back_at=now_us)
    for invoice in live_invoices_of(store, environment, members):
        invoice_id = invoice.id
        if invoice.status == "draft" and invoice.boundary_ts > now_us:
            # not yet due: voiding it would block the cut for good (a void invoice is never
            # recomputed), and a later promotion would make its periods ratecard's again
            draft = get_invoice(store, str(invoice_id), environment)
            if delete_drafts(store, environment, [invoice_id]):
                report.removed.append(draft)
            else:  # finalized by a concurrent `finalize --due` meanwhile
                report.issued.append(get_invoice(store, str(invoice_id), environment))
        elif invoice.status == "draft":
            try:
                report.voided.append(change_status(store, invoice_id, "void", now_us, prefix, environment))
            except (InvoiceChanged, InvoiceStateError):
                # finalized by a concurrent `finalize --due` between the query and now
                report.issued.append(get_invoice(store, str(invoice_id), environment))
        elif invoice.status == "final" and invoice.finalized_at is not None and invoice.finalized_at >= since:
            report.issued.append(get_invoice(store, str(invoice_id), environment))
    return report
