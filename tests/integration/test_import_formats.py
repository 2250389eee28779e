"""Every events file format stores the same events and prices the same invoices, on SQLite and
PostgreSQL: JSONL, native CSV, Parquet and Solvimon's CSV upload template. Parquet keeps decimals
exact, refuses zone-less timestamps row by row, and imports a million rows in bounded memory."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import msgspec
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Text, cast, create_engine, select, text

from ratecard.billing.export import invoices_json
from ratecard.billing.run import generate_invoices
from ratecard.ingest.importer import import_file
from ratecard.ingest.readers import ReaderError
from ratecard.store.invoices import list_invoices
from ratecard.store.schema import events

from ..e2e.harness import Cli
from .scenario import NOW, current, workspace, write_jsonl

D = Decimal
BERLIN = timezone(timedelta(hours=1))

# The scenario's usage, written so that every format can say it: CSV cells are text, so the
# count meter's marker is the text "1" everywhere; numbers in a meter's field are numbers.
EVENTS = [
    {"id": "e1", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z",
     "properties": {"tokens": 1200, "model": "gpt-4o"}},
    {"id": "e2", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-21T10:00:00Z",
     "properties": {"tokens": "300.5", "model": "mini"}},
    {"id": "e3", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-21T10:00:00Z",
     "properties": {"api_calls": "1"}},
    {"id": "e4", "customer": "acme", "meter": "gb", "timestamp": "2026-01-22T10:00:00Z", "properties": {"gb": 201}},
    {"id": "e5", "customer": "acme", "meter": "gb", "timestamp": "2026-01-23T10:00:00Z", "properties": {"gb": 150}},
    {"id": "e6", "customer": "acme", "meter": "seats", "timestamp": "2026-01-25T00:00:00+01:00",
     "properties": {"delta": 3}},
]
PROPERTIES = ("tokens", "model", "api_calls", "gb", "delta")


def _fresh(url: str, folder: Path, name: str) -> str:
    """A separate database: a new SQLite file, or a new schema next to the fixture's on PostgreSQL
    (named after it, so the fixture drops it afterwards)."""
    if url.startswith("sqlite"):
        return f"sqlite:///{folder / f'{name}-{uuid.uuid4().hex[:8]}.db'}"
    base, _, schema = url.partition("?options=-csearch_path%3D")
    derived = f"{schema}_{name}{uuid.uuid4().hex[:6]}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{derived}"'))
    engine.dispose()
    return f"{base}?options=-csearch_path%3D{derived}"


def _write_csv(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "customer", "meter", "timestamp", *PROPERTIES])
        for event in EVENTS:
            props = event["properties"]
            writer.writerow([event["id"], event["customer"], event["meter"], event["timestamp"],
                             *(props.get(name, "") for name in PROPERTIES)])
    return path


def _write_parquet(path: Path) -> Path:
    """Typed columns: a zone-aware timestamp (Berlin), decimal tokens, int64 gb and delta."""
    def column(name: str) -> list:
        return [event["properties"].get(name) for event in EVENTS]

    table = pa.table({
        "id": [e["id"] for e in EVENTS],
        "customer": [e["customer"] for e in EVENTS],
        "meter": [e["meter"] for e in EVENTS],
        "timestamp": pa.array([datetime.fromisoformat(e["timestamp"]) for e in EVENTS],
                              pa.timestamp("us", tz="Europe/Berlin")),
        "tokens": pa.array([None if v is None else D(str(v)) for v in column("tokens")], pa.decimal128(10, 1)),
        "model": pa.array(column("model"), pa.string()).dictionary_encode(),
        "api_calls": pa.array(column("api_calls"), pa.string()),
        "gb": pa.array(column("gb"), pa.int64()),
        "delta": pa.array(column("delta"), pa.int64()),
    })
    pq.write_table(table, path)
    return path


# Solvimon's template: one column per meter value, named after the meter; the seats meter's
# value lands in its field (delta). Headers as Solvimon's Desk writes them.
TEMPLATE_HEADER = ["Customer reference", "Pricing plan subscription reference (optional)", "Event reference",
                   "Timestamp (optional)", "tokens", "api_calls", "gb", "seats", "model"]


def _write_template(path: Path) -> Path:
    value_column = {"tokens": "tokens", "api_calls": "api_calls", "gb": "gb", "seats": "delta"}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(TEMPLATE_HEADER)
        for event in EVENTS:
            props = event["properties"]
            values = [props[value_column[m]] if event["meter"] == m else "" for m in value_column]
            writer.writerow([event["customer"], "", event["id"], event["timestamp"], *values, props.get("model", "")])
    return path


def _write_json_array(path: Path) -> Path:
    """One JSON array, pretty-printed: elements span lines, as exports write them."""
    path.write_bytes(orjson.dumps(EVENTS, option=orjson.OPT_INDENT_2))
    return path


WRITERS = {
    "jsonl": lambda folder: write_jsonl(folder / "events.jsonl", EVENTS),
    "json-array": lambda folder: _write_json_array(folder / "events.json"),
    "csv": lambda folder: _write_csv(folder / "events.csv"),
    "parquet": lambda folder: _write_parquet(folder / "events.parquet"),
    "solvimon-csv": lambda folder: _write_template(folder / "template.csv"),
}

_decode = msgspec.json.Decoder(float_hook=Decimal).decode


def _stored(store) -> list[tuple]:
    query = select(events.c.id, events.c.customer, events.c.meter, events.c.ts, cast(events.c.properties, Text),
                   events.c.status, events.c.late).order_by(events.c.id)
    with store.engine.connect() as connection:
        return [(*row[:4], _decode(row[4]), *row[5:]) for row in connection.execute(query)]


def _named(store) -> dict[str, str | None]:
    """id -> the subscription each stored event names."""
    with store.engine.connect() as connection:
        return dict(connection.execute(select(events.c.id, events.c.subscription)).all())


def _priced(store) -> list[dict]:
    version, catalog = current(store)
    generate_invoices(store, catalog, version, date(2026, 2, 1), NOW)
    documents = invoices_json(list_invoices(store))
    for document in documents:
        document.pop("id", None)
        document.pop("number", None)  # DRAFT-<row id>: the same, but not what is compared
    return documents


def test_every_format_stores_the_same_events_and_prices_the_same_invoices(db_url: str, tmp_path: Path) -> None:
    results = {}
    for index, (name, write) in enumerate(WRITERS.items()):
        url = db_url if index == 0 else _fresh(db_url, tmp_path, name.replace("-", "_"))
        store, _ = workspace(url)
        try:
            _, catalog = current(store)
            report = import_file(store, catalog, write(tmp_path), NOW)
            assert (report.read, report.stored, dict(report.rejected), dict(report.flags)) == (6, 6, {}, {}), name
            results[name] = (_stored(store), _priced(store))
        finally:
            store.dispose()
    reference_events, reference_invoices = results["jsonl"]
    assert [row[0] for row in reference_events] == ["e1", "e2", "e3", "e4", "e5", "e6"]
    assert reference_events[1][4] == {"tokens": D("300.5"), "model": "mini"}
    assert (reference_events[5][2], reference_events[5][4]) == ("seats", {"delta": 3})
    for name, (stored, invoices) in results.items():
        assert stored == reference_events, name
        assert invoices == reference_invoices, name
    # the scenario's hand-priced figures (tests/integration/test_billing_flow.py), whatever the format
    lines = {line["code"]: line for line in reference_invoices[1]["lines"]}
    assert (lines["tokens"]["quantity"], lines["tokens"]["amount"]) == ("1500.5", "6.00")
    assert (lines["storage"]["quantity"], lines["seats"]["amount"]) == ("201", "12.35")


def test_parquet_keeps_decimals_exact(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    _, catalog = current(store)
    stamp = pa.array([datetime(2026, 1, 20, 10, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC"))
    exact = pa.table({"id": ["d1", "d2"], "customer": ["acme"] * 2, "meter": ["tokens"] * 2, "timestamp": stamp,
                      "tokens": pa.array([D("123456789012.123456789012345678"), D("0.000000000000000001")],
                                         pa.decimal128(38, 18))})
    floats = pa.table({"id": ["f1", "f2"], "customer": ["acme"] * 2, "meter": ["tokens"] * 2, "timestamp": stamp,
                       "tokens": pa.array([0.1, 0.2], pa.float64())})
    pq.write_table(exact, tmp_path / "exact.parquet")
    pq.write_table(floats, tmp_path / "floats.parquet")
    for name in ("exact.parquet", "floats.parquet"):
        report = import_file(store, catalog, tmp_path / name, NOW)
        assert (report.stored, dict(report.rejected)) == (2, {})
    with store.engine.connect() as connection:
        stored = dict(connection.execute(select(events.c.id, cast(events.c.properties, Text))).all())
    assert "123456789012.123456789012345678" in stored["d1"].replace(" ", "")
    assert _decode(stored["d2"])["tokens"] == D("1E-18")
    # a float column becomes the decimal it prints as (0.1, not 0.1000000000000000055511151231257827)
    assert [_decode(stored[i])["tokens"] for i in ("f1", "f2")] == [D("0.1"), D("0.2")]
    version, catalog = current(store)
    generate_invoices(store, catalog, version, date(2026, 2, 1), NOW)
    tokens = next(line for line in list_invoices(store)[1].lines if line.code == "tokens")
    # 123456789012.123456789012345678 + 0.000000000000000001 + 0.1 + 0.2, to the last digit
    assert tokens.quantity == D("123456789012.423456789012345679")


def test_parquet_rejects_zone_less_timestamps_with_their_row(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    _, catalog = current(store)
    naive = pa.table({"id": ["n1", "n2", "n3"], "customer": ["acme"] * 3, "meter": ["api_calls"] * 3,
                      "timestamp": pa.array([datetime(2026, 1, 20, 10), None, datetime(2026, 1, 21)],
                                            pa.timestamp("ms"))})
    pq.write_table(naive, tmp_path / "naive.parquet")
    report = import_file(store, catalog, tmp_path / "naive.parquet", NOW)
    assert report.stored == 0
    assert dict(report.rejected) == {"invalid_timestamp": 2, "missing_field": 1}
    first, second, third = report.rejections
    assert (first.line, first.reason, first.event_id) == (1, "invalid_timestamp", "n1")
    assert first.message.startswith("line 1: field 'timestamp': 2026-01-20T10:00:00") and "no timezone" in first.message
    assert (second.line, second.reason) == (2, "missing_field")
    assert (third.line, third.reason, third.event_id) == (3, "invalid_timestamp", "n3")


def test_rejects_file_lists_every_bad_parquet_row(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    store.dispose()
    stamp = pa.array([datetime(2026, 1, 20, 10, tzinfo=UTC)] * 4, pa.timestamp("us", tz="UTC"))
    table = pa.table({"id": ["r1", "r2", "r3", "r4"], "customer": ["acme", "acme", None, "acme"],
                      "meter": ["gb"] * 4, "timestamp": stamp,
                      "gb": pa.array([1.5, float("nan"), 2.0, float("inf")], pa.float64())})
    pq.write_table(table, tmp_path / "mixed.parquet")
    cli = Cli(tmp_path)
    result = cli("events", "import", tmp_path / "mixed.parquet", "--rejects", tmp_path / "rejects.jsonl", "--json",
                 db=db_url)
    assert result.code == 1, result
    report = result.json()
    assert (report["stored"], report["rejected"]) == (1, {"invalid_value": 2, "missing_field": 1})
    rejects = [orjson.loads(line) for line in (tmp_path / "rejects.jsonl").read_bytes().splitlines()]
    assert [(r["line"], r["reason"], r["id"]) for r in rejects] == [
        (2, "invalid_value", "r2"), (3, "missing_field", None), (4, "invalid_value", "r4")]
    assert rejects[0]["message"] == "line 2: column 'gb': nan is not a number"


def test_solvimon_template_rows(db_url: str, tmp_path: Path) -> None:
    """No timestamp: the import's now; several values in a row: one event each, `reference:column`;
    the subscription reference names the subscription that bills the event (not a property);
    --format solvimon-csv insists on the template."""
    store, _ = workspace(db_url)
    _, catalog = current(store)
    path = tmp_path / "upload.txt"
    path.write_text(textwrap.dedent("""\
        customer_reference,pricing_plan_subscription_reference,reference,timestamp,tokens,api_calls,model
        acme,acme-pro,row-0001,2026-01-20T10:00:00Z,1200,1,gpt-4o
        acme,,row-0002,,7,,
        acme,,row-0003,2026-01-20T10:00:00Z,,,mini
        ,,row-0004,2026-01-20T10:00:00Z,5,,
    """), encoding="utf-8")
    report = import_file(store, catalog, path, NOW, file_format="solvimon-csv")
    assert report.stored == 3
    assert [(r.line, r.reason) for r in report.rejections] == [(4, "missing_field"), (5, "missing_field")]
    assert "no meter value" in report.rejections[0].message
    stored = {row[0]: row for row in _stored(store)}
    assert sorted(stored) == ["row-0001:api_calls", "row-0001:tokens", "row-0002"]
    _, customer, meter, ts, properties, status, late = stored["row-0001:tokens"]
    assert (customer, meter, status, late) == ("acme", "tokens", "matched", False)
    assert properties == {"tokens": 1200, "model": "gpt-4o"}
    assert _named(store) == {"row-0001:api_calls": "acme-pro", "row-0001:tokens": "acme-pro", "row-0002": None}
    assert stored["row-0001:api_calls"][4]["api_calls"] == "1"
    # no timestamp: stamped with the import's "now" (and so outside the subscription's billed periods)
    assert stored["row-0002"][3] == int((NOW - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))


def test_solvimon_names_with_a_meter_column_and_header_errors(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    _, catalog = current(store)
    # Parquet with Solvimon's names and a meter_reference column: one event per row, as sent
    table = pa.table({"reference": ["sv-0001"], "customer_reference": ["acme"], "meter_reference": ["gb"],
                      "timestamp": ["2026-01-22T10:00:00Z"], "gb": pa.array([D("12.5")], pa.decimal128(5, 1))})
    pq.write_table(table, tmp_path / "solvimon.parquet")
    report = import_file(store, catalog, tmp_path / "solvimon.parquet", NOW)
    assert (report.stored, dict(report.rejected)) == (1, {})
    event_id, customer, meter, _, properties, status, _ = _stored(store)[0]
    assert (event_id, customer, meter, properties, status) == ("sv-0001", "acme", "gb", {"gb": D("12.5")}, "matched")
    # a template whose columns name no meter, and a CSV that is neither layout, are refused whole
    (tmp_path / "nometer.csv").write_text("customer_reference,reference,colour\nacme,x-0001,red\n")
    with pytest.raises(ReaderError, match=r"nometer.csv: line 1: the Solvimon template names no meter"):
        import_file(store, catalog, tmp_path / "nometer.csv", NOW)
    (tmp_path / "other.csv").write_text("who,what\nacme,1\n")
    with pytest.raises(ReaderError, match=r"other.csv: line 1: the header has no column 'id'"):
        import_file(store, catalog, tmp_path / "other.csv", NOW)


PEAK_SCRIPT = """
import sys
import ratecard.store.db as db

# SQLite's page cache is a fixed 256 MiB by design (PRAGMA cache_size in store/db.py): bounded,
# but it would dominate the figure; shrink it to measure the import path itself.
_pragmas = db._sqlite_pragmas
def _small_cache(connection, record):
    _pragmas(connection, record)
    connection.execute("PRAGMA cache_size=-16384")
db._sqlite_pragmas = _small_cache

from ratecard.cli import main
code = main(["events", "import", sys.argv[1], "--db", sys.argv[2], "--json"])
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
sys.stderr.write(f"exit={code} VmHWM_kB={status['VmHWM'].split()[0]}\\n")
"""

ROWS = 1_000_000
PEAK_LIMIT_MB = 300


def _big_parquet(path: Path, rows: int) -> None:
    """`rows` events of one customer in January, written in row groups of 250,000."""
    writer = None
    for start in range(0, rows, 250_000):
        count = min(250_000, rows - start)
        index = pa.array(range(start, start + count), pa.int64())
        micros = pc.add(pc.multiply(pc.bit_wise_and(index, 1023), 1_000_000), 1_768_867_200_000_000)
        table = pa.table({
            "id": pc.binary_join_element_wise("big-", pc.cast(index, pa.string()), ""),
            "customer": pa.array(["acme"] * count),
            "meter": pa.array(["tokens"] * count),
            "timestamp": pc.cast(micros, pa.timestamp("us", tz="UTC")),
            "tokens": pc.cast(pc.bit_wise_and(index, 4095), pa.decimal128(22, 2)),
            "model": pa.array(["gpt-4o", "mini"] * (count // 2)).dictionary_encode(),
        })
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


@pytest.mark.slow
def test_a_million_parquet_rows_import_in_bounded_memory(db_url: str, tmp_path: Path) -> None:
    store, _ = workspace(db_url)
    store.dispose()
    path = tmp_path / "big.parquet"
    _big_parquet(path, ROWS)
    env = {**os.environ, "RATECARD_NOW": "2026-11-26T00:00:00Z"}
    env.pop("RATECARD_DATABASE_URL", None)
    proc = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path), db_url], capture_output=True, text=True,
                          env=env, timeout=300)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("exit=0 "), proc.stderr[-2000:]
    report = orjson.loads(proc.stdout)
    assert (report["read"], report["stored"], report["rejected"]) == (ROWS, ROWS, {})
    peak_mb = int(last.split("VmHWM_kB=")[1]) / 1024
    assert peak_mb < PEAK_LIMIT_MB, f"peak resident memory {peak_mb:.0f} MB for {ROWS:,} rows"
