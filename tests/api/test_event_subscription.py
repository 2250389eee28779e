"""Both ingest endpoints take the subscription an event names, and store it with the event."""

from __future__ import annotations

from sqlalchemy import select

from ratecard.store import open_store
from ratecard.store.schema import events

from ..integration.test_event_ownership import WARNED
from .conftest import Api


def _stored(api: Api) -> dict[str, tuple[str, str | None]]:
    store = open_store(api.url)
    with store.engine.connect() as connection:
        rows = connection.execute(select(events.c.id, events.c.status, events.c.subscription)).all()
    store.dispose()
    return {event_id: (status, named) for event_id, status, named in rows}


def _call(event_id: str, **extra: object) -> dict:
    return {"id": event_id, "customer": "acme", "meter": "calls", "timestamp": "2026-01-15T12:00:00Z", **extra}


def test_post_events_takes_the_subscription_and_refuses_a_bad_one(api: Api) -> None:
    api.apply_catalog(WARNED)
    result = api.post("/v1/events", json=[_call("a-1", subscription="acme-new"), _call("a-2"),
                                          _call("a-3", subscription="nope"), _call("bad", subscription=["acme-new"]),
                                          _call("long", subscription="s" * 300)]).json()
    assert (result["stored"], result["flags"]) == (3, {"no_subscription": 1})
    assert {error["id"]: error["reason"] for error in result["errors"]} == {"bad": "invalid_value",
                                                                             "long": "invalid_value"}
    assert _stored(api) == {"a-1": ("matched", "acme-new"), "a-2": ("matched", None),
                            "a-3": ("no_subscription", "nope")}
    schema = api.client.get("/openapi.json").json()
    body = schema["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "subscription" in body["items"]["properties"]


def test_solvimon_meter_data_names_the_subscription_by_reference_or_id(api: Api) -> None:
    api.apply_catalog(WARNED)
    base = {"customer_reference": "acme", "meter_reference": "calls", "timestamp": "2026-01-15T12:00:00Z"}
    created = api.post("/v1/ingest/meter-data", json={**base, "reference": "sv-0000000001",
                                                      "pricing_plan_subscription_reference": "acme-new"})
    assert created.status_code == 201 and created.json()["pricing_plan_subscription_reference"] == "acme-new"
    assert api.post("/v1/ingest/meter-data", json={**base, "reference": "sv-0000000002",
                                                   "pricing_plan_subscription_id": "acme-old"}).status_code == 201
    clash = api.post("/v1/ingest/meter-data", json={**base, "reference": "sv-0000000003",
                                                    "pricing_plan_subscription_reference": "acme-new",
                                                    "pricing_plan_subscription_id": "acme-old"})
    assert clash.status_code == 400 and clash.json()["field"] == "pricing_plan_subscription_id"
    wrong = api.post("/v1/ingest/meter-data", json={**base, "reference": "sv-0000000004",
                                                    "pricing_plan_subscription_reference": 7})
    assert wrong.status_code == 400 and wrong.json()["field"] == "pricing_plan_subscription_reference"
    assert _stored(api) == {"sv-0000000001": ("matched", "acme-new"), "sv-0000000002": ("matched", "acme-old")}
    read = api.get("/v1/ingest/meter-data/sv-0000000002").json()
    assert (read["pricing_plan_subscription_id"], read["processed_details"]["type"]) == ("acme-old", "DEFAULT")
