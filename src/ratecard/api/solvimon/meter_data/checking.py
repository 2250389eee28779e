"""What meter_validation decides: STATIC refuses what the meters do not declare, DYNAMIC
only needs to know whether anything must be created; and how a validator's rejection of an
event is told to the caller."""

from __future__ import annotations

import re

from ....services.events import Rejection
from ....services.resources.model import METER, PROPERTY, VALUE, View
from ...errors import ApiError, invalid, missing
from ..common import (
    parse_decimal,
)
from .reading import Prepared

_LINE = re.compile(r"^line \d+: ")


def check_static(event: Prepared, view: View) -> None:
    """meter_validation=STATIC: the meter, its values and properties must already exist."""
    prefix = event.prefix
    meter_row = view.resources.by_reference.get((METER, event.meter))
    streams = view.catalog_streams()
    if meter_row is None and event.meter not in streams:
        raise invalid(f"{prefix}{event.meter_field}", f"meter {event.meter!r} does not exist "
                      "(meter_validation=STATIC, the default; send DYNAMIC to create it)")
    known_values = set(streams.get(event.meter, ()))
    linked_values = view.linked(meter_row, VALUE) if meter_row is not None else []
    linked_properties = view.linked(meter_row, PROPERTY) if meter_row is not None else []
    known_values |= {row.reference for row, _ in linked_values}
    for index, value in enumerate(event.values):
        if value.reference not in known_values:
            raise invalid(f"{prefix}meter_values.{index}.reference",
                          f"meter {event.meter!r} has no meter value {value.reference!r} (meter_validation=STATIC)")
    if meter_row is not None:
        properties = {row.reference: row for row, _ in linked_properties}
        for index, prop in enumerate(event.properties):
            row = properties.get(prop.reference)
            at = f"{prefix}meter_properties.{index}"
            if row is None:
                raise invalid(f"{at}.reference", f"meter {event.meter!r} has no meter property {prop.reference!r} "
                                                 "(meter_validation=STATIC)")
            kind = row.body.get("type")
            if kind == "ENUM" and prop.value not in (row.body.get("enum_values") or []):
                raise invalid(f"{at}.value", f"{prop.value!r} is not one of the values of ENUM property "
                                             f"{prop.reference!r}")
            if kind == "NUMBER":
                parse_decimal(prop.value, f"{at}.value")
        given = {v.reference for v in event.values} | {p.reference for p in event.properties}
        for row, required in linked_values + linked_properties:
            if required and row.reference not in given:
                key = "meter_values" if row.kind == VALUE else "meter_properties"
                raise missing(f"{prefix}{key}", f"meter {event.meter!r} requires {row.kind.replace('_', ' ')} "
                                                f"{row.reference!r}")


def rejection_error(rejection: Rejection, prefix: str) -> ApiError:
    message = _LINE.sub("", rejection.message)
    if rejection.reason == "archived_period":  # the reason named: no Solvimon code says it
        return invalid(f"{prefix}timestamp", f"{message} (archived_period)")
    if rejection.reason in ("future_timestamp", "invalid_timestamp"):
        return invalid(f"{prefix}timestamp", message)
    if rejection.reason == "missing_field":
        return missing(f"{prefix}meter_values", message)
    return invalid(f"{prefix}meter_values", message)
