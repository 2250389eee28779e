"""A Solvimon-compatible subscription write is all or nothing, on SQLite and PostgreSQL: a create
(its start, its end and its API row), a change of plan with its version label, and a cancel with
its reason either all land in one catalog version with the row, or none of it does. A failure in
any step leaves nothing a user can see: no new catalog version, no subscription listed (by the
Solvimon API or by ratecard's own /v1/subscriptions), and the same request then succeeds."""

from __future__ import annotations

from typing import Any

import pytest

from ratecard.catalog.edits import EditError
from ratecard.services import subscription_changes
from ratecard.store import resources as store_resources

from ..solvimon_sdk import errors, m, sv
from .held_writes import held_while
from .test_solvimon_sdk import Live, V, catalog_of
from .test_solvimon_subscriptions import at, draft_subscription, pin, plans_and_customer, server, subscribe

__all__ = ["server"]

SCHEDULE = {"pricing_plan_id": "basic", "start_at": "2026-05-01T00:00:00Z", "end_at": "2026-08-01T00:00:00Z"}
CREATE = {"reference": "acme-main", "customer_reference": "acme", "name": "Acme main",
          "pricing_plan_schedule_infos": [SCHEDULE]}


def seen(server: Live) -> dict[str, Any]:
    """What a user sees of subscriptions: the catalog's version and subscriptions, ratecard's own
    listing, and the Solvimon listing (with each one's schedules)."""
    version = server.http("GET", "/v1/catalog").json()["version"]
    ours = server.http("GET", "/v1/subscriptions")
    assert ours.status_code == 200, ours.text
    listed = server.http("GET", "/v1/pricing-plan-subscriptions")
    assert listed.status_code == 200, listed.text
    return {"version": version,
            "catalog": [s["reference"] for s in catalog_of(server)["subscriptions"]],
            "ratecard": [(s["reference"], s["plan"], s.get("end")) for s in ours.json()["data"]],
            "solvimon": [(s["reference"], s["status"], s.get("name"), (s.get("ratecard") or {}).get("cancellation"),
                          [(i["pricing_plan_id"], i["start_at"], i["end_at"], i.get("pricing_plan_version_id"))
                           for i in s["pricing_plan_schedule_infos"]])
                         for s in listed.json()["data"]]}


def fail_subscription_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """The subscription's API row cannot be written (the database refuses it, say): the write that
    comes after the catalog's in the request."""
    real = store_resources.ConfigChange.put

    def put(self: store_resources.ConfigChange, row: store_resources.Resource) -> store_resources.Resource:
        if row.kind == "subscription":
            raise RuntimeError("the row could not be written")
        return real(self, row)

    monkeypatch.setattr(store_resources.ConfigChange, "put", put)


def refuse_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ending a subscription is refused, as it is for one that ended already: the start of the
    schedule is accepted, its end is not."""

    def set_end(*_: Any, **__: Any) -> Any:
        raise EditError("the end is refused", "ended", "at")

    monkeypatch.setattr(subscription_changes, "set_end", set_end)


def test_a_create_whose_row_cannot_be_written_leaves_nothing_and_a_retry_succeeds(
        server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    before = seen(server)
    assert (before["catalog"], before["ratecard"], before["solvimon"]) == ([], [], [])

    with monkeypatch.context() as patched:
        fail_subscription_rows(patched)
        failed = server.http("POST", "/v1/pricing-plan-subscriptions", json=CREATE)
        assert failed.status_code == 500, failed.text
    assert seen(server) == before  # no catalog version, no catalog subscription, no row

    made = server.http("POST", "/v1/pricing-plan-subscriptions", json=CREATE)
    assert made.status_code == 201, made.text
    after = seen(server)
    assert after["version"] == before["version"] + 1  # start and end in one version
    assert after["ratecard"] == [("acme-main", "basic", "2026-08-01T00:00:00Z")]
    assert after["solvimon"] == [("acme-main", "ACTIVE", "Acme main", None,
                                  [("basic", "2026-05-01T00:00:00Z", "2026-08-01T00:00:00Z", None)])]


def test_a_create_whose_end_is_refused_after_its_start_leaves_nothing(
        server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    before = seen(server)
    subscriptions = server.api(sv.PricingPlanSubscriptionsApi)
    init = m.PricingPlanSubscriptionInitCreateRequest(
        pricing_plan_subscription=m.PricingPlanSubscriptionCreateRequest(reference="acme-main",
                                                                         customer_reference="acme", name="Acme main"),
        pricing_plan_schedules=[m.PricingPlanScheduleCreateRequest(
            pricing_plan_id="basic", start_at=at("2026-05-01T00:00:00Z"), end_at=at("2026-08-01T00:00:00Z"))])

    with monkeypatch.context() as patched:
        refuse_ends(patched)
        with pytest.raises(errors.BadRequestException) as refused:
            subscriptions.post_pricing_plan_subscriptions_init(V, pricing_plan_subscription_init_create_request=init)
        assert refused.value.data.code == "INVALID_OPERATION"
        failed = server.http("POST", "/v1/pricing-plan-subscriptions", json=CREATE)
        assert failed.status_code == 400, failed.text
    assert seen(server) == before

    made = subscriptions.post_pricing_plan_subscriptions_init(V, pricing_plan_subscription_init_create_request=init)
    assert made.pricing_plan_subscription.pricing_plan_schedule_infos[0].end_at == "2026-08-01T00:00:00Z"
    after = seen(server)
    assert after["version"] == before["version"] + 1
    assert after["solvimon"] == [("acme-main", "ACTIVE", "Acme main", None,
                                  [("basic", "2026-05-01T00:00:00Z", "2026-08-01T00:00:00Z", None)])]


def test_a_draft_given_its_schedule_stays_a_draft_when_the_row_fails(
        server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    draft_subscription(server, "acme-later", "Later")
    before = seen(server)
    assert before["solvimon"] == [("acme-later", "DRAFT", "Later", None, [])]
    schedule = {"pricing_plan_id": "basic", "start_at": "2026-06-01T00:00:00Z"}

    with monkeypatch.context() as patched:
        fail_subscription_rows(patched)
        failed = server.http("POST", "/v1/pricing-plan-schedules",
                             json={**schedule, "pricing_plan_subscription_id": "acme-later"})
        assert failed.status_code == 500, failed.text
    assert seen(server) == before

    attached = server.http("POST", "/v1/pricing-plan-schedules",
                           json={**schedule, "pricing_plan_subscription_id": "acme-later"})
    assert attached.status_code in (200, 201), attached.text
    assert seen(server)["solvimon"] == [("acme-later", "ACTIVE", "Later", None,
                                         [("basic", "2026-06-01T00:00:00Z", None, None)])]


def test_a_change_of_plan_or_a_cancel_whose_row_fails_changes_nothing(
        server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    subscriptions = server.api(sv.PricingPlanSubscriptionsApi)
    subscribe(subscriptions, "acme-main", "basic", "2026-05-01T00:00:00Z", name="Acme main")
    before = seen(server)
    change = {"pricing_plan_id": "pro", "pricing_plan_version_id": "pro-v2", "start_at": "2026-05-15T00:00:00Z"}
    cancel = {"type": "DATE", "cancel_at": "2026-07-01T00:00:00Z", "reason": "moving on"}

    with monkeypatch.context() as patched:
        fail_subscription_rows(patched)
        for path, body in (("change-plan", change), ("cancel", cancel)):
            failed = server.http("POST", f"/v1/pricing-plan-subscriptions/acme-main/{path}", json=body)
            assert failed.status_code == 500, (path, failed.text)
            assert seen(server) == before, path

    changed = server.http("POST", "/v1/pricing-plan-subscriptions/acme-main/change-plan", json=change)
    assert changed.status_code in (200, 201), changed.text
    cancelled = server.http("POST", "/v1/pricing-plan-subscriptions/acme-main/cancel", json=cancel)
    assert cancelled.status_code == 200, cancelled.text
    after = seen(server)
    assert after["version"] == before["version"] + 2
    assert after["solvimon"] == [("acme-main", "ACTIVE", "Acme main", {"type": "DATE", "reason": "moving on"}, [
        ("basic", "2026-05-01T00:00:00Z", "2026-05-15T00:00:00Z", None),
        ("pro", "2026-05-15T00:00:00Z", "2026-07-01T00:00:00Z", "pro-v2")])]


def test_two_creates_of_one_reference_at_once_make_one_subscription(
        server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    """A create with a schedule is held after it validated its catalog (before it stores anything)
    while a create of the same reference without one (a DRAFT) is made: the held one is then
    refused, and what is listed is the draft alone, as it was answered."""
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    before = seen(server)
    scheduled, draft = held_while(
        monkeypatch,
        lambda: server.http("POST", "/v1/pricing-plan-subscriptions", json=CREATE),
        lambda: server.http("POST", "/v1/pricing-plan-subscriptions", json={
            "reference": "acme-main", "customer_reference": "acme", "name": "The draft"}))
    assert draft.status_code == 201, draft.text
    assert scheduled.status_code == 409, scheduled.text
    assert scheduled.json()["code"] == "RESOURCE_ALREADY_EXISTS"
    after = seen(server)
    assert (after["version"], after["catalog"], after["ratecard"]) == (before["version"], [], [])
    assert after["solvimon"] == [("acme-main", "DRAFT", "The draft", None, [])]


def schedules_of(server: Live, reference: str) -> list[tuple[str, str, str | None, str | None]]:
    """The subscription's schedules as GET /v1/pricing-plan-schedules lists them (DRAFT ones too)."""
    listed = server.http("GET", "/v1/pricing-plan-schedules", params={"pricing_plan_subscription_id": reference})
    assert listed.status_code == 200, listed.text
    return sorted((s["status"], s["pricing_plan_id"], s["start_at"], s.get("end_at")) for s in listed.json()["data"])


def test_schedule_edits_activations_and_voids_whose_row_fails_change_nothing(
        server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    """A schedule PATCH that rewrites the first terms, ends them and labels them; a DRAFT schedule
    activated (its DRAFT taken away); a void (the row keeps what was voided): each is refused whole
    when its row cannot be written, and made whole (one catalog version) when it can."""
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    made = server.http("POST", "/v1/pricing-plan-subscriptions", json={
        "reference": "acme-later", "customer_reference": "acme", "name": "Later",
        "pricing_plan_schedule_infos": [{"pricing_plan_id": "basic", "start_at": "2026-06-01T00:00:00Z"}]})
    assert made.status_code == 201, made.text
    first = made.json()["pricing_plan_schedule_infos"][0]["id"]
    draft = server.http("POST", "/v1/pricing-plan-schedules", json={
        "pricing_plan_subscription_id": "acme-later", "pricing_plan_id": "pro", "start_at": "2026-07-01T00:00:00Z",
        "status": "DRAFT"})
    assert draft.status_code == 201, draft.text
    patch = {"seats_values": [{"number": "3"}], "end_at": "2026-09-01T00:00:00Z", "pricing_plan_version_id": "basic-v1"}
    before = (seen(server), schedules_of(server, "acme-later"))

    with monkeypatch.context() as patched:
        fail_subscription_rows(patched)
        for method, path, body in (("PATCH", f"/v1/pricing-plan-schedules/{first}", patch),
                                   ("POST", f"/v1/pricing-plan-schedules/{draft.json()['id']}/activate", None),
                                   ("POST", "/v1/pricing-plan-subscriptions/acme-later/void", None)):
            failed = server.http(method, path, json=body)
            assert failed.status_code == 500, (path, failed.text)
            assert (seen(server), schedules_of(server, "acme-later")) == before, path

    patched_schedule = server.http("PATCH", f"/v1/pricing-plan-schedules/{first}", json=patch)
    assert patched_schedule.status_code == 200, patched_schedule.text
    after = seen(server)
    assert after["version"] == before[0]["version"] + 1  # new terms, end and label together
    assert after["ratecard"] == [("acme-later", "basic", "2026-09-01T00:00:00Z")]
    assert after["solvimon"][0][4][0] == ("basic", "2026-06-01T00:00:00Z", "2026-09-01T00:00:00Z", "basic-v1")
    assert schedules_of(server, "acme-later") == [("ACTIVE", "basic", "2026-06-01T00:00:00Z", "2026-09-01T00:00:00Z"),
                                                  ("DRAFT", "pro", "2026-07-01T00:00:00Z", None)]
    activated = server.http("POST", f"/v1/pricing-plan-schedules/{draft.json()['id']}/activate")
    assert activated.status_code == 200, activated.text
    assert seen(server)["version"] == after["version"] + 1
    assert schedules_of(server, "acme-later") == [("ACTIVE", "basic", "2026-06-01T00:00:00Z", "2026-07-01T00:00:00Z"),
                                                  ("ACTIVE", "pro", "2026-07-01T00:00:00Z", "2026-09-01T00:00:00Z")]
    voided = server.http("POST", "/v1/pricing-plan-subscriptions/acme-later/void")
    assert voided.status_code == 200, voided.text
    final = seen(server)
    assert (final["version"], final["catalog"], final["ratecard"]) == (after["version"] + 2, [], [])
    assert [s[:2] for s in final["solvimon"]] == [("acme-later", "VOID")]


def test_an_init_whose_subscription_fails_leaves_no_customer_either(
        server: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    pin(monkeypatch, "2026-05-10T12:00:00Z")
    plans_and_customer(server)
    before = seen(server)
    init = {"customer": {"type": "ORGANIZATION", "reference": "globex", "organization": {"legal_name": "Globex"}},
            "pricing_plan_subscription": {"reference": "globex-1", "name": "Globex"},
            "pricing_plan_schedules": [SCHEDULE]}

    with monkeypatch.context() as patched:
        fail_subscription_rows(patched)
        failed = server.http("POST", "/v1/pricing-plan-subscriptions/init", json=init)
        assert failed.status_code == 500, failed.text
    assert seen(server) == before
    assert server.http("GET", "/v1/customers/globex").status_code == 404

    made = server.http("POST", "/v1/pricing-plan-subscriptions/init", json=init)
    assert made.status_code == 200, made.text
    assert (made.json()["customer"]["reference"], made.json()["customer"]["status"]) == ("globex", "ACTIVE")
    assert server.http("GET", "/v1/customers/globex").status_code == 200
    assert seen(server)["solvimon"] == [("globex-1", "ACTIVE", "Globex", None,
                                         [("basic", "2026-05-01T00:00:00Z", "2026-08-01T00:00:00Z", None)])]
