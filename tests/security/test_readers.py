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
import tempfile
import textwrap
from datetime import UTC
from decimal import Decimal
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratecard.golive.legacy import (
    DECIMAL_SEPARATORS,
    LegacyFileError,
    Mapping,
    UnreadableNumber,
    load_mapping,
    parse_number,
    read_legacy,
)
from ratecard.ingest.importer import import_file
from ratecard.ingest.readers import ReaderError, from_mapping, read_events
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


@pytest.mark.parametrize("size", [MAX_RECORD_BYTES - 1, MAX_RECORD_BYTES + 1, 3 * MAX_RECORD_BYTES + 1])
def test_json_array_element_limit_is_exact(tmp_path: Path, size: int) -> None:
    """An element one byte under the limit is read, one byte over is not, with backslashes at every
    window boundary."""
    backslash_pairs = b"\\\\" * ((size - 9) // 2)  # each pair one escaped backslash
    element = b'{"x": "' + backslash_pairs + b'"}'  # 9 bytes around the escapes
    assert len(element) == size - (size - 9) % 2
    path = tmp_path / "events.json"
    path.write_bytes(b"[" + b"1" * 3_000_000 + b", " + element + b", 5]")
    reasons = [r.reason for r in read_events(path)]
    assert reasons == ["invalid_value", "missing_field" if len(element) <= MAX_RECORD_BYTES else "invalid_value",
                       "invalid_json"]


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
    ("1,500", ".", D("1500")),  # the separator declared: the other mark can only group thousands
    ("1.500", ",", D("1500")),
])
def test_legacy_amounts_with_separators(tmp_path: Path, amount: str, separator: str, expected: Decimal) -> None:
    path, mapping_path = _legacy(tmp_path, amount, f'decimal_separator: "{separator}"\n')
    [line] = read_legacy(path, load_mapping(mapping_path))
    assert line.amount == expected


@pytest.mark.parametrize(("amount", "separator"), [
    ("1,50", "."), ("12,34", "."), ("1,2,3", "."), ("1.5", ","), ("1,5000", "."),
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


def test_legacy_default_separator_refuses_an_ambiguous_thousands_group(tmp_path: Path) -> None:
    """"1,500" is 1500 or 1.5: with no decimal_separator declared it is refused, named."""
    path, mapping_path = _legacy(tmp_path, "1,500", "")
    with pytest.raises(LegacyFileError) as error:
        read_legacy(path, load_mapping(mapping_path))
    message = str(error.value)
    assert str(path) in message and "line 2" in message and "'Amount'" in message and "ambiguous" in message
    [line] = read_legacy(path, Mapping({"amount": "Amount"}, decimal_separator="."))
    assert line.amount == D("1500")


@pytest.mark.parametrize(("option", "name"), [('decimal_separator: ";"', "decimal_separator"),
                                              ("decimal_separator: 1", "decimal_separator"),
                                              ("date_format: [1]", "date_format")])
def test_legacy_mapping_refuses_an_unknown_option_value(tmp_path: Path, option: str, name: str) -> None:
    _, mapping_path = _legacy(tmp_path, "1", option + "\n")
    with pytest.raises(LegacyFileError, match=name):
        load_mapping(mapping_path)


# ---------------------------------------------------------------------------------------------
# fuzzing: arbitrary bytes never raise anything but the documented errors, and every bad row is
# a rejection with a reason

REASONS = {"invalid_json", "invalid_value", "missing_field", "invalid_timestamp"}
FUZZ = settings(max_examples=100, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# JSON's own characters, so generated text reaches past the first byte
JSONISH = st.text(alphabet='[]{}",:\\ \n\t0123456789-+.eE truefalsnl"\u00e9\x00', max_size=200)
CSVISH = st.text(alphabet=',"\n\r abc019-:TZ\u00e9\x00\'', max_size=300)


def _fuzz_file(suffix: str, content: bytes) -> Path:
    handle = tempfile.NamedTemporaryFile(suffix=suffix, delete=False)  # noqa: SIM115 - removed by the caller
    with handle:
        handle.write(content)
    return Path(handle.name)


def _read_all(path: Path, file_format: str | None = None) -> list[RawEvent | Rejection]:
    """Every record of the file, or [] when it is refused as a whole (ReaderError)."""
    try:
        records = list(read_events(path, file_format, now=NOW, streams={"tokens": "tokens"}))
    except ReaderError as exc:
        assert str(path) in str(exc)
        return []
    finally:
        path.unlink()
    for record in records:
        assert isinstance(record, RawEvent | Rejection)
        if isinstance(record, Rejection):
            assert record.reason in REASONS and record.message.startswith(f"line {record.line}: ")
    return records


@FUZZ
@given(st.binary(max_size=400) | JSONISH.map(str.encode))
def test_fuzz_jsonl(content: bytes) -> None:
    records = _read_all(_fuzz_file(".jsonl", content))
    assert len(records) <= content.count(b"\n") + 1


@FUZZ
@given(st.binary(max_size=400) | JSONISH.map(str.encode))
def test_fuzz_json_array(content: bytes) -> None:
    """Streamed, the reader reads exactly what decoding the whole file reads: the same records
    for a JSON array, and a refusal for anything that is not one."""
    content = b"[" + content
    try:
        whole = msgspec.json.Decoder(float_hook=Decimal).decode(content)
    except msgspec.DecodeError:
        whole = None
    except RecursionError:
        return
    path = _fuzz_file(".json", content)
    if whole is None:
        with pytest.raises(ReaderError):
            list(read_events(path))
        path.unlink()
        return
    assert _read_all(path) == [from_mapping(number, item) for number, item in enumerate(whole, start=1)]


@FUZZ
@given(st.binary(max_size=400) | CSVISH.map(str.encode), st.booleans())
def test_fuzz_csv(content: bytes, with_header: bool) -> None:
    header = b"id,customer,meter,timestamp,tokens\n" if with_header else b""
    _read_all(_fuzz_file(".csv", header + content))


@FUZZ
@given(st.binary(max_size=400) | CSVISH.map(str.encode), st.booleans())
def test_fuzz_solvimon_template(content: bytes, meter_column: bool) -> None:
    header = b"customer_reference,reference,timestamp," + (b"meter_reference,value\n" if meter_column else b"tokens\n")
    _read_all(_fuzz_file(".csv", header + content), "solvimon-csv")


PARQUET_COLUMNS = ("id", "customer", "meter", "timestamp", "tokens", "customer_reference", "reference", "note")


@st.composite
def parquet_tables(draw: st.DrawFn) -> pa.Table:
    names = draw(st.lists(st.sampled_from(PARQUET_COLUMNS), min_size=1, max_size=6, unique=True))
    rows = draw(st.integers(0, 6))
    columns = {}
    for name in names:
        kind = draw(st.sampled_from(("text", "int", "float", "decimal", "stamp", "stamp_tz", "bool", "null")))
        cell = {
            "text": st.text(max_size=8), "int": st.integers(-(2**63), 2**63 - 1),
            "float": st.floats(allow_nan=True, allow_infinity=True), "bool": st.booleans(), "null": st.none(),
            "decimal": st.decimals(min_value=-(10**20), max_value=10**20, places=4, allow_nan=False),
            "stamp": st.datetimes(), "stamp_tz": st.datetimes(timezones=st.just(UTC)),
        }[kind]
        values = draw(st.lists(st.none() | cell, min_size=rows, max_size=rows))
        arrow_type = {"text": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
                      "null": pa.null(), "decimal": pa.decimal128(38, 4), "stamp": pa.timestamp("us"),
                      "stamp_tz": pa.timestamp("us", tz="UTC")}[kind]
        columns[name] = pa.array(values, arrow_type)
    return pa.table(columns)


@FUZZ
@given(parquet_tables())
def test_fuzz_parquet_tables(table: pa.Table) -> None:
    path = _fuzz_file(".parquet", b"")
    pq.write_table(table, path)
    _read_all(path)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_parquet_bytes(content: bytes) -> None:
    _read_all(_fuzz_file(".parquet", b"PAR1" + content + b"PAR1"))


@FUZZ
@given(st.binary(max_size=400) | CSVISH.map(str.encode), st.booleans(), st.sampled_from((*DECIMAL_SEPARATORS, None)))
def test_fuzz_legacy_csv(content: bytes, with_header: bool, separator: str | None) -> None:
    header = b"customer,code,service_start,service_end,quantity,amount,currency,tax\n" if with_header else b""
    path = _fuzz_file(".csv", header + content)
    try:
        lines = read_legacy(path, Mapping({}, decimal_separator=separator))
    except LegacyFileError as exc:
        assert str(path) in str(exc)
        return
    finally:
        path.unlink()
    assert all(isinstance(line.amount, Decimal) and line.amount.is_finite() for line in lines)


@FUZZ
@given(JSONISH.map(str.encode) | st.binary(max_size=300))
def test_fuzz_legacy_json(content: bytes) -> None:
    path = _fuzz_file(".json", content)
    try:
        read_legacy(path, Mapping({}))
    except LegacyFileError as exc:
        assert str(path) in str(exc)
    finally:
        path.unlink()


@FUZZ
@given(st.text(alphabet="0123456789,.- '\u00a0eE+", max_size=16), st.sampled_from((*DECIMAL_SEPARATORS, None)))
def test_fuzz_parse_number_never_guesses(text: str, separator: str | None) -> None:
    """A number read is the number written: without its grouping marks it reads the same."""
    try:
        number = parse_number(text, separator)
    except UnreadableNumber:
        return
    separator = separator or "."
    other = "," if separator == "." else "."
    digits_only = text.strip()
    for mark in (other, " ", "\u00a0", "'"):
        digits_only = digits_only.replace(mark, "")
    assert number == Decimal(digits_only.replace(separator, "."))


@pytest.mark.parametrize(("name", "content"), [
    ("date.csv", "customer,code,service_start,amount\nacme,t,99999999999999999999,1\n"),
    ("cell.csv", 'customer,code,service_start,amount\nacme,t,2026-01-01,"' + "1" * 200_000 + '"\n'
                 "acme,t,2026-01-01,1\n"),
    ("deep.json", "[" * 100_000 + "]" * 100_000),
    ("lines.json", '[{"customer": "acme", "lines": [1, "x"]}]'),
])
def test_legacy_hostile_files_are_refused_not_crashed(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(LegacyFileError, match=str(path)) as error:
        read_legacy(path, Mapping({}))
    if name == "cell.csv":
        assert "line 2" in str(error.value)
