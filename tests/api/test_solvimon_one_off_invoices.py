"""One-off invoices through the published Solvimon SDK against a live server, on both stores:
POST /v1/invoices (type ONE_OFF), lines added (`lines`, `add-line`), replaced (PUT) and removed
(DELETE, `delete-line`) on the draft; finalizing numbers it in the invoices' gapless sequence, and
its lines never change after that (a credit note corrects it). Then the invoice upkeep actions:
archive, refresh, cancel-dunning-actions, export_to_erp and the e-invoice operations.

Hand-computed: customer acme pays 19 % tax, rounded once per invoice (half up).
  consulting: FLAT 3 x 120.005 = 360.015 -> 360.02
  set-up:     FIXED 99.99
  subtotal 460.01, tax 19 % = 87.4019 -> 87.40, total 547.41
after editing consulting to 2.5 x 100.00 = 250.00: subtotal 349.99, tax 66.4981 -> 66.50, total 416.49
after deleting set-up: subtotal 250.00, tax 47.50, total 297.50
"""

from __future__ import annotations

import json

import pytest

from ..solvimon_sdk import errors, m, sv
from .test_solvimon_invoice_actions import CATALOG, _drafts, _finalize
from .test_solvimon_sdk import Live, V, body_of, server  # noqa: F401 - `server` is the live-server fixture


def _apply(live: Live) -> sv.InvoicesApi:
    response = live.http("POST", "/v1/catalog", content=CATALOG.encode(), headers={"content-type": "application/yaml"})
    assert response.status_code == 201, response.text
    return live.api(sv.InvoicesApi)


def _flat(units: str, unit: str, name: str = "Consulting") -> m.OneOffInvoiceLineCreateRequest:
    return m.OneOffInvoiceLineCreateRequest(
        pricing_type="FLAT", pricing_name=name, volume=m.VolumeCreateRequest(number=units),
        pricing_band=m.PricingItemConfigBandCreateRequest(amount=m.Amount(quantity=unit, currency="EUR")))


def _fixed(amount: str, name: str = "Set-up") -> m.OneOffInvoiceLineCreateRequest:
    return m.OneOffInvoiceLineCreateRequest(
        pricing_type="FIXED", pricing_name=name,
        pricing_band=m.PricingItemConfigBandCreateRequest(fixed_amount=m.Amount(quantity=amount, currency="EUR")))


def _lines(invoice: m.Invoice) -> list[tuple[str, str]]:
    return [(line.description, line.amount_excluding_tax.quantity)
            for period in invoice.periods or [] for group in period.groups or [] for line in group.lines or []]


def _totals(invoice: m.Invoice) -> tuple[str, str, str]:
    summary = invoice.tax_summary
    return summary.base_amount.quantity, summary.tax_amount.quantity, invoice.invoice_amount_including_tax.quantity


def _one_off(invoices: sv.InvoicesApi) -> m.Invoice:
    return invoices.post_invoices(V, invoice_create_request_transaction=m.InvoiceCreateRequestTransaction(
        type="ONE_OFF", customer_reference="acme"))


def test_a_one_off_draft_is_written_edited_and_finalized_with_a_gapless_number(server: Live) -> None:  # noqa: F811
    invoices = _apply(server)
    draft = _one_off(invoices)
    assert (draft.type, draft.status, draft.customer_reference, draft.billing_currency) == \
        ("ONE_OFF", "DRAFT", "acme", "EUR")
    assert draft.invoice_number.startswith("DRAFT-") and draft.pricing_plan_subscription_ids == []
    assert _totals(draft) == ("0.00", "0.00", "0.00")
    one = invoices.post_invoices_by_resource_id_lines(V, draft.id, one_off_invoice_line_create_request=_flat(
        "3", "120.005"))
    two = invoices.post_invoices_by_resource_id_add_line(V, draft.id, one_off_invoice_line_create_request=_fixed(
        "99.99"))
    assert _lines(one) == [("Consulting", "360.02")]
    assert _lines(two) == [("Consulting", "360.02"), ("Set-up", "99.99")]
    assert _totals(two) == ("460.01", "87.40", "547.41")
    [first, second] = [line.id for period in two.periods for group in period.groups for line in group.lines]
    edited = invoices.update_invoices_by_resource_id_lines_by_invoice_line_resource_id(
        V, draft.id, first, one_off_invoice_line_create_request=_flat("2.5", "100.00"))
    assert _lines(edited) == [("Consulting", "250.00"), ("Set-up", "99.99")]
    assert _totals(edited) == ("349.99", "66.50", "416.49")
    removed = invoices.delete_invoices_by_resource_id_lines_by_invoice_line_resource_id(V, draft.id, second)
    assert _lines(removed) == [("Consulting", "250.00")] and _totals(removed) == ("250.00", "47.50", "297.50")
    # the invoice run never recomputes nor removes a one-off draft, nor finalizes it on its own
    run = server.http("POST", "/v1/invoice-runs", json={"until": "2026-02-01"})
    assert run.status_code == 200, run.text
    assert _totals(invoices.get_invoices_by_resource_id(V, draft.id)) == ("250.00", "47.50", "297.50")
    # a subscription's draft takes no hand-written line: the run would drop it
    [subscription_draft] = [i for i in invoices.get_invoices(V, statuses=["DRAFT"]).data if i.type == "STANDARD"][:1]
    with pytest.raises(errors.BadRequestException) as refused:
        invoices.post_invoices_by_resource_id_lines(V, subscription_draft.id,
                                                    one_off_invoice_line_create_request=_fixed("5.00"))
    assert body_of(refused.value)["code"] == "INVALID_OPERATION"
    # finalized: numbered after the invoices finalized before it, in the same sequence
    standard = _finalize(invoices, subscription_draft.id)
    final = _finalize(invoices, draft.id)
    assert (standard.invoice_number, final.invoice_number, final.status) == ("RC-000001", "RC-000002", "FINAL")
    for call in (lambda: invoices.post_invoices_by_resource_id_lines(V, draft.id,
                                                                     one_off_invoice_line_create_request=_fixed("1")),
                 lambda: invoices.delete_invoices_by_resource_id_lines_by_invoice_line_resource_id(V, draft.id,
                                                                                                   first)):
        with pytest.raises(errors.BadRequestException) as closed:
            call()
        assert body_of(closed.value)["code"] == "INVALID_OPERATION" and "credit note" in body_of(closed.value)["message"]
    # its e-invoice is built like any final invoice's
    assert invoices.post_invoices_by_resource_id_refresh_e_invoices(V, final.id).e_invoices[0].status.status == \
        "GENERATED"
    assert b"297.50" in bytes(invoices.get_invoices_by_resource_id_ubl21(V, final.id))
    note = invoices.post_invoices_by_resource_id_credit(V, final.id)
    assert note.invoice_amount_including_tax.quantity == "-297.50"


def test_delete_line_by_order_and_hostile_lines(server: Live) -> None:  # noqa: F811
    invoices = _apply(server)
    # the SDK's InvoiceLine sends the amount only (its description is read-only): named generically
    plain = invoices.post_invoices(V, invoice_create_request_transaction=m.InvoiceCreateRequestTransaction(
        type="ONE_OFF", customer_reference="acme", billing_currency="EUR", periods=[m.InvoicePeriodCreateRequest(
            groups=[m.InvoiceGroup(lines=[m.InvoiceLine(amount_excluding_tax=m.Amount(quantity="10.00",
                                                                                       currency="EUR"))])])]))
    assert _lines(plain) == [("One-off charge", "10.00")] and _totals(plain) == ("10.00", "1.90", "11.90")
    line = {"description": "Workshop", "amount_excluding_tax": {"quantity": "1000.00", "currency": "EUR"}}
    written = server.http("POST", "/v1/invoices", json={"type": "ONE_OFF", "customer_id": "acme", "periods": [
        {"groups": [{"lines": [line, {"description": "Travel", "amount_excluding_tax": {"quantity": "80.50"}}]}]}]})
    assert written.status_code == 200, written.text
    draft = invoices.get_invoices_by_resource_id(V, written.json()["id"])
    assert _lines(draft) == [("Workshop", "1000.00"), ("Travel", "80.50")]
    assert _totals(draft) == ("1080.50", "205.30", "1285.80")  # 19 % of 1080.50 = 205.295 -> 205.30
    after = invoices.post_invoices_by_resource_id_delete_line(
        V, draft.id, invoice_action_delete_line_create_request=m.InvoiceActionDeleteLineCreateRequest(periods=[
            m.DeleteInvoicePeriodCreateRequest(period_order=0, groups=[m.DeleteInvoiceGroup(
                group_order=0, lines=[m.DeleteInvoiceLine(line_order=0)])])]))
    assert _lines(after) == [("Travel", "80.50")]
    path = f"/v1/invoices/{draft.id}/lines"
    for body, field in (({"pricing_type": "TIERED"}, "pricing_type"),
                        ({"pricing_type": "FLAT", "pricing_band": {"amount": {"quantity": "x"}}},
                         "pricing_band.amount.quantity"),
                        ({"pricing_type": "FLAT", "pricing_band": {"amount": {"quantity": True}}},
                         "pricing_band.amount.quantity"),
                        ({"pricing_type": "FLAT", "pricing_band": {"amount": {"quantity": "1e30"}}},
                         "pricing_band.amount.quantity"),
                        ({"pricing_type": "FLAT", "pricing_band": {"amount": {"quantity": "10.0000000000001"}}},
                         "pricing_band.amount.quantity"),
                        ({"pricing_type": "FLAT", "pricing_band": {"amount": {"quantity": "1", "currency": "USD"}}},
                         "pricing_band.amount.currency"),
                        ({"pricing_type": "FLAT", "volume": {"number": "0"},
                          "pricing_band": {"amount": {"quantity": "1"}}}, "volume.number"),
                        ({"pricing_type": "FIXED", "pricing_name": "x" * 600,
                          "pricing_band": {"fixed_amount": {"quantity": "1"}}}, "pricing_name"),
                        ({"pricing_type": "FIXED", "pricing_plan_subscription_id": "acme-pro",
                          "pricing_band": {"fixed_amount": {"quantity": "1"}}}, "pricing_plan_subscription_id"),
                        ({"pricing_type": "FIXED", "product_item_type": "DEDUCTION",
                          "pricing_band": {"fixed_amount": {"quantity": "500"}}}, "lines"),
                        ({"pricing_type": "FIXED", "end_at": "2000-01-01T00:00:00Z",
                          "pricing_band": {"fixed_amount": {"quantity": "1"}}}, "end_at"),
                        ({"pricing_type": "FIXED", "start_at": "2000-02-01T00:00:00Z", "end_at": "2000-01-01T00:00:00Z",
                          "pricing_band": {"fixed_amount": {"quantity": "1"}}}, "end_at"),
                        ({"pricing_type": "FIXED", "product_item_id": ["set-up"],
                          "pricing_band": {"fixed_amount": {"quantity": "1"}}}, "product_item_id"),
                        ({"pricing_type": "FIXED", "product_item_id": [],
                          "pricing_band": {"fixed_amount": {"quantity": "1"}}}, "product_item_id"),
                        ({"pricing_type": "FIXED", "product_item_id": {"id": "set-up"},
                          "pricing_band": {"fixed_amount": {"quantity": "1"}}}, "product_item_id"),
                        ({"pricing_type": "FIXED", "product_item_id": 7,
                          "pricing_band": {"fixed_amount": {"quantity": "1"}}}, "product_item_id"),
                        ({"pricing_type": "FIXED", "product_item_id": "",
                          "pricing_band": {"fixed_amount": {"quantity": "1"}}}, "product_item_id"),
                        ({"pricing_type": "FIXED", "pricing_name": ["Set-up"],
                          "pricing_band": {"fixed_amount": {"quantity": "1"}}}, "pricing_name"),
                        ({"surprise": 1}, "surprise")):
        response = server.http("POST", path, json=body)
        assert response.status_code == 400 and response.json()["field"] == field, (body, response.text)
    assert _lines(invoices.get_invoices_by_resource_id(V, draft.id)) == [("Travel", "80.50")]  # nothing written
    for body, field in (({"type": "STANDARD", "customer_reference": "acme"}, "type"),
                        ({"type": "ONE_OFF"}, "customer_id"),
                        ({"type": "ONE_OFF", "customer_reference": "acme", "status": "FINAL"}, "status"),
                        ({"type": "ONE_OFF", "customer_reference": "acme", "billing_currency": "ZZZ"}, "billing_currency")):
        response = server.http("POST", "/v1/invoices", json=body)
        assert response.status_code == 400 and response.json()["field"] == field, (body, response.text)
    assert server.http("POST", "/v1/invoices", json={"type": "ONE_OFF", "customer_reference": "nobody"}
                       ).status_code == 404
    with pytest.raises(errors.NotFoundException):
        invoices.delete_invoices_by_resource_id_lines_by_invoice_line_resource_id(V, draft.id, "inl_999_0")
    with pytest.raises(errors.NotFoundException):
        invoices.delete_invoices_by_resource_id_lines_by_invoice_line_resource_id(V, draft.id, f"inl_{draft.id[4:]}_7")
    # zeros written past the 12 decimals allowed are taken when the value is exact at 12 decimals
    padded = server.http("POST", path, json={"pricing_type": "FLAT", "pricing_name": "Padded",
                                             "volume": {"number": "2.000000000000000"},
                                             "pricing_band": {"amount": {"quantity": "10.0000000000000"}}})
    assert padded.status_code == 200, padded.text
    assert _lines(invoices.get_invoices_by_resource_id(V, draft.id)) == [("Travel", "80.50"), ("Padded", "20.00")]


def test_a_line_id_stays_the_lines_own_when_another_line_is_deleted(server: Live) -> None:  # noqa: F811
    invoices = _apply(server)
    draft = _one_off(invoices)
    for name in ("First", "Second", "Third"):
        written = invoices.post_invoices_by_resource_id_lines(V, draft.id, one_off_invoice_line_create_request=_fixed(
            "10.00", name))
    ids = {line.description: line.id for period in written.periods for group in period.groups for line in group.lines}
    removed = invoices.delete_invoices_by_resource_id_lines_by_invoice_line_resource_id(V, draft.id, ids["First"])
    assert {line.description: line.id for period in removed.periods for group in period.groups
            for line in group.lines} == {"Second": ids["Second"], "Third": ids["Third"]}
    # the id read before the delete still names the third line
    edited = invoices.update_invoices_by_resource_id_lines_by_invoice_line_resource_id(
        V, draft.id, ids["Third"], one_off_invoice_line_create_request=_fixed("30.00", "Third, edited"))
    assert _lines(edited) == [("Second", "10.00"), ("Third, edited", "30.00")]
    with pytest.raises(errors.NotFoundException):  # the deleted line's id names no line
        invoices.update_invoices_by_resource_id_lines_by_invoice_line_resource_id(
            V, draft.id, ids["First"], one_off_invoice_line_create_request=_fixed("1.00"))
    assert _lines(invoices.get_invoices_by_resource_id(V, draft.id)) == [("Second", "10.00"),
                                                                        ("Third, edited", "30.00")]


def test_archive_refresh_export_and_e_invoices(server: Live) -> None:  # noqa: F811
    invoices = _drafts(server)
    drafts = invoices.get_invoices(V, statuses=["DRAFT"]).data
    first, second = drafts[0], drafts[1]
    with pytest.raises(errors.BadRequestException):  # a draft is voided before it is archived
        invoices.post_invoices_by_resource_id_archive(V, first.id)
    refreshed = invoices.post_invoices_by_resource_id_refresh(V, first.id, refresh_invoice_create_request=
                                                              m.RefreshInvoiceCreateRequest(type="FULL"))
    assert (refreshed.status, _totals(refreshed)) == ("DRAFT", _totals(first))
    invoices.update_invoices_by_resource_id(V, second.id, invoice_update_request=m.InvoiceUpdateRequest(
        status="VOID"))
    archived = invoices.post_invoices_by_resource_id_archive(V, second.id)
    assert archived.status == "VOID" and json.loads(server.http("GET", f"/v1/invoices/{second.id}").text)[
        "ratecard"]["archived"] is True
    listed = [i.id for i in invoices.get_invoices(V).data]
    assert second.id not in listed and first.id in listed
    with pytest.raises(errors.BadRequestException):  # only a final invoice goes to an ERP or has an e-invoice
        invoices.post_invoices_by_resource_id_export_to_erp(V, first.id)
    with pytest.raises(errors.BadRequestException):
        invoices.post_invoices_by_resource_id_refresh_e_invoices(V, first.id)
    final = _finalize(invoices, first.id)
    with pytest.raises(errors.BadRequestException):  # a final invoice is never archived nor refreshed
        invoices.post_invoices_by_resource_id_archive(V, final.id)
    with pytest.raises(errors.BadRequestException):
        invoices.post_invoices_by_resource_id_refresh(V, final.id)
    exported = json.loads(server.http("POST", f"/v1/invoices/{final.id}/export_to_erp").text)
    assert exported["ratecard"]["export"]["number"] == "RC-000001"
    assert invoices.post_invoices_by_resource_id_export_to_erp(V, final.id).invoice_number == "RC-000001"
    generated = invoices.post_invoices_by_resource_id_refresh_e_invoices(V, final.id)
    [e_invoice] = generated.e_invoices
    assert e_invoice.status.status == "GENERATED" and e_invoice.processor == "RATECARD"
    reported = invoices.update_invoices_by_resource_id_update_e_invoice_status(
        V, final.id, patch_e_invoice_update_request=m.PatchEInvoiceUpdateRequest(
            external_reference=e_invoice.external_reference, status="REJECTED", message="buyer id unknown"))
    assert [s.status for s in reported.status_history] == ["GENERATED", "REJECTED"]
    again = invoices.post_invoices_by_resource_id_resubmit_e_invoice(
        V, final.id, resubmit_e_invoice_create_request=m.ResubmitEInvoiceCreateRequest(mandate="PEPPOL"))
    assert [s.status for s in again.e_invoices[0].status_history] == ["GENERATED", "REJECTED", "GENERATED"]
    assert invoices.get_invoices_by_resource_id(V, final.id).e_invoices[0].status.status == "GENERATED"
    for body, field in (({"status": "LOST"}, "status"), ({"status": "ACCEPTED", "external_reference": "x"},
                                                         "external_reference"), ({"status": 3}, "status")):
        response = server.http("PATCH", f"/v1/invoices/{final.id}/update-e-invoice-status", json=body)
        assert response.status_code in (400, 404) and response.json()["field"] == field, response.text
    # no payment failed: nothing to cancel
    with pytest.raises(errors.BadRequestException):
        invoices.post_invoices_by_resource_id_cancel_dunning_actions(V, final.id)


def test_charge_on_demand_bills_amounts_on_an_invoice_of_their_own(server: Live) -> None:  # noqa: F811
    invoices = _apply(server)
    schedules = server.api(sv.PricingPlanSchedulesApi).get_pricing_plan_schedules(V).data
    [schedule] = [s for s in schedules if s.pricing_plan_subscription_id == "acme-pro"][:1]
    charged = invoices.post_invoices_charge_on_demand_pricing_items(
        V, charge_on_demand_pricing_items_create_request=m.ChargeOnDemandPricingItemsCreateRequest(
            pricing_plan_schedule_id=schedule.id, finalize_immediately=True, pricing_items=[
                m.ChargeOnDemandPricingItemsPricingItemConfigCreateRequest(
                    pricing_item_id="extra-support", flexible_amount=m.Amount(quantity="150.00", currency="EUR")),
                m.ChargeOnDemandPricingItemsPricingItemConfigCreateRequest(
                    pricing_item_id="training", flexible_amount=m.Amount(quantity="33.335", currency="EUR"),
                    units=m.PricingItemConfigMeterValue(number="3"))]))
    # 150.00 + 3 x 33.335 = 100.005 -> 100.01; subtotal 250.01, tax 19 % = 47.5019 -> 47.50, total 297.51
    assert (charged.type, charged.status, charged.invoice_number) == ("ONE_OFF", "FINAL", "RC-000001")
    assert _lines(charged) == [("extra-support", "150.00"), ("training", "100.01")]
    assert _totals(charged) == ("250.01", "47.50", "297.51")
    for body, field in (({"pricing_plan_schedule_id": schedule.id, "pricing_items": [{"units": {"number": "2"}}]},
                         "pricing_items.0.flexible_amount"),
                        ({"pricing_plan_schedule_id": schedule.id, "pricing_items": []}, "pricing_items"),
                        ({"pricing_plan_schedule_id": schedule.id, "pricing_items": [
                            {"pricing_item_id": [], "flexible_amount": {"quantity": "1"}}]},
                         "pricing_items.0.pricing_item_id"),
                        ({"pricing_plan_schedule_id": schedule.id, "preview": True,
                          "pricing_items": [{"flexible_amount": {"quantity": "1"}}]}, "preview")):
        response = server.http("POST", "/v1/invoices/charge-on-demand-pricing-items", json=body)
        assert response.status_code == 400 and response.json()["field"] == field, (body, response.text)
    unknown = server.http("POST", "/v1/invoices/charge-on-demand-pricing-items", json={
        "pricing_plan_schedule_id": "pps_nothing", "pricing_items": [{"flexible_amount": {"quantity": "1"}}]})
    assert unknown.status_code == 404


def test_a_one_off_invoice_sends_the_webhooks_of_any_invoice(server: Live) -> None:  # noqa: F811
    invoices = _apply(server)
    hook = server.api(sv.WebhooksApi).post_webhooks(V, webhook_create_request=m.WebhookCreateRequest(
        url="https://hooks.example/billing", name="Billing", reference="billing",
        included_actions=["invoice.created", "invoice.finalized"]))
    draft = _one_off(invoices)
    _finalize(invoices, draft.id)
    events = server.api(sv.WebhookEventsApi).get_webhook_events(V, webhook_id=hook.id).data
    payloads = sorted((json.loads(e.request_payload) if isinstance(e.request_payload, str) else e.request_payload
                       for e in events), key=lambda p: p["action"])
    assert [p["action"] for p in payloads] == ["invoice.created", "invoice.finalized"]
    assert all(p["data"]["customer_reference"] == "acme" and p["data"]["pricing_plan_subscription_reference"] is None
               for p in payloads)
