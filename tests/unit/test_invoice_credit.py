"""Crediting a final invoice (the Solvimon `credit` and `credit_and_copy` actions): the credit note
negates every line and the totals exactly, and the copy holds the same content as the original."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ratecard.services.invoice_actions import copy_of
from ratecard.store.corrections import credit_note_for
from ratecard.store.invoices import InvoiceRecord, LineRecord

CENTS = st.integers(min_value=-10**9, max_value=10**9).map(lambda n: Decimal(n).scaleb(-2))
QUANTITIES = st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False, allow_infinity=False)


def _line(code: str, quantity: Decimal, unit: Decimal, amount: Decimal) -> LineRecord:
    return LineRecord(code, code, "usage", "2026-01-01", "2026-02-01", 0, 1, quantity, unit, amount)


def _invoice(lines: list[LineRecord], tax_rate: Decimal, tax: Decimal) -> InvoiceRecord:
    subtotal = sum((line.amount for line in lines), Decimal("0.00"))
    return InvoiceRecord(7, "RC-000001", "acme", "acme-pro", "final", "EUR", "UTC", 10, "2026-02-01", subtotal, tax,
                         subtotal + tax, tax_rate, 3, lines, finalized_at=5, draft_number=4)


def test_the_january_invoice_is_credited_line_by_line() -> None:
    # 49.00 base fee for 17 of 31 days: 26.87; 19 % tax: 5.1053 -> 5.11; total 31.98
    original = _invoice([_line("base", Decimal("1"), Decimal("26.87"), Decimal("26.87"))], Decimal("19"),
                        Decimal("5.11"))
    note = credit_note_for(original, "2026-12-06")
    assert (note.kind, note.status, note.corrects, note.revision) == ("credit_note", "final", 7, 1)
    assert (note.subtotal, note.tax, note.total) == (Decimal("-26.87"), Decimal("-5.11"), Decimal("-31.98"))
    [line] = note.lines
    assert (line.quantity, line.unit_amount, line.amount) == (Decimal("-1"), Decimal("26.87"), Decimal("-26.87"))
    copy = copy_of(original, "2026-12-06")
    assert copy.same_content(original) and (copy.number, copy.corrects, copy.revision) == (None, 7, 1)
    assert copy.total + note.total + original.total == Decimal("31.98")  # what the customer owes after


@given(st.lists(st.tuples(QUANTITIES, CENTS), min_size=0, max_size=8), CENTS)
def test_a_credit_note_cancels_the_invoice_exactly_and_the_copy_restores_it(items, tax) -> None:
    original = _invoice([_line(f"c{i}", quantity, amount, amount) for i, (quantity, amount) in enumerate(items)],
                        Decimal("19"), tax)
    note = credit_note_for(original, "2026-12-06")
    copy = copy_of(original, "2026-12-06")
    assert note.total + original.total == 0 and note.subtotal + original.subtotal == 0 and note.tax + original.tax == 0
    for credited, line in zip(note.lines, original.lines, strict=True):
        assert credited.amount + line.amount == 0 and credited.quantity + line.quantity == 0
        assert credited.unit_amount == line.unit_amount
        assert not (credited.amount == 0 and credited.amount.is_signed())  # never -0.00 on a document
    assert copy.same_content(original) and copy.lines is not original.lines
    assert original.number == "RC-000001" and original.id == 7  # the original is never changed
