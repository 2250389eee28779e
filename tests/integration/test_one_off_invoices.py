"""One-off invoices (a draft written by hand for a customer) and the upkeep of one invoice, through
the services the CLI and the API share, on both stores.

Hand-computed examples (customer acme: 19 % tax, rounded once per invoice, half up):
  3 x 120.005 = 360.015 -> 360.02; FIXED 99.99; subtotal 460.01; tax 87.4019 -> 87.40; total 547.41.
With the entity's tax rounded per line at 10 %: two lines of 0.05 each carry 0.005 -> 0.01 of tax,
0.02 in all (rounded once on the invoice it would be 0.010 -> 0.01).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratecard.domain.money import quantize
from ratecard.domain.tax import invoice_tax
from ratecard.services import invoice_upkeep, invoices, payments
from ratecard.services.errors import Conflict, InvalidInput, NotFound
from ratecard.services.one_off_invoices import (
    add_line,
    create_one_off_invoice,
    delete_line,
    edit_line,
    line_input,
    retotal_one_off,
)
from ratecard.store import Store
from ratecard.store.catalogs import save_version
from ratecard.store.invoices import InvoiceRecord

from ..stripe_standin import StripeStandIn
from .payments_workspace import billed_workspace, later
from .scenario import CATALOG, NOW, catalog_document, workspace

PER_LINE = CATALOG.replace("currency: EUR}", "currency: EUR, tax_rounding: line}", 1).replace(
    'tax_rate: "19"', 'tax_rate: "10"')
assert "tax_rounding: line" in PER_LINE


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened, _ = workspace(db_url)
    try:
        yield opened
    finally:
        opened.dispose()


def _money(invoice: InvoiceRecord) -> tuple[str, str, str, list[str]]:
    return (f"{invoice.subtotal:f}", f"{invoice.tax:f}", f"{invoice.total:f}",
            [f"{line.amount:f}" for line in invoice.lines])


def test_a_one_off_invoice_is_priced_by_hand_computed_rules(store: Store) -> None:
    draft = create_one_off_invoice(store, "acme", [line_input(description="Consulting", unit_amount="120.005",
                                                              quantity="3"),
                                                   line_input(description="Set-up", unit_amount="99.99")], NOW)
    assert (draft.status, draft.is_one_off, draft.currency, draft.display_number) == ("draft", True, "EUR", "DRAFT-1")
    assert _money(draft) == ("460.01", "87.40", "547.41", ["360.02", "99.99"])
    edited = edit_line(store, "DRAFT-1", 0, line_input(description="Consulting", unit_amount="100.00",
                                                       quantity="2.5"), NOW)
    assert _money(edited) == ("349.99", "66.50", "416.49", ["250.00", "99.99"])  # 66.4981 -> 66.50
    deduction = add_line(store, "DRAFT-1", line_input(description="Goodwill", unit_amount="49.99", deduction=True),
                         NOW)
    assert _money(deduction) == ("300.00", "57.00", "357.00", ["250.00", "99.99", "-49.99"])
    removed = delete_line(store, "DRAFT-1", 1, NOW)
    assert _money(removed) == ("200.01", "38.00", "238.01", ["250.00", "-49.99"])  # 38.0019 -> 38.00
    with pytest.raises(InvalidInput):  # the deductions never take an invoice below zero
        add_line(store, "DRAFT-1", line_input(description="Too much", unit_amount="300", deduction=True), NOW)
    with pytest.raises(NotFound):
        delete_line(store, "DRAFT-1", 5, NOW)


def test_tax_rounded_per_line_when_the_entity_says_so(db_url: str) -> None:
    store, _ = workspace(db_url, PER_LINE)
    try:
        draft = create_one_off_invoice(store, "acme", [line_input(description="a", unit_amount="0.05"),
                                                       line_input(description="b", unit_amount="0.05")], NOW)
        assert _money(draft) == ("0.10", "0.02", "0.12", ["0.05", "0.05"])
    finally:
        store.dispose()


def test_runs_leave_one_off_drafts_alone_and_numbering_stays_gapless(store: Store) -> None:
    one_off = create_one_off_invoice(store, "acme", [line_input(description="Workshop", unit_amount="1000")], NOW)
    report = invoices.generate(store, NOW.date(), NOW)
    assert report.removed == 0 and report.created > 0
    assert invoices.find_invoice(store, str(one_off.id)).lines == one_off.lines
    # a subscription's draft takes no line written by hand (the next run would drop it)
    subscription_draft = next(i for i in invoices.find_invoices(store, status="draft") if not i.is_one_off)
    with pytest.raises(Conflict):
        add_line(store, subscription_draft.display_number, line_input(description="x", unit_amount="1"), NOW)
    # finalizing every due draft never takes the one-off: its author finalizes it
    due = invoices.finalize_due_invoices(store, NOW + timedelta(days=1))
    assert one_off.id not in {invoice.id for invoice in due.finalized} and due.finalized
    assert invoices.find_invoice(store, str(one_off.id)).status == "draft"
    [final] = invoices.finalize_invoices(store, [one_off.display_number], NOW).finalized
    numbers = sorted(invoice.number for invoice in invoices.find_invoices(store, status="final"))
    assert numbers == [f"RC-{n:06d}" for n in range(1, len(numbers) + 1)] and final.number == numbers[-1]
    with pytest.raises(Conflict):  # its lines never change once final: a credit note corrects it
        add_line(store, final.number, line_input(description="late", unit_amount="1"), NOW)
    # a second run still leaves the final one-off alone
    assert invoices.generate(store, NOW.date(), NOW).removed == 0
    assert invoices.find_invoice(store, final.number).status == "final"


def test_two_one_off_invoices_at_the_same_instant_are_both_written(store: Store) -> None:
    first = create_one_off_invoice(store, "acme", [], NOW)
    second = create_one_off_invoice(store, "acme", [], NOW)
    assert first.id != second.id and (first.display_number, second.display_number) == ("DRAFT-1", "DRAFT-2")
    assert second.boundary_ts > first.boundary_ts


def test_refresh_prices_a_one_off_draft_at_the_current_tax_rate(store: Store) -> None:
    create_one_off_invoice(store, "acme", [line_input(description="Workshop", unit_amount="100.00")], NOW)
    save_version(store, catalog_document(CATALOG.replace('tax_rate: "19"', 'tax_rate: "21"')), 1)
    assert _money(retotal_one_off(store, "DRAFT-1", NOW)) == ("100.00", "21.00", "121.00", ["100.00"])
    assert _money(invoice_upkeep.refresh_draft(store, "DRAFT-1", NOW)) == ("100.00", "21.00", "121.00", ["100.00"])


def test_a_lone_end_at_before_the_invoice_date_is_refused_and_nothing_is_written(store: Store) -> None:
    """A period given only its end starts at the invoice's date (NOW): an end before it is refused
    naming end_at; an end on or after it, or a whole period in the past, is written."""
    draft = create_one_off_invoice(store, "acme", [line_input(description="Set-up", unit_amount="10")], NOW)
    early = line_input(description="Late fee", unit_amount="5", service_end=NOW - timedelta(days=1))
    for call in (lambda: add_line(store, draft.display_number, early, NOW),
                 lambda: edit_line(store, draft.display_number, 0, early, NOW),
                 lambda: create_one_off_invoice(store, "acme", [early], NOW)):
        with pytest.raises(InvalidInput) as refused:
            call()
        assert refused.value.field == "end_at"
    assert _money(invoices.find_invoice(store, draft.display_number)) == ("10.00", "1.90", "11.90", ["10.00"])
    assert [i.id for i in invoices.find_invoices(store)] == [draft.id]  # no second draft either
    ends = add_line(store, draft.display_number, line_input(description="Support", unit_amount="5",
                                                             service_end=NOW + timedelta(days=30)), NOW)
    past = add_line(store, draft.display_number, line_input(description="Back-billed", unit_amount="5",
                                                            service_start=NOW - timedelta(days=60),
                                                            service_end=NOW - timedelta(days=30)), NOW)
    assert [(line.service_start, line.service_end) for line in past.lines] == [
        ("2026-11-26", "2026-11-26"), ("2026-11-26", "2026-12-26"), ("2026-09-27", "2026-10-27")]
    assert ends.lines[1].service_start_ts <= ends.lines[1].service_end_ts


def test_a_line_keeps_its_number_when_another_is_deleted(store: Store) -> None:
    """Lines are named by a number that stays theirs: deleting the first line leaves the others'
    numbers as they were, so a client holding a number edits the line it read."""
    draft = create_one_off_invoice(store, "acme", [line_input(description=name, unit_amount=amount)
                                                   for name, amount in (("A", "1"), ("B", "2"), ("C", "3"))], NOW)
    assert [(line.description, draft.line_number(i)) for i, line in enumerate(draft.lines)] == \
        [("A", 0), ("B", 1), ("C", 2)]
    after = delete_line(store, draft.display_number, 0, NOW)
    assert [(line.description, after.line_number(i)) for i, line in enumerate(after.lines)] == [("B", 1), ("C", 2)]
    edited = edit_line(store, draft.display_number, 2, line_input(description="C2", unit_amount="30"), NOW)
    assert [(line.description, edited.line_number(i)) for i, line in enumerate(edited.lines)] == \
        [("B", 1), ("C2", 2)]
    with pytest.raises(NotFound):  # the deleted line is not found by its number, nor is another line edited
        edit_line(store, draft.display_number, 0, line_input(description="X", unit_amount="9"), NOW)
    added = add_line(store, draft.display_number, line_input(description="D", unit_amount="4"), NOW)
    assert [(line.description, added.line_number(i)) for i, line in enumerate(added.lines)] == \
        [("B", 1), ("C2", 2), ("D", 3)]
    assert _money(retotal_one_off(store, draft.display_number, NOW))[3] == ["2.00", "30.00", "4.00"]
    again = invoices.find_invoice(store, draft.display_number)
    assert [again.line_number(i) for i in range(len(again.lines))] == [1, 2, 3]
    assert _money(again) == ("36.00", "6.84", "42.84", ["2.00", "30.00", "4.00"])  # 19 % of 36.00


def test_archive_only_a_void_invoice(store: Store) -> None:
    draft = create_one_off_invoice(store, "acme", [], NOW)
    with pytest.raises(Conflict):
        invoice_upkeep.archive_invoice(store, draft.display_number, NOW)
    invoices.void_invoices(store, [draft.display_number], NOW)
    archived = invoice_upkeep.archive_invoice(store, draft.display_number, NOW)
    assert archived.archived_at is not None and archived.status == "void"
    assert invoice_upkeep.archive_invoice(store, draft.display_number, later(1)).archived_at == archived.archived_at
    # the lists (CLI and API alike) leave it out unless asked; it is still found by its number
    kept = create_one_off_invoice(store, "acme", [], NOW)
    assert [i.id for i in invoices.find_invoices(store)] == [kept.id]
    assert [i.id for i in invoices.find_invoices(store, status="void")] == []
    assert [i.id for i in invoices.find_invoices(store, include_archived=True)] == [draft.id, kept.id]
    assert invoices.find_invoice(store, draft.display_number).id == draft.id


def test_cancel_dunning_stops_the_retries_and_a_manual_retry_still_works(db_url: str,
                                                                         stripe_standin: StripeStandIn) -> None:
    billed = billed_workspace(db_url)
    try:
        reference = billed.invoice.number
        with pytest.raises(Conflict):  # nothing failed yet: no retries to cancel
            invoice_upkeep.cancel_dunning(billed.store, reference, NOW)
        stripe_standin.script["cus_acme"] = ["declined"]
        assert payments.run_payments(billed.store, NOW).payments == {"failed": 1}
        invoice_upkeep.cancel_dunning(billed.store, reference, NOW)
        invoice_upkeep.cancel_dunning(billed.store, reference, NOW)  # once more: nothing changes
        assert payments.payment_of(billed.store, reference).next_attempt_at is None
        assert payments.run_payments(billed.store, later(5)).payments == {}  # no retry is made any more
        assert payments.retry_payment(billed.store, reference, later(6)).status == "succeeded"
    finally:
        billed.store.dispose()


# ------------------------------------------------------------------------------ property

AMOUNTS = st.decimals(min_value=Decimal("0"), max_value=Decimal("10000"), places=3)
QUANTITIES = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1000"), places=3)
OPERATIONS = st.lists(st.tuples(st.sampled_from(("add", "edit", "delete")), AMOUNTS, QUANTITIES,
                                st.integers(0, 20), st.booleans()), max_size=8)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_a_draft_always_totals_its_rounded_lines_plus_tax(store: Store, operations: list) -> None:
    """After any sequence of adds, edits and deletes (refused ones included), every line is its
    quantity x unit amount rounded once, the subtotal is the sum of the lines, the tax is the
    customer's 19 % of the subtotal rounded once, and the total is subtotal + tax."""
    draft = create_one_off_invoice(store, "acme", [], NOW)
    reference = draft.display_number
    for operation, unit, quantity, position, deduction in operations:
        line = line_input(description="line", unit_amount=unit, quantity=quantity, deduction=deduction)
        try:
            if operation == "add":
                add_line(store, reference, line, NOW)
            elif operation == "edit":
                edit_line(store, reference, position, line, NOW)
            else:
                delete_line(store, reference, position, NOW)
        except (InvalidInput, NotFound):
            pass  # a line that is not there, or deductions beyond the charges: nothing written
        stored = invoices.find_invoice(store, reference)
        amounts = [line.amount for line in stored.lines]
        for written in stored.lines:
            assert written.amount == quantize(written.quantity * written.unit_amount, "EUR")
        assert stored.subtotal == sum(amounts, Decimal(0)) and stored.subtotal >= 0
        assert stored.tax == invoice_tax(amounts, Decimal(19), "EUR")
        assert stored.total == stored.subtotal + stored.tax
