"""Solvimon's features as catalog features: each create, change or removal is a new catalog version
(the same validation as `catalog check`). Solvimon's types map onto the catalog's: NUMBER -> number,
SWITCH -> switch, ENUM -> enum; a meter value calculation links the feature to its catalog meter
(a usage limit). AMOUNT and STRING features do not map (ratecard grants no money or free text)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ...catalog.schema import CatalogDocument, Feature
from ...domain.instants import to_micros
from ...store import Store
from ...store.resources import config_change, stable_id
from .checks import already_exists, check_reference, check_text, invalid, invalid_operation, missing, not_found
from .model import View, save_document

TYPES = {"NUMBER": "number", "SWITCH": "switch", "ENUM": "enum"}
WIRE_TYPES = {value: key for key, value in TYPES.items()}
PREFIX = "feat_"


def feature_id(environment: str, code: str) -> str:
    return stable_id(PREFIX, environment, "feature", code)


def find(document: CatalogDocument | None, environment: str, key: str) -> Feature | None:
    """A feature by id or code."""
    for feature in (document.features if document is not None else []):
        if key in (feature.code, feature_id(environment, feature.code)):
            return feature
    return None


def _feature(view: View, data: dict[str, Any], current: Feature | None) -> Feature:
    fields: dict[str, Any] = current.model_dump() if current is not None else {}
    if current is None:
        fields["code"] = check_reference(data.get("reference"))
        kind = data.get("type")
        if kind is None:
            raise missing("type")
        if not isinstance(kind, str) or kind not in TYPES:
            raise invalid("type", f"type must be one of {', '.join(TYPES)} (ratecard has no AMOUNT or STRING "
                                  f"features), got {str(kind)[:40]!r}")
        fields["type"] = TYPES[kind]
    elif data.get("type") is not None and (not isinstance(data["type"], str) or TYPES.get(data["type"]) != current.type):
        raise invalid_operation("a feature's type cannot change: create a new feature", "type")
    for name in ("name", "description"):
        if name in data:
            fields[name] = check_text(data[name], name)
    if "enum_values" in data:
        values = data["enum_values"]
        if values is not None and (not isinstance(values, list) or not all(isinstance(v, str) for v in values)):
            raise invalid("enum_values", "enum_values must be a list of strings")
        fields["values"] = [check_reference(v, "enum_values") for v in values or []]
    key = data.get("meter_value_calculation_id")
    if key is not None:
        found = view.find_calculation(key) if isinstance(key, str) else None
        if found is None:
            raise not_found("meter value calculation", str(key))
        fields["meter"] = found[0].code
    try:
        return Feature.model_validate(fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or None
        raise invalid(where, f"{where}: {error['msg']}") from None


def create(store: Store, environment: str, now: datetime, data: dict[str, Any]) -> tuple[View, Feature]:
    with config_change(store, environment, to_micros(now)) as change:
        document = change.catalog() or CatalogDocument()
        view = View(environment, change.resources, document)
        feature = _feature(view, data, None)
        if find(document, environment, feature.code) is not None:
            raise already_exists("feature", feature.code)
        save_document(change, document.model_copy(update={"features": [*document.features, feature]}),
                      f"creating feature {feature.code!r}")
        change.changed = True
        return View(environment, change.resources, change.catalog()), feature


def update(store: Store, environment: str, now: datetime, key: str, data: dict[str, Any]) -> tuple[View, Feature]:
    with config_change(store, environment, to_micros(now)) as change:
        document = change.catalog() or CatalogDocument()
        current = find(document, environment, key)
        if current is None:
            raise not_found("feature", key)
        if data.get("reference") not in (None, current.code):
            raise invalid_operation("a feature's reference cannot change (plans grant it by reference)", "reference")
        view = View(environment, change.resources, document)
        feature = _feature(view, data, current)
        features = [feature if f.code == current.code else f for f in document.features]
        save_document(change, document.model_copy(update={"features": features}), f"changing feature {key!r}")
        change.changed = True
        return View(environment, change.resources, change.catalog()), feature


def delete(store: Store, environment: str, now: datetime, key: str) -> tuple[View, Feature]:
    """Remove a feature no plan grants (a plan that grants it must drop it first)."""
    with config_change(store, environment, to_micros(now)) as change:
        document = change.catalog() or CatalogDocument()
        current = find(document, environment, key)
        if current is None:
            raise not_found("feature", key)
        granting = [plan.code for plan in document.plans if current.code in plan.features]
        if granting:
            raise invalid_operation(f"feature {current.code!r} is granted by plan(s) {', '.join(granting)[:200]}: "
                                    "remove it from them first")
        features = [f for f in document.features if f.code != current.code]
        save_document(change, document.model_copy(update={"features": features}), f"removing feature {key!r}")
        change.changed = True
        return View(environment, change.resources, change.catalog()), current
