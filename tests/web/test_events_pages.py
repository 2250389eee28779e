"""The events explorer: filters, reasons, escaping, reprocessing (operators only), bad input."""

from __future__ import annotations

import re

import pytest

from ..integration.scenario import EVENTS

HOSTILE = "<script>alert(1)</script>"


def _ids(html: str) -> list[str]:
    return re.findall(r'<td class="mono">([^<]*)</td>', html)


def _seed(console) -> None:
    console.api.apply_catalog()
    stray = {"id": "stray-1", "customer": "ghost-corp", "meter": "api_calls", "timestamp": "2026-01-24T10:00:00Z"}
    assert console.api.post("/v1/events", json=[*EVENTS, stray]).json()["stored"] == 7


def test_filters_narrow_the_list(console):
    _seed(console)
    everything = console.viewer.get("/console/events")
    assert everything.status_code == 200
    assert _ids(everything.text) == ["e6", "stray-1", "e5", "e4", "e3", "e2", "e1"]  # newest first
    assert _ids(console.viewer.get("/console/events?customer=ghost-corp").text) == ["stray-1"]
    assert _ids(console.viewer.get("/console/events?meter=gb").text) == ["e5", "e4"]
    assert _ids(console.viewer.get("/console/events?event_id=e3").text) == ["e3"]
    in_range = console.viewer.get("/console/events?from=2026-01-21&until=2026-01-22").text
    assert _ids(in_range) == ["e4", "e3", "e2"]  # a date alone in "until" takes the whole day
    assert _ids(console.viewer.get("/console/events?from=2026-01-21T10:00&until=2026-01-22T00:00").text) == ["e3", "e2"]
    assert _ids(console.viewer.get("/console/events?status=accepted&meter=tokens").text) == ["e2", "e1"]
    unmatched = console.viewer.get("/console/events?status=unmatched").text
    assert _ids(unmatched) == ["stray-1"]
    assert "the customer is not in the catalog" in unmatched
    assert 'data-testid="no-events"' in console.viewer.get("/console/events?status=late").text


def test_paging_is_fifty_a_page_and_keeps_the_filters(console):
    console.api.apply_catalog()
    body = [{"id": f"c{i:03d}", "customer": "acme", "meter": "api_calls",
             "timestamp": f"2026-02-{1 + i // 24:02d}T{i % 24:02d}:00:00Z"} for i in range(60)]
    assert console.api.post("/v1/events", json=body).json()["stored"] == 60
    first = console.viewer.get("/console/events?meter=api_calls").text
    assert len(_ids(first)) == 50 and _ids(first)[0] == "c059"
    assert '<a rel="next" href="/console/events?page=2&amp;meter=api_calls">' in first
    second = console.viewer.get("/console/events?meter=api_calls&page=2").text
    assert _ids(second) == [f"c{i:03d}" for i in range(9, -1, -1)]
    assert 'rel="next"' not in second


def test_a_rejected_event_shows_its_reason_and_reprocess_reports_counts(console):
    # stored before any catalog (unknown_customer), then refused when re-checked: tokens must be a number
    bad = {"id": "r1", "customer": "acme", "meter": "tokens", "timestamp": "2026-01-20T10:00:00Z",
           "properties": {"tokens": "lots"}}
    good = {"id": "r2", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-20T11:00:00Z"}
    assert console.api.post("/v1/events", json=[bad, good]).json()["stored"] == 2
    console.api.apply_catalog()
    page = console.operator.get("/console/events").text
    assert 'data-testid="reprocess"' in page and "matched again against its current catalog" in page
    answer = console.operator.post("/console/events/reprocess")
    assert answer.status_code == 200
    assert "2 unmatched event(s) checked, 1 now matched (0 of them late), 1 still unmatched" in answer.text
    # a link cannot make the page claim a reprocessing it did not do
    forged = console.viewer.get("/console/events?done=reprocessed&checked=999&matched=999").text
    assert "Reprocessed:" not in forged and "999" not in forged
    rejected = console.viewer.get("/console/events?status=rejected").text
    assert _ids(rejected) == ["r1"]
    assert "rejected when reprocessed: a property is not a valid value for its meter" in rejected
    assert _ids(console.viewer.get("/console/events?status=accepted").text) == ["r2"]


def test_hostile_properties_and_names_render_as_text(console):
    event = {"id": "x1", "customer": HOSTILE, "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z",
             "properties": {"note": HOSTILE, "formula": "=HYPERLINK(\"http://evil\")"}}
    assert console.api.post("/v1/events", json=[event]).json()["stored"] == 1
    page = console.viewer.get("/console/events").text
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "=HYPERLINK(" in page  # shown as text, never a formula: this is HTML, not a spreadsheet


def test_viewers_see_no_reprocess_and_get_403_posting(console):
    page = console.viewer.get("/console/events").text
    assert 'data-testid="reprocess"' not in page
    refused = console.viewer.post("/console/events/reprocess")
    assert refused.status_code == 403
    assert "operator role" in refused.text


def test_reprocess_without_the_csrf_token_is_refused(console):
    refused = console.operator.post("/console/events/reprocess", csrf=False)
    assert refused.status_code == 403
    assert "security token" in refused.text


def test_reprocess_without_a_catalog_says_so(console):
    answer = console.operator.post("/console/events/reprocess")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/events?done=no-catalog"
    assert "no catalog has been applied" in console.operator.get(answer.headers["location"]).text


def test_sandbox_events_never_appear_on_live_pages(console):
    console.api.apply_catalog()
    sandbox = {"id": "sandbox-only", "customer": "acme", "meter": "api_calls", "timestamp": "2026-01-20T10:00:00Z"}
    assert console.api.post("/v1/events", env="sandbox", json=[sandbox]).json()["stored"] == 1
    assert "sandbox-only" not in console.viewer.get("/console/events").text
    assert _ids(console.viewer.get("/console/events?event_id=sandbox-only").text) == []
    console.viewer.post("/console/environment", {"environment": "sandbox", "back": "/console/events"})
    assert _ids(console.viewer.get("/console/events").text) == ["sandbox-only"]


@pytest.mark.parametrize("query", ["from=yesterday", "until=2026-13-45", "from=2026-02-01&until=2026-01-01",
                                   "page=-1", "page=0", "page=abc", "status=deleted", "customer=" + "x" * 400])
def test_bad_query_parameters_get_a_400_page(console, query):
    answer = console.viewer.get(f"/console/events?{query}")
    assert answer.status_code == 400, answer.text
    assert "<html" in answer.text.lower()


def test_a_mistyped_filter_is_refused_on_the_events_page_with_what_was_typed_kept(console):
    """'yesterday' in "from": the events page itself says why (400), with the navigation and the
    filter form as they were typed, so the person corrects one field instead of starting over."""
    _seed(console)
    answer = console.viewer.get("/console/events?customer=ghost-corp&meter=api_calls&from=yesterday&status=unmatched")
    assert answer.status_code == 400
    page = answer.text
    assert 'data-testid="event-filters"' in page and 'aria-label="sections"' in page
    assert re.search(r'data-testid="refusal">&#39;yesterday&#39; is not a date', page), page
    for name, value in (("customer", "ghost-corp"), ("meter", "api_calls"), ("from", "yesterday")):
        assert f'name="{name}" value="{value}"' in page, name
    assert '<option value="unmatched" selected>' in page
    assert _ids(page) == [] and "no-events" not in page  # nothing was searched, so nothing is said to match
    hostile = console.viewer.get("/console/events", params={"until": HOSTILE})
    assert hostile.status_code == 400 and HOSTILE not in hostile.text
