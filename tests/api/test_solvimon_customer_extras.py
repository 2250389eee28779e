"""Customers search, the offline tax id check and forgetting a customer, driven with the published
SDK against a live server on SQLite and PostgreSQL. Forgetting erases the personal data of the
current catalog but never an issued invoice: the final invoice's e-invoice still names the buyer."""

from __future__ import annotations

import pytest

from ..solvimon_sdk import errors, m, sv
from .test_solvimon_invoice_actions import _drafts, _finalize, _january
from .test_solvimon_sdk import Live, V, apply_catalog, body_of, catalog_of, create_customer, server  # noqa: F401


def _search(*fields: m.SearchFieldCreateRequest, filters: tuple[m.FilterFieldCreateRequest, ...] = ()
            ) -> m.SearchCreateRequest:
    return m.SearchCreateRequest(search_fields=list(fields), filter_fields=list(filters))


def test_customers_search_by_field_and_filter(server: Live) -> None:  # noqa: F811
    customers = server.api(sv.CustomersApi)
    create_customer(customers, m.CustomerCreateRequest(
        type="ORGANIZATION", reference="acme", email="billing@acme.test",
        organization=m.OrganizationCreateRequest(legal_name="Acme Inc")))
    create_customer(customers, m.CustomerCreateRequest(
        type="INDIVIDUAL", reference="jane", status="ACTIVE", email="jane@doe.test",
        individual=m.IndividualCreateRequest(name=m.Name(first_name="Jane", last_name="Doe"))))
    found = customers.post_customers_search(V, search_create_request=_search(
        m.SearchFieldCreateRequest(name="name", value="DOE", wildcard_start=True, ignore_case=True)))
    assert [c.reference for c in found.data] == ["jane"] and found.total_number_of_pages == 1
    drafts = customers.post_customers_search(V, search_create_request=_search(filters=(
        m.FilterFieldCreateRequest(name="status", values=["DRAFT"]),)))
    assert [c.reference for c in drafts.data] == ["acme"]
    both = customers.post_customers_search(V, search_create_request=_search(
        m.SearchFieldCreateRequest(name="email", value=".test", wildcard_start=True)), order_by="reference",
        order_direction="ASC")
    assert [c.reference for c in both.data] == ["acme", "jane"]
    paged = customers.post_customers_search(V, limit=1, page=2, order_by="reference", order_direction="ASC")
    assert [c.reference for c in paged.data] == ["jane"] and paged.total_number_of_pages == 2
    with pytest.raises(errors.BadRequestException) as bad:
        customers.post_customers_search(V, search_create_request=_search(filters=(
            m.FilterFieldCreateRequest(name="status", values=[]),)))
    assert body_of(bad.value)["field"] == "filter_fields.0.values"


def test_tax_ids_are_checked_offline(server: Live) -> None:  # noqa: F811
    customers = server.api(sv.CustomersApi)
    checked = customers.post_customers_validate_tax_id(V, customer_create_request=m.CustomerCreateRequest(
        type="ORGANIZATION", organization=m.OrganizationCreateRequest(
            tax_id="NL 0044.95445.B01", registered_address=m.Address(country="DE"),
            tax_ids=[m.TaxId(id="136695977"),  # no prefix: the address's country (DE); a wrong check digit
                     m.TaxId(id="51 824 753 556", type="AU_GST"),
                     m.TaxId(id="ESX2482300W"),  # Spain: syntax only
                     m.TaxId(id="123456789", type="CA_QST")])))
    assert [(v.id, v.valid) for v in checked.data] == [
        ("NL004495445B01", "VALID"), ("DE136695977", "NOT_VALID"), ("51824753556", "VALID"),
        ("ESX2482300W", "UNKNOWN"), ("123456789", "UNKNOWN")]
    assert all(v.source == "RATECARD_OFFLINE" and v.validation_date and v.message for v in checked.data)
    with pytest.raises(errors.BadRequestException) as bad:
        customers.post_customers_validate_tax_id(V, customer_create_request=m.CustomerCreateRequest(
            type="ORGANIZATION"))
    assert body_of(bad.value)["field"] == "organization"


def test_forgetting_a_customer_keeps_its_issued_invoices(server: Live) -> None:  # noqa: F811
    invoices = _drafts(server)
    final = _finalize(invoices, _january(invoices).id)
    customers = server.api(sv.CustomersApi)
    # a customer still billed cannot be forgotten
    with pytest.raises(errors.BadRequestException) as running:
        customers.post_customers_by_resource_id_or_reference_forget(V, "acme")
    assert body_of(running.value)["code"] == "INVALID_OPERATION" and "acme-pro" in body_of(running.value)["message"]
    document = catalog_of(server)
    document["subscriptions"][0]["end"] = "2026-02-01"
    apply_catalog(server, document)
    forgotten = customers.post_customers_by_resource_id_or_reference_forget(V, "acme")
    assert (forgotten.reference, forgotten.status, forgotten.email) == ("acme", "ARCHIVED", None)
    assert forgotten.organization is None or forgotten.organization.legal_name is None
    [customer] = catalog_of(server)["customers"]
    assert (customer["name"], customer["email"], customer["tax_id"], customer["address"]) == (None, None, None, None)
    assert (customer["country"], customer["tax_rate"]) == ("DE", "19")  # what decides the tax stays
    # the issued invoice is kept as issued: its e-invoice still names the buyer
    ubl = bytes(invoices.get_invoices_by_resource_id_ubl21(V, final.id))
    assert b"DE987654321" in ubl and b"Unter den Linden 1" in ubl
    assert invoices.get_invoices_by_resource_id(V, final.id).invoice_number == final.invoice_number
    with pytest.raises(errors.NotFoundException):
        customers.post_customers_by_resource_id_or_reference_forget(V, "ghost")
