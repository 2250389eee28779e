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


GERMAN = ("\ufeffcustomer;code;service_start;service_end;quantity;amount;currency\r\n"
          "acme;base;2026-10-01;2026-11-01;1;1.234,50;EUR\r\n"
          'acme;calls;2026-10-01;2026-11-01;"3,5";0,30;EUR\r\n')


def test_a_semicolon_export_with_decimal_commas_is_read(tmp_path: Path) -> None:
    """A spreadsheet in a decimal-comma locale writes `;` between cells: the delimiter is found
    from the header (the one that gives the required columns), the numbers by the mapping."""
    mapping = _write(tmp_path, 'decimal_separator: ","\n', "mapping.yaml")
    lines = read_legacy(_write(tmp_path, GERMAN), load_mapping(mapping))
    assert [(line.code, line.quantity, line.amount) for line in lines] == [
        ("base", Decimal(1), Decimal("1234.50")), ("calls", Decimal("3.5"), Decimal("0.30"))]


def test_tab_and_declared_delimiters(tmp_path: Path) -> None:
    tab = _write(tmp_path, GERMAN.replace(";", "\t").replace("1.234,50", "1234.50").replace(",", "."), "tab.tsv")
    assert [line.amount for line in read_legacy(tab, load_mapping(None))] == [Decimal("1234.50"), Decimal("0.30")]
    mapping = _write(tmp_path, 'delimiter: ";"\ndecimal_separator: ","\n', "mapping.yaml")
    assert len(read_legacy(_write(tmp_path, GERMAN), load_mapping(mapping))) == 2
    bad = _write(tmp_path, 'delimiter: "ab"\n', "bad.yaml")
    with pytest.raises(LegacyFileError, match=r"bad.yaml: delimiter: 'ab' is not one of"):
        load_mapping(bad)


def test_a_header_without_the_columns_names_the_columns_it_has(tmp_path: Path) -> None:
    path = _write(tmp_path, "Kunde;Artikel;Beginn;Betrag\nacme;base;2026-10-01;49\n")
    with pytest.raises(LegacyFileError, match=r"line 1: no column 'customer' for customer \(map it with --mapping\); "
                                              r"the header has 'Kunde', 'Artikel', 'Beginn', 'Betrag'"):
        read_legacy(path, load_mapping(None))


def test_stripe_periods_are_utc_instants_and_a_bad_timezone_is_refused(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from ratecard.services.reconcile import mapping_path

    path = _write(tmp_path, "Customer,Price ID,Period Start (UTC),Period End (UTC),Quantity,Amount,Currency\n"
                            "acme,price_1,2026-09-30 22:00:00,2026-10-31 23:00:00,1,49.00,eur\n")
    [line] = read_legacy(path, load_mapping(mapping_path("stripe")))
    assert line.start_instant == datetime(2026, 9, 30, 22, tzinfo=UTC)
    assert line.end_instant == datetime(2026, 10, 31, 23, tzinfo=UTC)
    with pytest.raises(LegacyFileError, match=r"timezone: 'Mars/Olympus' is not an IANA timezone"):
        load_mapping(_write(tmp_path, "timezone: Mars/Olympus\n", "bad.yaml"))


def test_a_row_with_more_cells_than_the_header_is_refused_not_read_short(tmp_path: Path) -> None:
    """`1,500.00` unquoted in a comma CSV is two cells: the amount used to be read as 1 and the
    rest dropped. A row with more cells than the header is refused with its line."""
    path = _write(tmp_path, "customer,code,service_start,service_end,quantity,amount\n"
                            "acme,base,2026-10-01,2026-11-01,1,1,500.00\n")
    with pytest.raises(LegacyFileError, match=r"line 2: 7 cells where the header has 6"):
        read_legacy(path, load_mapping(None))


def test_a_large_export_is_read_in_bounded_memory(tmp_path: Path) -> None:
    """60,000 lines (3.6 MB) of 500 customers: the reader holds each distinct customer, code, day
    and figure once, and reads the file without setting aside its 256 MiB limit up front. It
    peaked at 268 MB (Python's allocations) and kept 44 MB; 200,000 lines peaked at 315 MB and
    kept 152 MB, now 97 MB and 74 MB."""
    import time
    import tracemalloc

    rows = [HEADER.replace(",description", ",currency,invoice")]
    rows += [f"customer-{n % 500:03d},{('base', 'calls', 'storage', 'seats')[n % 4]},2026-{1 + n % 12:02d}-01,"
             f"2026-{1 + n % 12:02d}-28,{n % 97},{n % 89}.{n % 7}0,EUR,LEG-{n // 4:06d}\n" for n in range(60_000)]
    path = _write(tmp_path, "".join(rows))
    del rows
    started = time.perf_counter()
    tracemalloc.start()
    try:
        lines = read_legacy(path, load_mapping(None))
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(lines) == 60_000 and lines[-1].amount == Decimal("13.20")
    assert kept < 30e6 and peak < 40e6, (kept / 1e6, peak / 1e6)
    assert time.perf_counter() - started < 60


@pytest.mark.parametrize("currency", ["€", "EURO", "US$", "X" * 300])
def test_a_currency_that_is_no_iso_code_is_refused_with_its_line(tmp_path: Path, currency: str) -> None:
    """`€` is not compared with ratecard's EUR as another currency (every line a difference): the
    row is refused with its line and what is expected; `eur` is EUR."""
    path = _write(tmp_path, "customer,code,service_start,service_end,quantity,amount,currency\n"
                            "acme,base,2026-10-01,2026-11-01,1,49.00,eur\n"
                            f"acme,calls,2026-10-01,2026-11-01,1,0.50,{currency}\n")
    with pytest.raises(LegacyFileError, match=r"line 3: field 'currency': .* is not an ISO 4217 currency code"):
        read_legacy(path, load_mapping(None))
    path.write_text(path.read_text().replace(currency, " Eur "))
    assert {line.currency for line in read_legacy(path, load_mapping(None))} == {"EUR"}
