"""What happened to one event (`…/{ref}/event_trace`), and what an event would be without
storing it (`POST /v1/events/calculate`)."""

from __future__ import annotations

from typing import Any

from ....domain.instants import to_micros
from ....services import meter_data
from ....services.invoices import find_invoices
from ....store.meter_data import MeterDataRow
from ...context import Caller
from ...errors import not_found
from ..common import wire_instant
from ..config import snapshot
from .checking import check_static, rejection_error
from .reading import prepare
from .rendering import render


def trace(caller: Caller, key: str) -> dict[str, Any]:
    """EVENT_TRACE: the event, when it was received and processed (ratecard matches an event
    as it stores it, so both are its received time; `ingest_time` is the event's own
    timestamp), and one link per subscription that can bill it (the one it names, else its
    customer's in the current catalog) with the calculations (catalog meters) reading its
    meter and the invoice whose service period holds it, if one was cut."""
    row = meter_data.find_event(caller.store, caller.environment, key)
    if row is None:
        raise not_found("meter data", key)
    snap = snapshot(caller)
    view, catalog = snap.view, snap.catalog
    calculations = [view.calculation_id(m.code) for m in view.meters() if (m.source or m.code) == row.meter]
    if row.subscription is not None:
        subscriptions = [row.subscription]
    elif catalog is not None:
        subscriptions = [s.reference for s in catalog.document.subscriptions if s.customer == row.customer]
    else:
        subscriptions = []
    invoices = [i for i in find_invoices(caller.store, caller.environment)
                if i.subscription in subscriptions and i.status != "void"] if subscriptions else []
    links = []
    for subscription in subscriptions:
        holding = next((i for i in invoices if i.subscription == subscription and any(
            line.service_start_ts <= row.ts < line.service_end_ts for line in i.lines)), None)
        link: dict[str, Any] = {"object_type": "EVENT_TRACE_LINK", "meter_value_calculation_ids": calculations,
                                "pricing_plan_subscription_id": subscription}
        if holding is not None:
            link["invoice_id"] = f"inv_{holding.id}"
        links.append(link)
    return {"object_type": "EVENT_TRACE", "id": f"trace_{row.resource_id}", "meter_data_id": row.resource_id,
            "meter_data": render(view, row),
            "customer_id": view.customer_id(row.customer) if view.find_customer(row.customer) else None,
            "ingest_time": wire_instant(row.ts), "received_time": wire_instant(row.received_at),
            "processed_time": wire_instant(row.received_at), "links": links}


def calculate(caller: Caller, data: Any, validation: str) -> dict[str, Any]:
    """The event as ingestion would store it (validated the same way, matched against the
    current catalog), `type` CALCULATION; nothing is stored and DYNAMIC creates nothing."""
    snap = snapshot(caller)
    event = prepare(data, "", snap.view, caller.now)
    if validation == "STATIC":
        check_static(event, snap.view)
    validator = snap.catalog_state.validator if snap.catalog_state is not None else None
    checked = meter_data.check_events(caller.store, caller.environment, caller.now, [event.raw(1)], validator,
                                      archived=caller.fingerprint.archived)
    if isinstance(checked, meter_data.RejectedEvent):
        raise rejection_error(checked.rejection, "")
    new = checked[0]
    row = MeterDataRow("event", new.id, None, new.customer, new.meter, new.ts, new.properties,
                       to_micros(caller.now), new.status, new.late, None, new.subscription)
    return {**render(snap.view, row), "type": "CALCULATION"}
