"""Invoices in the export shape (JSON documents and CSV rows; docs/cli.md, "invoices export")."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ..domain.dimensions import group_from_json, group_json
from ..domain.money import format_decimal
from ..domain.tiers import TierPart, parts_from_json
from ..outputs import csv_text
from ..store.invoices import InvoiceRecord

INVOICE_FIELDS = ("number", "customer", "subscription", "status", "currency", "issue_date", "subtotal", "tax",
                  "total")
LINE_FIELDS = ("code", "description", "service_start", "service_end", "quantity", "unit_amount", "amount")


def _text(value: Any) -> Any:
    return format_decimal(value) if isinstance(value, Decimal) else value


def invoice_document(invoice: InvoiceRecord) -> dict[str, Any]:
    document = {name: _text(getattr(invoice, name)) for name in INVOICE_FIELDS}
    document["number"] = invoice.display_number
    document["id"] = invoice.id
    document["tax_rate"] = _text(invoice.tax_rate)
    document["catalog_version"] = invoice.catalog_version
    document["mode"] = invoice.mode  # live | shadow (the legacy system bills it; never finalized)
    document["kind"] = invoice.kind  # invoice | credit_note
    document["corrects"] = invoice.corrects  # id of the invoice a credit note or replacement corrects
    document["revision"] = invoice.revision
    # each line's kind: advance | arrears | usage | maximum | minimum | proration | discount | adjustment
    # a tiered usage line's parts (empty for other lines, and for lines stored before parts were kept)
    # a charge priced per dimension: each line's filter (null: the default price) and group
    # (property -> value; null without group_by)
    # `line`: the line's number from 1 (edit-line and delete-line take it; a one-off draft's line keeps it)
    document["lines"] = [{"line": invoice.line_number(index) + 1,
                          **{name: _text(getattr(line, name)) for name in LINE_FIELDS}, "kind": line.kind,
                          "tiers": [tier_document(part) for part in parts_from_json(line.tiers)],
                          "filter": line.filter_code, "group": group_from_json(line.group_values)}
                         for index, line in enumerate(invoice.lines)]
    return document


def tier_document(part: TierPart) -> dict[str, Any]:
    """One tier's share of a line; its amount is exact (the line's amount is their sum, rounded once)."""
    return {"tier": part.tier, "first_unit": _text(part.first_unit), "last_unit": _text(part.last_unit),
            "above": _text(part.above), "quantity": _text(part.quantity), "unit_amount": _text(part.unit_amount),
            "flat_amount": _text(part.flat_amount), "amount": _text(part.amount)}


def invoices_json(invoices: Sequence[InvoiceRecord]) -> list[dict[str, Any]]:
    return [invoice_document(invoice) for invoice in invoices]


def invoices_csv(invoices: Sequence[InvoiceRecord]) -> str:
    """One row per line, with the invoice's fields repeated (the CLI's and the API's export alike);
    a text that a spreadsheet would run as a formula is neutralised by csv_text."""
    heads = [invoice_document(invoice) for invoice in invoices]
    # a charge priced per dimension: the line's filter, and its group as a JSON object (empty otherwise)
    return csv_text([*INVOICE_FIELDS, *LINE_FIELDS, "filter", "group"],
                    ([head[name] for name in INVOICE_FIELDS] + [line[name] for name in LINE_FIELDS]
                     + [line["filter"], group_json(tuple(line["group"].items())) if line["group"] else None]
                     for head in heads for line in head["lines"]))
