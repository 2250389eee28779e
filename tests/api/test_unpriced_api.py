"""POST /v1/events flags an event its subscription takes but no charge counts: `unpriced`."""

from __future__ import annotations

from ..integration.test_unpriced_events import CATALOG, EVENTS
from .conftest import Api


def test_post_events_flags_unpriced_events(api: Api) -> None:
    api.apply_catalog(CATALOG)
    result = api.post("/v1/events", json=EVENTS).json()
    assert (result["stored"], result["flags"]) == (5, {"unpriced": 3})
    assert result["unmatched"] == {"unpriced": ["c1", "c2", "i1"]}
    assert api.get("/v1/ingestion/metrics").json()["totals"]["unmatched_by_reason"] == {"unpriced": 3}
