"""`ratecard invoices pdf|ubl|facturx` from a shell: default file names in the working directory,
--out, what is refused (a draft's e-invoice, writing over the database), what the files hold."""

from __future__ import annotations

import io
import json
from pathlib import Path

from facturx import get_xml_from_pdf, xml_check_xsd
from pypdf import PdfReader

from ..integration.documents_workspace import CATALOG, EVENTS, HOSTILE_NAME, png
from .harness import Cli, assert_user_error


def workspace(tmp_path: Path) -> Cli:
    """The documents catalog (two entities, a logo), September's usage, drafts up to 2026-10-01,
    berlin-co's two invoices finalized: AC-000001 (September), AC-000002 (October)."""
    cli = Cli(tmp_path)
    cli.now = "2026-10-05T00:00:00Z"
    cli.write("logo.png", png())
    cli.ok("catalog", "apply", cli.write("catalog.yaml", CATALOG))
    cli.ok("events", "import", cli.write("events.jsonl", "".join(json.dumps(e) + "\n" for e in EVENTS)))
    cli.ok("invoices", "generate", "--until", "2026-10-01")
    drafts = [i for i in cli.ok("invoices", "list", "--status", "draft", "--json").json() if i["customer"] == "berlin-co"]
    cli.ok("invoices", "finalize", *[d["number"] for d in sorted(drafts, key=lambda d: d["issue_date"])])
    return cli


def text_of(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(path.read_bytes())).pages).replace("\xa0", " ")


def test_pdf_writes_number_pdf_in_the_working_directory(tmp_path: Path) -> None:
    cli = workspace(tmp_path)
    result = cli.ok("invoices", "pdf", "AC-000002")
    assert result.out == "" and "wrote AC-000002 to AC-000002.pdf" in result.err
    text = text_of(tmp_path / "AC-000002.pdf")
    assert "AC-000002" in text and "1.463,18 €" in text and HOSTILE_NAME in text and "DRAFT" not in text
    # a draft by its reference, to a file named with --out; --json says what was written
    written = cli.ok("invoices", "pdf", "DRAFT-4", "--out", "paris.pdf", "--json").json()
    assert written == {"number": "DRAFT-4", "file": "paris.pdf", "media_type": "application/pdf",
                       "bytes": (tmp_path / "paris.pdf").stat().st_size}
    assert "DRAFT" in text_of(tmp_path / "paris.pdf")


def test_ubl_and_facturx_of_a_final_invoice(tmp_path: Path) -> None:
    cli = workspace(tmp_path)
    cli.ok("invoices", "ubl", "AC-000001")
    xml = (tmp_path / "AC-000001.xml").read_bytes()
    assert xml_check_xsd(xml, flavor="ubl-2.1-invoice") is True
    assert b"<cbc:PayableAmount currencyID=\"EUR\">1190.00</cbc:PayableAmount>" in xml
    cli.ok("invoices", "facturx", "AC-000002", "--out", "AC-000002-facturx.pdf")
    name, cii = get_xml_from_pdf((tmp_path / "AC-000002-facturx.pdf").read_bytes(), check_xsd=False)
    assert name == "factur-x.xml" and xml_check_xsd(cii, flavor="factur-x", level="en16931") is True


def test_what_is_refused(tmp_path: Path) -> None:
    cli = workspace(tmp_path)
    assert_user_error(cli("invoices", "ubl", "DRAFT-4"), 2, "invoice DRAFT-4 is draft: e-invoices are issued for "
                                                           "final invoices only")
    assert not (tmp_path / "DRAFT-4.xml").exists()
    database = (tmp_path / "x.db").read_bytes()
    assert_user_error(cli("invoices", "pdf", "AC-000001", "--out", "x.db"), 2, "--out x.db",
                      "writing it would destroy the database")
    assert (tmp_path / "x.db").read_bytes() == database
    assert_user_error(cli("invoices", "facturx", "AC-000001", "--out", str(tmp_path)), 2, "is a directory")
    assert_user_error(cli("invoices", "pdf", "AC-999999"), 2, "no invoice 'AC-999999'")
