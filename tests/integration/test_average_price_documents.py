"""A package line's unit price on the documents a customer receives, from the command line on
SQLite and PostgreSQL: 142.1 GB billed as 6 packages of 25 GB at 5.00 = 30.00 EUR, whose unit
amount is the exact average 30.00 / 142.1 = 0.211118930331. The PDF and the UBL e-invoice show
0.211119 (6 decimals); the amounts stay 30.00, 5.70 VAT, 35.70."""

from __future__ import annotations

import io
from pathlib import Path

from lxml import etree
from pypdf import PdfReader

from ratecard.documents.rules import check_document as check_rules

from ..e2e.harness import Cli

CATALOG = """
billing_entity:
  name: Acme Cloud
  legal_name: Acme Cloud GmbH
  address: {lines: ["Hauptstraße 1"], city: Berlin, postal_code: "10115", country: DE}
  tax_id: DE123456789
  iban: DE89 3704 0044 0532 0130 00
  locale: en_US
  timezone: UTC
meters:
  - {code: gb, aggregation: sum, field: gb}
plans:
  - code: store
    currency: EUR
    charges:
      - {code: storage, meter: gb, model: package, package_size: 25, package_amount: "5.00", description: Storage}
customers:
  - {reference: kunde, name: Kunde AG, tax_rate: "19", tax_id: DE987654321,
     address: {lines: ["Unter den Linden 1"], city: Berlin, postal_code: "10117", country: DE}}
subscriptions:
  - {reference: kunde-store, customer: kunde, plan: store, start: 2026-09-01}
"""

UBL = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
       "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}


def test_the_documents_show_the_average_unit_price_to_six_decimals(db_url: str, tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.now = "2026-10-05T00:00:00Z"
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG), db=db_url)
    cli.ok("events", "import", cli.write("events.jsonl", '{"id": "g1", "customer": "kunde", "meter": "gb", '
                                         '"timestamp": "2026-09-10T00:00:00Z", "properties": {"gb": 142.1}}\n'),
           db=db_url)
    cli.ok("invoices", "generate", "--until", "2026-10-01", db=db_url)
    draft = next(i for i in cli.ok("invoices", "list", "--json", db=db_url).json() if i["total"] != "0.00")
    number = cli.ok("invoices", "finalize", draft["number"], "--json", db=db_url).json()[0]["number"]
    stored = cli.ok("invoices", "show", number, "--json", db=db_url).json()
    storage = next(item for item in stored["lines"] if item["code"] == "storage")
    assert (storage["quantity"], storage["unit_amount"], storage["amount"]) == ("142.1", "0.211118930331", "30.00")
    assert (stored["subtotal"], stored["tax"], stored["total"]) == ("30.00", "5.70", "35.70")
    shown = cli.ok("invoices", "show", number, db=db_url).out  # the table a person reads: as the PDF shows it
    assert "0.211119" in shown and "0.211118930331" not in shown, shown

    cli.ok("invoices", "pdf", number, "--out", "invoice.pdf", db=db_url)
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO((tmp_path / "invoice.pdf").read_bytes()))
                     .pages).replace("\xa0", " ")
    assert "0.211119 EUR" in text and "0.211118930331" not in text, text
    assert "€30.00" in text and "€35.70" in text, text

    cli.ok("invoices", "ubl", number, "--out", "invoice.xml", db=db_url)
    xml = (tmp_path / "invoice.xml").read_bytes()
    item = etree.fromstring(xml).find("cac:InvoiceLine", UBL)
    assert [item.findtext(path, namespaces=UBL) for path in
            ("cbc:InvoicedQuantity", "cac:Price/cbc:PriceAmount", "cbc:LineExtensionAmount")] == \
        ["142.1", "0.211119", "30.00"]  # 142.1 x 0.211119 = 30.0000099 -> 30.00
    assert check_rules(xml) == []
