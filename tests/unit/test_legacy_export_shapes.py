"""Legacy exports as real systems write them: line separators inside cells, semicolon
delimiters; each is read as the rows it holds, and a bad row is named by the line it starts on."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ratecard.golive.legacy import LegacyFileError, load_mapping, read_legacy

HEADER = "customer,code,service_start,service_end,quantity,amount,description\n"


def _write(folder: Path, text: str, name: str = "legacy.csv") -> Path:
    path = folder / name
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0c", "\x1e"])
def test_a_line_separator_inside_a_cell_does_not_split_the_row(tmp_path: Path, separator: str) -> None:
    """Only CR and LF end a CSV record: a description holding U+2028 (which a CSV writer does not
    quote) is one cell, not the end of the row."""
    path = _write(tmp_path, HEADER + f"acme,base,2026-10-01,2026-11-01,1,49.00,Pro plan{separator}monthly\n"
                                     "acme,calls,2026-10-01,2026-11-01,3,0.30,calls\n")
    lines = read_legacy(path, load_mapping(None))
    assert [(line.code, line.amount) for line in lines] == [("base", Decimal("49.00")), ("calls", Decimal("0.30"))]


def test_a_quoted_newline_keeps_the_cell_and_the_line_numbers(tmp_path: Path) -> None:
    """A quoted cell over three lines: the next row's error names the line it is on in the file."""
    text = HEADER + ('acme,base,2026-10-01,2026-11-01,1,49.00,"Pro plan\r\nbilled monthly\r\nthank you"\r\n'
                     "acme,calls,2026-13-01,2026-11-01,3,0.30,calls\r\n")
    with pytest.raises(LegacyFileError, match=r"line 5: field 'service_start'"):
        read_legacy(_write(tmp_path, text), load_mapping(None))
