"""Solvimon's CSV upload template of a meter (GET /v1/meters/{key}/meter-data-file), built from
references a caller chose: a file a spreadsheet opens safely, whatever the references hold."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from ratecard.ingest.readers import read_events
from ratecard.ingest.records import RawEvent


def _created(api: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(path, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_hostile_references_are_csv_cells_never_formulas_and_the_file_name_is_plain(api: Any) -> None:
    formula, comma, quote = '=HYPERLINK("http://evil.example","x")', "tokens,latency", 'say"hi"'
    for reference in (formula, comma, quote):
        _created(api, "/v1/meter-values", {"reference": reference, "name": "V", "type": "NUMBER"})
    _created(api, "/v1/meter-properties", {"reference": "@SUM(A1)", "name": "P", "type": "STRING"})
    meter = _created(api, "/v1/meters", {
        "reference": "zähler-🚀-\"x\"", "name": "M", "meter_properties": [{"reference": "@SUM(A1)"}],
        "meter_values": [{"reference": formula}, {"reference": comma}, {"reference": quote}]})
    response = api.get(f"/v1/meters/{meter['id']}/meter-data-file")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="z_hler-_-_x_.csv"'
    (header,) = list(csv.reader(io.StringIO(response.text)))
    assert header == ["customer_reference", "pricing_plan_subscription_reference", "reference", "timestamp",
                      "meter_reference", "'" + formula, comma, quote, "'@SUM(A1)"]


def test_the_template_filled_in_is_read_back_with_the_references_as_they_were(api: Any, tmp_path: Path) -> None:
    _created(api, "/v1/meter-values", {"reference": "tokens", "name": "Tokens", "type": "NUMBER"})
    _created(api, "/v1/meter-properties", {"reference": "@model", "name": "Model", "type": "STRING"})
    _created(api, "/v1/meters", {"reference": "llm", "name": "LLM", "meter_values": [{"reference": "tokens"}],
                                 "meter_properties": [{"reference": "@model"}]})
    header = api.get("/v1/meters/llm/meter-data-file").text
    filled = tmp_path / "llm.csv"
    filled.write_text(header + "acme,,e1,2026-09-05T10:00:00Z,llm,1834,gpt-4o\n")
    (event,) = read_events(filled, "solvimon-csv")
    assert isinstance(event, RawEvent) and event.properties == {"tokens": "1834", "@model": "gpt-4o"}
