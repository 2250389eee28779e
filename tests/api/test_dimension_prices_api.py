"""GET /v1/invoices/{id}: each line of a charge priced per dimension names its filter and group in
the line's `ratecard` extension (docs/billing.md, "Prices per dimension")."""

from __future__ import annotations

import pytest

from ..integration.test_dimension_prices import CATALOG
from .conftest import Api

EVENTS = [
    {"id": "t1", "customer": "acme", "meter": "llm_tokens", "timestamp": "2026-01-10T10:00:00Z",
     "properties": {"model": "gpt-4o", "tokens": 120000}},
    {"id": "t2", "customer": "acme", "meter": "llm_tokens", "timestamp": "2026-01-11T10:00:00Z",
     "properties": {"model": "claude-3", "tokens": 500000}},
    {"id": "c1", "customer": "acme", "meter": "calls", "timestamp": "2026-01-12T10:00:00Z",
     "properties": {"project_id": "a"}},
    {"id": "c2", "customer": "acme", "meter": "calls", "timestamp": "2026-01-12T11:00:00Z"},
]


def test_the_api_lines_carry_filter_and_group(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATECARD_NOW", "2026-02-05T00:00:00Z")
    api.apply_catalog(CATALOG)
    assert api.post("/v1/events", json=EVENTS).status_code == 200
    assert api.post("/v1/invoice-runs", json={"until": "2026-02-01"}).status_code == 200
    listed = api.get("/v1/invoices", params={"include_lines": "true"}).json()
    january = next(item for item in listed["data"] if item["invoice_date"].startswith("2026-02-01"))
    lines = [line["ratecard"] for period in january["periods"] for group in period["groups"]
             for line in group["lines"]]
    assert [(line["code"], line["filter"], line["group"], line["amount"]) for line in lines] == [
        ("llm", "gpt4o", None, "1.20"), ("llm", "mini", None, "0.00"), ("llm", None, None, "1.00"),
        ("api", None, {"project_id": "a"}, "0.00"), ("api", None, {"project_id": None}, "0.00")]
    one = api.get(f"/v1/invoices/{january['id']}").json()
    assert [line["ratecard"]["filter"] for line in one["periods"][0]["groups"][0]["lines"]][:3] == [
        "gpt4o", "mini", None]
