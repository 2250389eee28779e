"""meter_validation=DYNAMIC: the meters, values and properties events name come into being."""

from __future__ import annotations

from typing import Any

from ....services.resources.model import METER, PREFIX, PROPERTY, VALUE
from ....store.resources import ConfigChange, Resource
from .reading import Prepared


def create_dynamic(change: ConfigChange, events: list[Prepared]) -> None:
    """meter_validation=DYNAMIC: create what the events name and does not exist yet (meter,
    values, properties, all ACTIVE), link it to the meter as not required, and add new values of
    an ENUM property. dynamic_validation_settings set type and required of what is created."""
    resources = change.resources
    for event in events:
        meter_row = resources.by_reference.get((METER, event.meter))
        meter_body = dict(meter_row.body) if meter_row is not None else {
            "name": event.meter, "status": "ACTIVE", "meter_values": [], "meter_properties": []}
        dirty = meter_row is None
        for kind, items in ((VALUE, event.values), (PROPERTY, event.properties)):
            key = "meter_values" if kind == VALUE else "meter_properties"
            links = list(meter_body.get(key, []))
            for item in items:
                row = resources.by_reference.get((kind, item.reference))
                created = row is None
                if created:
                    if kind == VALUE:
                        kind_type = item.settings.get("type") or ("AMOUNT" if item.is_amount else "NUMBER")
                        body: dict[str, Any] = {"name": item.reference, "status": "ACTIVE", "type": kind_type}
                    else:
                        kind_type = item.settings.get("type") or "STRING"
                        body = {"name": item.reference, "status": "ACTIVE", "type": kind_type}
                        if kind_type == "ENUM":
                            body["enum_values"] = [item.value]
                    row = change.put(Resource(change.new_id(PREFIX[kind], kind, item.reference), kind,
                                              item.reference, body, 0, 0))
                elif kind == PROPERTY and row.body.get("type") == "ENUM" and \
                        item.value not in (row.body.get("enum_values") or []):
                    values = [*(row.body.get("enum_values") or []), item.value]
                    if len(values) <= 300:
                        row = change.put(Resource(row.id, kind, row.reference, {**row.body, "enum_values": values},
                                                  0, 0))
                if not any(link["id"] == row.id for link in links):
                    links.append({"id": row.id, "required": bool(item.settings.get("required", False))
                                  if created else False})
                    dirty = True
            meter_body[key] = links
        if dirty:
            meter_id = meter_row.id if meter_row is not None else change.new_id(PREFIX[METER], METER, event.meter)
            change.put(Resource(meter_id, METER, event.meter, meter_body, 0, 0))
