"""/v1/subscriptions: create, change and cancel (each a new catalog version of the key's environment),
preview=true writing nothing, Idempotency-Key replays, the errors in the envelope."""

from __future__ import annotations

import pytest

from .conftest import Api

CHANGE = {"at": "2026-03-01", "overrides": {"base": {"amount": "39.00"}}}


@pytest.fixture(autouse=True)
def pinned_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATECARD_NOW", "2026-02-10T12:00:00Z")


def version(api: Api, env: str = "live") -> int:
    return api.get("/v1/catalog", env).json()["version"]


def test_preview_writes_nothing_and_each_write_is_a_version(api: Api) -> None:
    api.apply_catalog()
    preview = api.post("/v1/subscriptions/acme-pro/change?preview=true", json=CHANGE)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert (body["stored"], body["dry_run"], body["catalog_version"]) == (False, True, 2)
    assert body["subscription"]["next_change"] == {"at": "2026-03-01", "plan": "pro", "proration": "prorate"}
    assert [d["issue_date"] for d in body["documents"]] == ["2026-03-01"]
    assert version(api) == 1

    changed = api.post("/v1/subscriptions/acme-pro/change", json=CHANGE)
    assert changed.status_code == 200 and changed.json()["catalog_version"] == 2
    created = api.post("/v1/subscriptions", json={"reference": "acme-2", "customer": "acme", "plan": "pro",
                                                    "requires_reference": True,
                                                  "start": "2026-03-01", "billing_anchor": 1})
    assert created.status_code == 201 and created.json()["catalog_version"] == 3
    cancelled = api.post("/v1/subscriptions/acme-pro/cancel", json={"at_period_end": True, "replace_later": True})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["subscription"]["end"] == "2026-03-01T00:00:00+01:00"

    listed = api.get("/v1/subscriptions?customer=acme&order_by=reference").json()["data"]
    assert [(s["reference"], s["status"], s["plan_now"]) for s in listed] == [
        ("acme-2", "scheduled", "pro"), ("acme-pro", "active", "pro")]
    shown = api.get("/v1/subscriptions/acme-pro").json()
    assert [(v["version"], v["what"]) for v in shown["versions"]] == [(1, "created"), (2, "changed"), (4, "changed")]
    assert shown["changes"] == [] and shown["end_proration"] == "prorate"


def test_errors_in_the_envelope(api: Api) -> None:
    api.apply_catalog()
    invalid = api.post("/v1/subscriptions/acme-pro/change", json={"at": "2026-03-01", "plan": "enterprise"})
    assert invalid.status_code == 400
    assert (invalid.json()["code"], invalid.json()["field"]) == ("INVALID_FIELD", "subscriptions[0].changes[0].plan")
    assert api.post("/v1/subscriptions/nope/cancel", json={"at": "2026-03-01"}).status_code == 404
    assert api.post("/v1/subscriptions/acme-pro/change", json={"at": "soon", "plan": "pro"}).json()["field"] == "at"
    bad_choice = api.post("/v1/subscriptions/acme-pro/cancel", json={"at": "2026-03-01", "proration": "invoice_now"})
    assert (bad_choice.status_code, bad_choice.json()["field"]) == (400, "proration")
    api.post("/v1/subscriptions/acme-pro/cancel", json={"at": "2026-02-01"})
    later = api.post("/v1/subscriptions/acme-pro/cancel", json={"at": "2026-03-01"})
    assert (later.status_code, later.json()["code"]) == (400, "INVALID_OPERATION")
    taken = api.post("/v1/subscriptions", json={"reference": "acme-pro", "customer": "acme", "plan": "pro"})
    assert taken.json()["code"] == "RESOURCE_ALREADY_EXISTS"
    assert version(api) == 2


def test_a_sandbox_key_cannot_change_a_live_subscription(api: Api) -> None:
    api.apply_catalog()
    refused = api.post("/v1/subscriptions/acme-pro/change", env="sandbox", json=CHANGE)
    assert refused.status_code == 409  # the sandbox has no catalog
    api.apply_catalog(env="sandbox")
    assert api.post("/v1/subscriptions/acme-pro/change", env="sandbox", json=CHANGE).status_code == 200
    assert (version(api, "sandbox"), version(api)) == (2, 1)
    assert api.get("/v1/subscriptions/acme-pro").json()["changes"] == []


def test_idempotency_key_replays_and_a_preview_never_stands_for_the_write(api: Api) -> None:
    api.apply_catalog()
    first = api.post("/v1/subscriptions/acme-pro/change", json=CHANGE, headers={"Idempotency-Key": "c-1"})
    again = api.post("/v1/subscriptions/acme-pro/change", json=CHANGE, headers={"Idempotency-Key": "c-1"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers.get("idempotent-replayed") == "true"
    assert version(api) == 2  # the retry did not run again

    body = {"at": "2026-04-01", "plan": "pro", "overrides": {"base": {"amount": "35.00"}}}
    preview = api.post("/v1/subscriptions/acme-pro/change?preview=true", json=body, headers={"Idempotency-Key": "c-2"})
    assert preview.json()["stored"] is False
    write = api.post("/v1/subscriptions/acme-pro/change", json=body, headers={"Idempotency-Key": "c-2"})
    assert write.status_code == 409 and write.json()["code"] == "IDEMPOTENCY_CHECK_FAILED"
    assert version(api) == 2


def test_seats_a_trial_and_a_one_off_charge(api: Api) -> None:
    api.apply_catalog()
    seats = api.post("/v1/subscriptions/acme-pro/change", json={"at": "2026-03-01", "quantity": 4})
    assert seats.status_code == 200, seats.text
    assert seats.json()["subscription"]["changes"][0]["quantity"] == 4
    charged = api.post("/v1/subscriptions/acme-pro/charges?preview=true",
                       json={"code": "setup", "amount": "500.00", "at": "2026-03-01"})
    assert charged.status_code == 200, charged.text
    lines = charged.json()["documents"][0]["lines"]
    assert [(line["kind"], line["code"], line["amount"]) for line in lines if line["kind"] == "one_off"] == [
        ("one_off", "setup", "500.00")]
    assert [(line["quantity"], line["unit_amount"], line["amount"]) for line in lines if line["code"] == "base"] == [
        ("4", "49.00", "196.00")]
    created = api.post("/v1/subscriptions", json={"reference": "acme-2", "customer": "acme", "plan": "pro",
                                                  "requires_reference": True, "start": "2026-03-01",
                                                  "trial_days": 30, "quantity": 2})
    assert created.status_code == 201, created.text
    assert created.json()["subscription"]["trial_end"] == "2026-03-31T00:00:00+02:00"
    bad = api.post("/v1/subscriptions/acme-pro/charges", json={"code": "x", "amount": "-5"})
    assert (bad.status_code, bad.json()["field"]) == (400, "subscriptions[0].one_off[0].amount")
    assert version(api) == 3


def test_unschedule_and_void(api: Api) -> None:
    api.apply_catalog()
    api.post("/v1/subscriptions/acme-pro/change", json=CHANGE)
    taken = api.post("/v1/subscriptions/acme-pro/unschedule", json={"at": "2026-03-01"})
    assert taken.status_code == 200, taken.text
    assert (taken.json()["action"], taken.json()["subscription"]["next_change"]) == ("unscheduled", None)
    assert api.post("/v1/subscriptions/acme-pro/unschedule", json={"at": "2026-03-01"}).status_code == 400
    preview = api.post("/v1/subscriptions/acme-pro/void?preview=true")
    assert (preview.status_code, preview.json()["stored"], version(api)) == (200, False, 3)
    voided = api.post("/v1/subscriptions/acme-pro/void")
    assert (voided.status_code, voided.json()["subscription"]["status"]) == (200, "void"), voided.text
    assert api.get("/v1/subscriptions/acme-pro").status_code == 404
    assert api.post("/v1/subscriptions/acme-pro/void").status_code == 404
