"""JSON Lines events (one object a line; json_array.py reads a file holding one JSON array).

The JSONL hot path decodes straight into a typed msgspec Struct; only lines that do not fit
the native shape fall back to a generic decode, which also accepts the Solvimon shape and
says precisely what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from ...textfile import utf8_error_offset
from ..records import RawEvent, Rejection
from .common import BOM, NATIVE_FIELDS, bounded_lines, id_of, open_binary, too_long
from .solvimon_template import SOLVIMON_SUBSCRIPTION

_typed = msgspec.json.Decoder(RawEvent, float_hook=Decimal)
_generic = msgspec.json.Decoder(float_hook=Decimal)


def from_mapping(line: int, data: Any) -> RawEvent | Rejection:
    """A decoded JSON object in the native or the Solvimon shape -> RawEvent, or a rejection."""
    if not isinstance(data, dict):
        return Rejection(line, "invalid_json", f"line {line}: expected a JSON object, got {type(data).__name__}")
    if "reference" in data and "id" not in data:
        return _from_solvimon(line, data)
    missing = [name for name in NATIVE_FIELDS if data.get(name) in (None, "")]
    if missing:
        return Rejection(line, "missing_field", f"line {line}: field {missing[0]!r} is missing",
                         id_of(data.get("id")))
    properties = data.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        return Rejection(line, "invalid_value", f"line {line}: field 'properties' must be an object",
                         id_of(data.get("id")))
    return RawEvent(data["id"], data["customer"], data["meter"], data["timestamp"], properties, line,
                    data.get("subscription"))


def _from_solvimon(line: int, data: dict[str, Any]) -> RawEvent | Rejection:
    mapping = {"reference": "id", "customer_reference": "customer", "meter_reference": "meter",
               "timestamp": "timestamp"}
    for name in mapping:
        if data.get(name) in (None, ""):
            return Rejection(line, "missing_field", f"line {line}: field {name!r} is missing",
                             id_of(data.get("reference")))
    properties: dict[str, Any] = {}
    for key, value_key in (("meter_values", "number"), ("meter_properties", "value")):
        items = data.get(key) or []
        if not isinstance(items, list):
            return Rejection(line, "invalid_value", f"line {line}: field {key!r} must be a list",
                             id_of(data.get("reference")))
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not item.get("reference"):
                return Rejection(line, "invalid_value",
                                 f"line {line}: {key}[{index}] needs a 'reference'", id_of(data.get("reference")))
            value = item.get(value_key, item.get("value", item.get("number")))
            properties[str(item["reference"])] = value
    return RawEvent(data["reference"], data["customer_reference"], data["meter_reference"],
                    data["timestamp"], properties, line, _named_subscription(data))


def _named_subscription(data: dict[str, Any]) -> Any:
    """Solvimon names the subscription by reference; its id is the same reference here (invoices
    give a subscription's reference as pricing_plan_subscription_id)."""
    reference = data.get(SOLVIMON_SUBSCRIPTION)
    return reference if reference is not None else data.get("pricing_plan_subscription_id")


def decode_json_line(line: int, raw: bytes) -> RawEvent | Rejection:
    try:
        event = _typed.decode(raw)
        event.line = line
        return event
    except msgspec.ValidationError:
        pass
    except RecursionError:
        return nested_too_deeply(line, raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return _undecodable(line, raw)
    try:
        data = _generic.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return _undecodable(line, raw)
    except RecursionError:
        return nested_too_deeply(line, raw)
    return from_mapping(line, data)


def nested_too_deeply(line: int, raw: bytes) -> Rejection:
    return Rejection(line, "invalid_json", f"line {line}: JSON nested too deeply", raw=_snippet(raw))


def _undecodable(line: int, raw: bytes) -> Rejection:
    """Why a line is not JSON: bad UTF-8 named as such, whatever the JSON library reports."""
    if utf8_error_offset(raw) is not None:
        return Rejection(line, "invalid_json", f"line {line}: not UTF-8 text", raw=_snippet(raw))
    return Rejection(line, "invalid_json", f"line {line}: not valid JSON", raw=_snippet(raw))


def _snippet(raw: bytes) -> str:
    return raw[:200].decode("utf-8", errors="replace")


def read_jsonl(path: Path) -> Iterator[RawEvent | Rejection]:
    with open_binary(path) as handle:
        for number, raw in enumerate(bounded_lines(handle), start=1):
            if raw is None:
                yield too_long(number)
                continue
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            if not raw.strip():
                continue
            yield decode_json_line(number, raw)
