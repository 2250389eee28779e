"""Reconciliation: each cause shown by a legacy file built to show it, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from ratecard.billing.run import generate_invoices
from ratecard.golive.legacy import LegacyFileError, Mapping, read_legacy
from ratecard.golive.reconcile import reconcile
from ratecard.ingest.importer import import_file
from ratecard.store.invoices import list_invoices

from .scenario import CATALOG, EVENTS, NOW, current, workspace, write_jsonl

D = Decimal
# the override and an event 30 minutes after the Berlin boundary (still January in UTC)
CATALOG_WITH_OVERRIDE = CATALOG.replace(
    "start: 2026-01-15, billing_anchor: 1}",
    "start: 2026-01-15, billing_anchor: 1, overrides: {base: {amount: '39.00'}}}",
)
LATE_CALL = {"id": "edge-1", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-31T23:30:00Z"}


def _setup(db_url: str, tmp_path: Path, catalog: str = CATALOG_WITH_OVERRIDE):
    store, _ = workspace(db_url, catalog)
    version, built = current(store)
    import_file(store, built, write_jsonl(tmp_path / "e.jsonl", [*EVENTS, LATE_CALL]), NOW)
    generate_invoices(store, built, version, date(2026, 3, 1), NOW)
    return store, built


def _legacy_rows(store) -> list[dict]:
    """The legacy system's export when it bills exactly what ratecard bills (tax per line at 19%)."""
    rows = []
    for invoice in list_invoices(store):
        for line in invoice.lines:
            rows.append({"customer": invoice.customer, "code": line.code, "service_start": line.service_start,
                         "service_end": line.service_end, "quantity": f"{line.quantity:f}",
                         "amount": f"{line.amount:f}", "tax": ""})
    return rows


def _write(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _run(store, catalog, path: Path):
    return reconcile(store, catalog, read_legacy(path, Mapping({})))


def _find(rows: list[dict], code: str, start: str) -> dict:
    return next(r for r in rows if r["code"] == code and r["service_start"] == start)


def test_identical_exports_have_no_differences(db_url: str, tmp_path: Path) -> None:
    store, catalog = _setup(db_url, tmp_path)
    result = _run(store, catalog, _write(tmp_path / "legacy.csv", _legacy_rows(store)))
    assert result.differences == [] and result.matched == result.ratecard_lines


def test_one_off_invoices_are_left_out_of_the_usage_reconciliation(db_url: str, tmp_path: Path) -> None:
    """A one-off invoice written by hand (no subscription) is not part of what the legacy system's
    usage invoices are compared with: its lines are no difference, and the summary says how many
    were left out and for how much (here 1000.00 + 3 x 80.50 = 1241.50 EUR)."""
    from ratecard.services.one_off_invoices import create_one_off_invoice, line_input

    store, catalog = _setup(db_url, tmp_path)
    legacy = _write(tmp_path / "legacy.csv", _legacy_rows(store))
    before = _run(store, catalog, legacy)
    create_one_off_invoice(store, "acme", [line_input(description="Workshop", unit_amount="1000.00"),
                                           line_input(description="Travel", unit_amount="80.50", quantity="3")], NOW)
    result = _run(store, catalog, legacy)
    assert result.differences == [] and result.matched == result.ratecard_lines == before.ratecard_lines
    summary = result.summary()
    assert (summary["one_off_lines"], summary["one_off_amount"]) == (2, {"EUR": "1241.50"})
    assert (before.summary()["one_off_lines"], before.summary()["one_off_amount"]) == (0, {})
    from ratecard.golive.report import to_html

    assert "Left out: 2 line(s) of one-off invoices (1241.50 EUR)" in to_html(result)
    assert "Left out" not in to_html(before)


def test_own_csv_export_reconciles_clean_when_a_reference_looks_like_a_formula(db_url: str, tmp_path: Path) -> None:
    """A customer reference a spreadsheet would run as a formula ("=acme") is written with a `'`
    in front in ratecard's CSV export; that export read back as the legacy file matches every
    line (and the same file with the `'` taken away by hand matches too)."""
    from ratecard.billing.export import invoices_csv

    catalog_text = CATALOG_WITH_OVERRIDE.replace("reference: acme,", "reference: '=acme',").replace(
        "customer: acme,", "customer: '=acme',")
    store, _ = workspace(db_url, catalog_text)
    version, catalog = current(store)
    events = [{**event, "customer": "=acme"} for event in [*EVENTS, LATE_CALL]]
    import_file(store, catalog, write_jsonl(tmp_path / "e.jsonl", events), NOW)
    generate_invoices(store, catalog, version, date(2026, 3, 1), NOW)
    exported = invoices_csv(list_invoices(store))
    assert "'=acme" in exported  # neutralised for spreadsheets
    path = tmp_path / "own.csv"
    path.write_text(exported, encoding="utf-8")
    result = _run(store, catalog, path)
    assert result.ratecard_lines > 0
    assert result.differences == [] and result.matched == result.ratecard_lines
    assert {line.customer for line in read_legacy(path, Mapping({}))} == {"=acme"}


def test_decimal_comma_export_reconciles_with_its_separator(db_url: str, tmp_path: Path) -> None:
    """An export writing decimal commas (1.234,50) is clean with decimal_separator ",", and is
    refused with the default "." rather than read a hundred times too large."""
    store, catalog = _setup(db_url, tmp_path)
    rows = [{**row, "quantity": _comma(row["quantity"]), "amount": _comma(row["amount"])}
            for row in _legacy_rows(store)]
    path = _write(tmp_path / "legacy.csv", rows)
    result = reconcile(store, catalog, read_legacy(path, Mapping({}, decimal_separator=",")))
    assert result.differences == [] and result.matched == result.ratecard_lines
    if any("," in row["amount"] for row in rows):
        with pytest.raises(LegacyFileError, match="decimal_separator"):
            read_legacy(path, Mapping({}))


def _comma(number: str) -> str:
    """12345.50 -> 12.345,50: how a German export writes it."""
    whole, _, fraction = number.partition(".")
    sign, digits = ("-", whole[1:]) if whole.startswith("-") else ("", whole)
    groups = []
    while len(digits) > 3:
        digits, groups = digits[:-3], [digits[-3:], *groups]
    return sign + ".".join([digits, *groups]) + ("," + fraction if fraction else "")


def test_each_cause_is_named(db_url: str, tmp_path: Path) -> None:
    store, catalog = _setup(db_url, tmp_path)
    rows = _legacy_rows(store)
    # aggregation: the legacy system sums the gb readings (201 + 150 = 351) instead of taking the max;
    # its package price follows: ceil((351 - 100) / 100) = 3 packages x 5 = 15.00
    storage = _find(rows, "storage", "2026-01-15")
    storage.update(quantity="351", amount="15.00")
    # tier_model: 1500.5 tokens priced as volume: 1500.5 x 0.002 + 5 = 8.001 -> 8.00 (graduated gives 6.00)
    _find(rows, "tokens", "2026-01-15")["amount"] = "8.00"
    # override: the legacy system bills the list price 49.00 where ratecard bills the override 39.00
    _find(rows, "base", "2026-02-01")["amount"] = "49.00"
    # period_boundary: the call at 23:30 UTC on Jan 31 is February in Berlin, January in UTC
    _find(rows, "calls", "2026-01-15")["quantity"] = "2"
    # rounding: one cent off on the seats line
    seats = _find(rows, "seats", "2026-01-15")
    seats["amount"] = f"{D(seats['amount']) + D('0.01')}"
    # unexplained: 5.00 more for gpt4 tokens, which no single change reproduces
    gpt4 = _find(rows, "gpt4", "2026-01-15")
    gpt4["amount"] = f"{D(gpt4['amount']) + 5}"
    # missing_in_ratecard: a line only the legacy system bills; missing_in_legacy: one it forgot
    rows.append({**storage, "code": "support", "quantity": "1", "amount": "99.00"})
    rows.remove(_find(rows, "base", "2026-03-01"))
    result = _run(store, catalog, _write(tmp_path / "legacy.csv", rows))
    found = {(d.code, d.service_start.isoformat(), d.field): (d.cause, d.detail) for d in result.differences}
    assert found[("storage", "2026-01-15", "quantity")] == ("aggregation", {"aggregation": "sum"})
    assert found[("storage", "2026-01-15", "amount")][0] == "aggregation"
    assert found[("tokens", "2026-01-15", "amount")] == ("tier_model", {"model": "volume"})
    assert found[("base", "2026-02-01", "amount")] == ("override", {"legacy_used": "the list price"})
    assert found[("calls", "2026-01-15", "quantity")][0] == "period_boundary"
    assert found[("calls", "2026-01-15", "quantity")][1]["window"] == "UTC"
    assert found[("seats", "2026-01-15", "amount")] == ("rounding", {})
    assert found[("gpt4", "2026-01-15", "amount")] == ("unexplained", {})
    assert found[("support", "2026-01-15", "line")][0] == "missing_in_ratecard"
    assert found[("base", "2026-03-01", "line")][0] == "missing_in_legacy"
    # nothing invented: exactly the differences planted
    assert len(result.differences) == 9  # calls: 2 x 0.0001 still rounds to 0.00, so no amount difference
    summary = result.summary()
    assert summary["by_cause"]["override"] == {"count": 1, "money_at_stake": {"EUR": "10.00"}}


def test_tax_rate_and_tax_rounding(db_url: str, tmp_path: Path) -> None:
    store, catalog = _setup(db_url, tmp_path)
    invoice = [i for i in list_invoices(store) if i.issue_date == "2026-02-01"][0]
    start = "2026-01-15"
    rows = [r for r in _legacy_rows(store) if r["service_start"] == start]
    amounts = [D(r["amount"]) for r in rows]
    # tax per line at 19%, each rounded: differs from one rounding on the sum
    per_line = [(a * D("0.19")).quantize(D("0.01"), "ROUND_HALF_UP") for a in amounts]
    on_sum = (sum(amounts) * D("0.19")).quantize(D("0.01"), "ROUND_HALF_UP")
    assert invoice.tax_rate == 19
    for row, tax in zip(rows, per_line, strict=True):
        row["tax"] = f"{tax}"
    if sum(per_line) != on_sum:  # the planted difference exists for these amounts
        result = _run(store, catalog, _write(tmp_path / "rounding.csv", rows))
        taxes = [d for d in result.differences if d.field == "tax"]
        assert [(d.cause, d.detail) for d in taxes] == [("tax_rounding", {"tax_rounding": "line"})]
    # 20% instead of 19%, on each line
    for row, amount in zip(rows, amounts, strict=True):
        row["tax"] = f"{(amount * D('0.20')).quantize(D('0.01'), 'ROUND_HALF_UP')}"
    result = _run(store, catalog, _write(tmp_path / "rate.csv", rows))
    taxes = [d for d in result.differences if d.field == "tax"]
    assert len(taxes) == 1 and taxes[0].cause == "tax_rate" and taxes[0].detail["legacy_rate"] == "20"


def test_a_line_in_another_currency_is_a_currency_difference_never_a_match(db_url: str, tmp_path: Path) -> None:
    """The legacy system bills a line in USD where ratecard bills EUR: the same figure is no match
    (19.00 USD is not 19.00 EUR) and another figure is no amount difference either; each is one
    difference of cause `currency`, naming both currencies, and the money at stake is ratecard's
    whole line. The line's tax is not compared across currencies."""
    store, catalog = _setup(db_url, tmp_path)
    rows = [{**row, "currency": "EUR"} for row in _legacy_rows(store)]
    base = _find(rows, "base", "2026-02-01")
    base["currency"] = "usd"
    storage = _find(rows, "storage", "2026-01-15")
    storage.update(currency="USD", amount=f"{D(storage['amount']) + 1}", tax="0.01")
    result = _run(store, catalog, _write(tmp_path / "legacy.csv", rows))
    found = {(d.code, d.service_start.isoformat(), d.field): d for d in result.differences}
    assert set(found) == {("base", "2026-02-01", "currency"), ("storage", "2026-01-15", "currency")}
    difference = found[("base", "2026-02-01", "currency")]
    assert (difference.cause, difference.currency) == ("currency", "EUR")
    assert difference.as_dict()["legacy_currency"] == "USD" and difference.as_dict()["delta"] is None
    assert result.summary()["by_cause"]["currency"]["count"] == 2
    from ratecard.golive.report import to_html

    assert "another currency" in to_html(result)


@pytest.mark.parametrize("style", ["utc", "offset", "unix", "naive_utc"])
def test_period_starts_written_as_instants_match_the_subscriptions_local_days(db_url: str, tmp_path: Path,
                                                                              style: str) -> None:
    """The Berlin subscription's Feb 1 period starts at 2026-01-31T23:00:00Z. An export that writes
    service periods as instants (UTC with Z, a local offset, Unix seconds, or UTC without an offset
    declared by the mapping's `timezone`) matches every line on the subscription's own day instead
    of reporting each one missing on both sides."""
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    store, catalog = _setup(db_url, tmp_path)
    berlin, utc = ZoneInfo("Europe/Berlin"), ZoneInfo("UTC")

    def instant(day: object) -> str:
        local = datetime.combine(date.fromisoformat(str(day)), time(), berlin)
        return {"utc": local.astimezone(utc).isoformat().replace("+00:00", "Z"), "offset": local.isoformat(),
                "unix": str(int(local.timestamp())),
                "naive_utc": local.astimezone(utc).strftime("%Y-%m-%d %H:%M:%S")}[style]

    rows = [{**row, "service_start": instant(row["service_start"]), "service_end": instant(row["service_end"])}
            for row in _legacy_rows(store)]
    assert any(row["service_start"].startswith("2026-01-31T23") for row in rows) or style in ("offset", "unix",
                                                                                              "naive_utc")
    path = _write(tmp_path / "legacy.csv", rows)
    mapping = Mapping({}, timezone="UTC") if style == "naive_utc" else Mapping({})
    result = reconcile(store, catalog, read_legacy(path, mapping))
    assert [(d.code, d.service_start.isoformat(), d.cause) for d in result.differences] == []
    assert result.matched == result.ratecard_lines


def test_a_line_the_legacy_export_holds_twice_is_named_a_duplicate(db_url: str, tmp_path: Path) -> None:
    """The same line twice (an export written twice over, or a period billed on two invoices):
    one copy is ratecard's line exactly, so the difference is `duplicate_in_legacy` with the copies
    and their invoices, never an `unexplained` doubled amount and quantity. A line split in two
    rows that add up to ratecard's is still no difference."""
    store, catalog = _setup(db_url, tmp_path)
    rows = [{**row, "invoice": "LEG-1"} for row in _legacy_rows(store)]
    base = _find(rows, "base", "2026-02-01")
    rows.append({**base, "invoice": "LEG-2"})
    storage = _find(rows, "storage", "2026-01-15")
    half = D(storage["amount"]) / 2
    storage.update(amount=f"{half:f}", quantity="")
    rows.append({**storage})
    # ratecard's line of nothing, twice in the export, is still nothing: no difference
    rows.append(dict(_find(rows, "gpt4", "2026-02-01")))
    result = _run(store, catalog, _write(tmp_path / "legacy.csv", rows))
    assert [(d.code, d.field, d.cause, d.detail) for d in result.differences] == [
        ("base", "line", "duplicate_in_legacy", {"copies": 2, "invoices": "LEG-1, LEG-2"})]
    assert result.summary()["by_cause"]["duplicate_in_legacy"]["money_at_stake"] == {"EUR": "39.00"}


def test_a_legacy_line_of_nothing_missing_in_ratecard_is_no_difference(db_url: str, tmp_path: Path) -> None:
    """A legacy system that exports a line for every metered price, used or not (quantity 0,
    amount 0.00), is compared like ratecard's own lines of nothing: a line billing nothing that one
    side lacks is no difference, so a clean cycle stays clean. A line of 0.00 for a quantity, or
    a negative line (a credit), is still a difference."""
    store, catalog = _setup(db_url, tmp_path)
    rows = _legacy_rows(store)
    storage = _find(rows, "storage", "2026-01-15")
    rows.append({**storage, "code": "sms", "quantity": "0", "amount": "0.00"})
    rows.append({**storage, "code": "fax", "quantity": "", "amount": "-0"})
    rows.append({**storage, "code": "pager", "quantity": "3", "amount": "0.00"})
    rows.append({**storage, "code": "refund", "quantity": "1", "amount": "-5.00"})
    result = _run(store, catalog, _write(tmp_path / "legacy.csv", rows))
    assert [(d.code, d.cause) for d in result.differences] == [("pager", "missing_in_ratecard"),
                                                               ("refund", "missing_in_ratecard")]


def test_a_legacy_line_of_a_customer_ratecard_does_not_know_says_so(db_url: str, tmp_path: Path) -> None:
    """A customer not yet migrated (not in the catalog) is told apart from a known customer's line
    ratecard lacks: both are missing_in_ratecard, the first with `ratecard_customer: unknown`."""
    store, catalog = _setup(db_url, tmp_path)
    rows = _legacy_rows(store)
    storage = _find(rows, "storage", "2026-01-15")
    rows.append({**storage, "customer": "ghostco", "amount": "7.00"})
    rows.append({**storage, "code": "support", "amount": "9.00"})
    result = _run(store, catalog, _write(tmp_path / "legacy.csv", rows))
    assert [(d.customer, d.code, d.cause, d.detail) for d in result.differences] == [
        ("acme", "support", "missing_in_ratecard", {}),
        ("ghostco", "storage", "missing_in_ratecard", {"ratecard_customer": "unknown"})]
    from ratecard.golive.report import to_csv

    assert "ghostco,storage,2026-01-15,line,,7.00,,missing_in_ratecard,,ratecard_customer=unknown" in to_csv(result)
