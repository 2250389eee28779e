"""`ratecard invoices pdf|ubl|facturx`: an invoice's documents, written to a file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from .common import ENVIRONMENT, DbOption, JsonOption, check_output, emit_json, fail, store_for
from .console import err, say

if TYPE_CHECKING:
    from ..services.documents import Document
    from ..store import Store

Reference = Annotated[str, typer.Argument(help="The invoice: its number (RC-000001), draft reference (DRAFT-3) or id.")]
OutFile = Annotated[Path | None, typer.Option("--out", help="Write here (default: NUMBER.pdf or NUMBER.xml in the "
                                                            "working directory).")]


def _write(reference: str, out_file: Path | None, db: str | None, json_output: bool,
           make: Callable[[Store, str, str], Document]) -> None:
    from ..outputs import OutputError, write_output_bytes

    if out_file is not None:
        check_output("--out", out_file, db)  # before the database is opened
    with store_for(db, existing=True) as store:
        document = make(store, reference, ENVIRONMENT)
    target = out_file if out_file is not None else Path(document.file_name)
    check_output("--out", target, db)
    try:
        write_output_bytes("--out", target, document.content)
    except OutputError as exc:
        fail(str(exc))
    if json_output:
        emit_json({"number": document.number, "file": str(target), "media_type": document.media_type,
                   "bytes": len(document.content)})
    else:
        say(err, f"wrote {document.number} to {target} ({len(document.content)} bytes)")


def pdf(reference: Reference, out_file: OutFile = None, db: DbOption = None, json_output: JsonOption = False) -> None:
    """The invoice or credit note as a PDF, laid out by its billing entity's template; a draft is
    watermarked DRAFT."""
    from ..services.documents import invoice_pdf

    _write(reference, out_file, db, json_output, invoice_pdf)


def ubl(reference: Reference, out_file: OutFile = None, db: DbOption = None, json_output: JsonOption = False) -> None:
    """A final invoice as a Peppol BIS Billing 3.0 e-invoice (UBL 2.1 Invoice, or CreditNote for a
    credit note), checked against the UBL schema and the EN 16931 rules on amounts before it is written."""
    from ..services.documents import invoice_ubl

    _write(reference, out_file, db, json_output, invoice_ubl)


def facturx(reference: Reference, out_file: OutFile = None, db: DbOption = None,
            json_output: JsonOption = False) -> None:
    """A final invoice as Factur-X (EN 16931 profile): a PDF/A-3 carrying its CII XML, checked like `ubl`."""
    from ..services.documents import invoice_facturx

    _write(reference, out_file, db, json_output, invoice_facturx)
