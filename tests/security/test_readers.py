"""Hostile and careless events files and legacy exports: a JSON array streams in bounded memory,
one oversized record (JSON element, JSONL line, CSV cell or row) is rejected on its own and the
rest is read, legacy amounts with decimal commas are understood or refused, never guessed; and
fuzzing every reader with arbitrary bytes raises nothing but the documented errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from ratecard.golive.legacy import LegacyFileError, load_mapping, read_legacy
from ratecard.ingest.importer import import_file
from ratecard.ingest.readers import ReaderError, read_events
from ratecard.ingest.readers.common import MAX_RECORD_BYTES
from ratecard.ingest.records import RawEvent, Rejection

from ..integration.scenario import NOW, current, workspace

D = Decimal


def _event(number: int, **properties: object) -> dict:
    return {"id": f"e-{number}", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z",
            "properties": {"tokens": 1, **properties}}


# ---------------------------------------------------------------------------------------------
# a .json array streams: bounded memory, one oversized element rejected on its own

PEAK_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from ratecard.ingest.readers import read_events

    def peak_kib():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    before = peak_kib()
    count = sum(1 for _ in read_events(Path(sys.argv[1])))
    print(count, peak_kib() - before)
""")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak RSS is read from /proc")
def test_json_array_streams_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    element = json.dumps(_event(0, model="x" * 200)).encode()
    count = 120_000  # ~40 MB; read whole it made the peak grow by ~4x the file's size
    with path.open("wb") as handle:
        handle.write(b"[\n")
        for number in range(count):
            handle.write(element.replace(b'"e-0"', f'"e-{number}"'.encode()))
            handle.write(b",\n" if number < count - 1 else b"\n]\n")
    size_mib = path.stat().st_size / 2**20
    assert size_mib > 35
    proc = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.returncode == 0, proc.stderr
    read, growth_kib = map(int, proc.stdout.split())
    assert read == count
    assert growth_kib < 32 * 1024, f"peak grew by {growth_kib / 1024:.0f} MiB reading a {size_mib:.0f} MiB array"


def test_json_array_oversized_element_is_rejected_and_the_rest_read(tmp_path: Path) -> None:
    huge = _event(2, note="x" * (MAX_RECORD_BYTES + 10))
    path = tmp_path / "events.json"
    path.write_text(json.dumps([_event(1), huge, _event(3)], indent=1))
    records = list(read_events(path))
    assert [type(r) for r in records] == [RawEvent, Rejection, RawEvent]
    assert [r.id for r in records if isinstance(r, RawEvent)] == ["e-1", "e-3"]
    rejection = records[1]
    assert isinstance(rejection, Rejection)
    assert rejection.line == 2 and rejection.reason == "invalid_value"
    assert str(MAX_RECORD_BYTES) in rejection.message and "line 2" in rejection.message


def test_json_array_elements_keep_their_index_as_line(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text('[ {"id": "a", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z",'
                    ' "properties": {"s": "]}[{,\\"\\\\"}}, 7, {"customer": "acme"}\n,[[1]] ]')
    records = list(read_events(path))
    assert isinstance(records[0], RawEvent) and records[0].properties == {"s": ']}[{,"\\'}
    assert [(r.line, r.reason) for r in records[1:]] == [(2, "invalid_json"), (3, "missing_field"),
                                                        (4, "invalid_json")]


@pytest.mark.parametrize(("content", "line"), [
    (b'[\n{"id": "a"},\n{"id": "b" "x": 1}\n]', 3),
    (b'[\n{"id": "a"},\n{"id": "b"}\n', 4),
    (b'[\n{"id": "a"},\n{"id": "b"},\n]', 4),
    (b'[\n{"id": "a"}\n{"id": "b"}\n]', 3),
    (b'[\n{"id": "a"}\n]\n]', 4),
    (b'[\n{"id": "a"},\n{"id": "\xff"}]', 3),
    (b'[\n{"id": "a"},\n{"id": [1}\n]', 3),
])
def test_malformed_json_array_is_refused_before_any_element(tmp_path: Path, content: bytes, line: int) -> None:
    """Refused whole, as before streaming: nothing of a malformed file is imported."""
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(ReaderError, match=f"{path}: line {line}:"):
        next(iter(read_events(path)))


def test_jsonl_oversized_line_is_rejected_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in (_event(1), _event(2, note="x" * MAX_RECORD_BYTES),
                                                      _event(3))) + "\n")
    records = list(read_events(path))
    assert [type(r) for r in records] == [RawEvent, Rejection, RawEvent]
    assert (records[1].line, records[1].reason) == (2, "invalid_value")
    assert str(MAX_RECORD_BYTES) in records[1].message
    assert records[2].line == 3


# ---------------------------------------------------------------------------------------------
# CSV: one oversized cell or row is a rejection, not an aborted import


def _csv_with_a_huge_cell(path: Path, rows: int, huge_at: int, cell_bytes: int) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("id,customer,meter,timestamp,tokens,note\n")
        for number in range(1, rows + 1):
            note = "x" * cell_bytes if number == huge_at else "fine"
            handle.write(f"e-{number},acme,tokens,2026-01-20T10:00:00Z,1,{note}\n")
    return path


@pytest.mark.parametrize("cell_bytes", [200_000, MAX_RECORD_BYTES + 1])
def test_csv_oversized_cell_is_rejected_and_the_rest_read(tmp_path: Path, cell_bytes: int) -> None:
    path = _csv_with_a_huge_cell(tmp_path / "events.csv", 5, 3, cell_bytes)
    records = list(read_events(path))
    assert [r.line for r in records] == [2, 3, 4, 5, 6]
    rejection = records[2]
    assert isinstance(rejection, Rejection) and rejection.reason == "invalid_value"
    limit = str(MAX_RECORD_BYTES if cell_bytes > MAX_RECORD_BYTES else csv.field_size_limit())
    assert "line 4" in rejection.message and limit in rejection.message, rejection.message
    assert all(isinstance(r, RawEvent) for i, r in enumerate(records) if i != 2)


def test_csv_oversized_quoted_row_across_lines_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    chunk = "y" * 1000
    body = "\n".join([chunk] * (MAX_RECORD_BYTES // 1000 + 5))
    path.write_text("id,customer,meter,timestamp,note\n"
                    "e-1,acme,tokens,2026-01-20T10:00:00Z,fine\n"
                    f'e-2,acme,tokens,2026-01-20T10:00:00Z,"{body}"\n'
                    "e-3,acme,tokens,2026-01-20T10:00:00Z,fine\n")
    records = list(read_events(path))
    assert isinstance(records[0], RawEvent) and records[0].id == "e-1"
    assert records[1].reason == "invalid_value" and records[1].line == 3
    assert isinstance(records[-1], RawEvent) and records[-1].id == "e-3"


def test_csv_import_with_an_oversized_cell_stores_every_other_row(db_url: str, tmp_path: Path) -> None:
    """The whole file is imported around the bad row, on both stores (it used to stop halfway)."""
    store, _ = workspace(db_url)
    try:
        _, catalog = current(store)
        path = _csv_with_a_huge_cell(tmp_path / "events.csv", 300, 150, 200_000)
        report = import_file(store, catalog, path, NOW)
        assert (report.read, report.stored, dict(report.rejected)) == (300, 299, {"invalid_value": 1})
        assert report.rejections[0].line == 151
    finally:
        store.engine.dispose()


# ---------------------------------------------------------------------------------------------
# legacy exports: decimal commas


def _legacy(tmp_path: Path, amount: str, mapping: str | None = None) -> tuple[Path, Path | None]:
    path = tmp_path / "legacy.csv"
    path.write_text('customer,code,service_start,Amount\n'
                    f'acme,tokens,2026-10-01,"{amount}"\n', encoding="utf-8")
    if mapping is None:
        return path, None
    mapping_path = tmp_path / "mapping.yaml"
    mapping_path.write_text("columns: {amount: Amount}\n" + mapping, encoding="utf-8")
    return path, mapping_path


@pytest.mark.parametrize(("amount", "separator", "expected"), [
    ("1,50", ",", D("1.50")),
    ("1.234,50", ",", D("1234.50")),
    ("1.234.567", ",", D("1234567")),
    ("-0,5", ",", D("-0.5")),
    ("1 234,50", ",", D("1234.50")),
    ("1234", ",", D("1234")),
    ("1.50", ".", D("1.50")),
    ("1,234.50", ".", D("1234.50")),
    ("1,234,567", ".", D("1234567")),
    ("12.5", ".", D("12.5")),
])
def test_legacy_amounts_with_separators(tmp_path: Path, amount: str, separator: str, expected: Decimal) -> None:
    path, mapping_path = _legacy(tmp_path, amount, f'decimal_separator: "{separator}"\n')
    [line] = read_legacy(path, load_mapping(mapping_path))
    assert line.amount == expected


@pytest.mark.parametrize(("amount", "separator"), [
    ("1,50", "."), ("1,500", "."), ("12,34", "."), ("1,2,3", "."), ("1.500", ","), ("1.5", ","),
    ("1,234,56", "."), ("1.234,567.5", ","),
])
def test_legacy_ambiguous_amount_is_refused_naming_file_line_and_column(tmp_path: Path, amount: str,
                                                                        separator: str) -> None:
    path, mapping_path = _legacy(tmp_path, amount, f'decimal_separator: "{separator}"\n')
    with pytest.raises(LegacyFileError) as error:
        read_legacy(path, load_mapping(mapping_path))
    message = str(error.value)
    assert str(path) in message and "line 2" in message and "'Amount'" in message and amount in message


def test_legacy_default_separator_refuses_a_decimal_comma(tmp_path: Path) -> None:
    """Without a mapping the separator is "." and "1,50" is refused, never read as 150."""
    path = tmp_path / "legacy.csv"
    path.write_text('customer,code,service_start,amount\nacme,tokens,2026-10-01,"1,50"\n', encoding="utf-8")
    with pytest.raises(LegacyFileError, match="decimal_separator"):
        read_legacy(path, load_mapping(None))


def test_legacy_mapping_refuses_an_unknown_separator(tmp_path: Path) -> None:
    _, mapping_path = _legacy(tmp_path, "1", 'decimal_separator: ";"\n')
    with pytest.raises(LegacyFileError, match="decimal_separator"):
        load_mapping(mapping_path)
