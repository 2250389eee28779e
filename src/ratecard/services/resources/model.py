"""The Solvimon view of one environment: API resources (api_resources rows) over the catalog.

What bills lives in the catalog: a customer is a catalog customer, a meter value calculation is a
catalog meter. The rows add what Solvimon has and the catalog has not (ids, status, names, the
meters' value and property vocabulary). Customers and calculations that exist only in the catalog
(applied as YAML) are shown too, with a stable id derived from their reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...catalog import check_document
from ...catalog.schema import CatalogDocument
from ...catalog.schema import Customer as CatalogCustomer
from ...catalog.schema import Meter as CatalogMeter
from ...store.resources import ConfigChange, Resource, Resources, stable_id
from .checks import invalid_operation

METER, VALUE, PROPERTY, CALCULATION, CUSTOMER = "meter", "meter_value", "meter_property", "calculation", "customer"
PREFIX = {METER: "met_", VALUE: "metv_", PROPERTY: "metp_", CALCULATION: "mvc_", CUSTOMER: "cus_"}
LABEL = {METER: "meter", VALUE: "meter value", PROPERTY: "meter property", CALCULATION: "meter value calculation",
         CUSTOMER: "customer"}

# Solvimon calculation types <-> ratecard aggregations. COUNT is accepted on input but never sent
# as calculation_type (the SDK's enum lacks it); neither are latest and weighted_sum.
CALCULATION_TYPES = {"SUM": "sum", "MAX": "max", "MIN": "min", "AVERAGE": "average", "UNIQUE": "unique_count",
                     "COUNT": "count"}
SDK_CALCULATION_TYPES = ("SUM", "MAX", "MIN", "AVERAGE", "UNIQUE")
AGGREGATION_TYPES = {aggregation: kind for kind, aggregation in CALCULATION_TYPES.items()}


@dataclass
class View:
    """Lookups over one consistent state: rows plus the catalog document they go with."""

    environment: str
    resources: Resources
    document: CatalogDocument | None
    _customer_ids: dict[str, str] | None = field(default=None, repr=False)
    _calculation_ids: dict[str, str] | None = field(default=None, repr=False)
    _customers: dict[str, CatalogCustomer] | None = field(default=None, repr=False)
    _meters: dict[str, CatalogMeter] | None = field(default=None, repr=False)
    _streams: dict[str, set[str]] | None = field(default=None, repr=False)

    # ---------------------------------------------------------------- customers
    def customers(self) -> list[CatalogCustomer]:
        return list(self.document.customers) if self.document is not None else []

    def customer(self, reference: str) -> CatalogCustomer | None:
        if self._customers is None:
            self._customers = {customer.reference: customer for customer in self.customers()}
        return self._customers.get(reference)

    def customer_id(self, reference: str) -> str:
        row = self.resources.by_reference.get((CUSTOMER, reference))
        return row.id if row is not None else stable_id(PREFIX[CUSTOMER], self.environment, CUSTOMER, reference)

    def find_customer(self, key: str) -> tuple[CatalogCustomer, Resource | None] | None:
        """A catalog customer by id (a row's, or the stable one) or reference, with its row."""
        row = self.resources.find(CUSTOMER, key)
        reference = row.reference if row is not None else None
        if reference is None:
            if self._customer_ids is None:
                self._customer_ids = {self.customer_id(c.reference): c.reference for c in self.customers()}
            reference = self._customer_ids.get(key, key)
        customer = self.customer(reference)
        if customer is None:
            return None
        return customer, self.resources.by_reference.get((CUSTOMER, reference))

    def customer_reference(self, key: str) -> str:
        """The reference an id or reference names (unknown keys are taken as references)."""
        found = self.find_customer(key)
        return found[0].reference if found is not None else key

    # ---------------------------------------------------------------- calculations (catalog meters)
    def meters(self) -> list[CatalogMeter]:
        return list(self.document.meters) if self.document is not None else []

    def catalog_meter(self, code: str) -> CatalogMeter | None:
        if self._meters is None:
            self._meters = {meter.code: meter for meter in self.meters()}
        return self._meters.get(code)

    def calculation_id(self, code: str) -> str:
        row = self.resources.by_reference.get((CALCULATION, code))
        return row.id if row is not None else stable_id(PREFIX[CALCULATION], self.environment, CALCULATION, code)

    def find_calculation(self, key: str) -> tuple[CatalogMeter, Resource | None] | None:
        row = self.resources.find(CALCULATION, key)
        code = row.reference if row is not None else None
        if code is None:
            if self._calculation_ids is None:
                self._calculation_ids = {self.calculation_id(m.code): m.code for m in self.meters()}
            code = self._calculation_ids.get(key, key)
        meter = self.catalog_meter(code)
        if meter is None:
            return None
        return meter, self.resources.by_reference.get((CALCULATION, code))

    # ---------------------------------------------------------------- Solvimon meters
    def find(self, kind: str, key: str | None) -> Resource | None:
        return self.resources.find(kind, key)

    def meter_reference(self, key: str) -> str:
        row = self.resources.find(METER, key)
        return row.reference if row is not None else key

    def linked(self, meter: Resource, kind: str) -> list[tuple[Resource, bool]]:
        """The values (or properties) a meter lists, with their `required` flag."""
        key = "meter_values" if kind == VALUE else "meter_properties"
        found = []
        for link in meter.body.get(key, []):
            row = self.resources.by_id.get(link["id"])
            if row is not None:
                found.append((row, bool(link.get("required", False))))
        return found

    def catalog_streams(self) -> dict[str, set[str]]:
        """Event meter names the catalog reads -> the fields its meters read from them."""
        if self._streams is None:
            streams: dict[str, set[str]] = {}
            for meter in self.meters():
                for name in {meter.code, meter.source or meter.code}:
                    streams.setdefault(name, set())
                    if meter.field:
                        streams[name].add(meter.field)
            self._streams = streams
        return self._streams


# ---------------------------------------------------------------- catalog edits (under the lock)


def save_document(change: ConfigChange, document: CatalogDocument, what: str) -> int:
    """Validate the whole edited catalog (cross-references included) and save it as a new version;
    a change that would break it (a plan charging a removed meter, …) is refused, nothing saved."""
    checked, problems = check_document(document.model_dump(mode="json"))
    if problems or checked is None:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise invalid_operation(f"{what} would leave the catalog invalid: {problems[0]}{more}")
    return change.save_catalog(checked)


def calculation_meter(view: View, body: dict[str, Any], code: str, existing: CatalogMeter | None) -> CatalogMeter:
    """The catalog meter a calculation row stands for: code = the calculation's reference,
    source = its Solvimon meter's reference (the event stream), field = its value's (or for
    UNIQUE its property's) reference. Filters of an existing meter are kept."""
    meter_row = view.resources.by_id.get(body.get("meter_id") or "")
    source = meter_row.reference if meter_row is not None else (existing.source if existing else None)
    field_row = view.resources.by_id.get(body.get("meter_value_id") or body.get("meter_property_id") or "")
    aggregation = body["aggregation"]
    field_name = None if aggregation == "count" else (field_row.reference if field_row is not None else
                                                      (existing.field if existing else None))
    values = {"code": code, "aggregation": aggregation, "field": field_name, "source": source,
              "name": body.get("name") if body.get("name") is not None else (existing.name if existing else None)}
    if existing is not None:
        return existing.model_copy(update=values)
    return CatalogMeter(**values)


def refuse_rename(view: View, resource: Resource) -> None:
    """A meter's reference names an event stream and a value's or property's names an event
    field: the events already stored keep the old name, so a calculation reading it would stop
    counting them. Such a rename is refused while a calculation uses the resource."""
    users = [user for user in users_of(view, resource) if user.startswith("meter value calculation")]
    if users:
        raise invalid_operation(f"{LABEL[resource.kind]} {resource.reference!r} is used by {users[0]}: its reference "
                                "names what stored events carry, so it cannot change", "reference")


def users_of(view: View, resource: Resource) -> list[str]:
    """What still refers to a meter, value or property (so it cannot be deleted)."""
    found = []
    for meter in view.resources.of_kind(METER):
        links = meter.body.get("meter_values", []) + meter.body.get("meter_properties", [])
        if any(link["id"] == resource.id for link in links):
            found.append(f"meter {meter.reference!r}")
    for calculation in view.resources.of_kind(CALCULATION):
        if view.catalog_meter(calculation.reference) is None:
            continue  # its catalog meter is gone: the row is a leftover
        body = calculation.body
        if resource.id in (body.get("meter_id"), body.get("meter_value_id"), body.get("meter_property_id")):
            found.append(f"meter value calculation {calculation.reference!r}")
    return found
