"""Solvimon pricings -> ratecard charges (pure: plain data in, catalog charge fields out).

A pricing item prices one product item with one config; the product item's model type decides
whether it is a fee (RECURRING, PER_SEAT: model flat) or a usage charge (USAGE_BASED: on the
item's meter). The config's pricing type and bands decide the model:

| Solvimon                                          | ratecard               |
|---------------------------------------------------|------------------------|
| FLAT, one band `amount`                           | per_unit (fee: flat; included volume: graduated) |
| FLAT, one band `amount` + `block_size`            | package                |
| FLAT, one band `percentage` (+ `fixed_amount`)    | percentage             |
| TIERED, bands with `tier_top_bound`               | graduated (`percentage` bands: graduated_percentage) |
| TOP_TIERED                                        | volume                 |
| STAIR_STEP                                        | stairstep              |

A config with `conditions` (meter properties EQUALS / IN values) is a price for the events that
match: a charge filter (its code = the conditions' name). Everything else (top-ups, pass-through,
credits, other comparators, per-band minimum/maximum) is refused with the path of the field,
never dropped.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ...domain.money import MoneyError, is_currency, to_decimal
from .checks import invalid, missing

FEE_MODEL_TYPES = ("RECURRING", "PER_SEAT")
USAGE_MODEL_TYPES = ("USAGE_BASED",)
PRICING_TYPES = ("FLAT", "TIERED", "TOP_TIERED", "STAIR_STEP")
ALL_PRICING_TYPES = ("FLAT", "FLAT_TOP_UP", "TIERED", "TIERED_TOP_UP", "TOP_TIERED", "STAIR_STEP",
                     "STAIR_STEP_TOP_UP", "FIXED", "FLEXIBLE", "PASS_THROUGH", "NONE")
MAX_BANDS = 100
INTERVALS = {("MONTH", 1): "month", ("MONTH", 3): "quarter", ("MONTH", 12): "year", ("YEAR", 1): "year"}
PERIOD_OF_INTERVAL = {"month": ("MONTH", 1), "quarter": ("MONTH", 3), "year": ("YEAR", 1)}
# config fields ratecard has no counterpart for: refused when given
UNSUPPORTED_CONFIG = ("tiering_conditions", "top_up", "split_pricing", "wallet_grants",
                      "default_seats_value", "default_units", "volume_group_reference")
UNSUPPORTED_BAND = ("credits", "maximum_amount", "minimum_amount", "maximum_number", "minimum_number")


def number(value: Any, field: str, positive: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise invalid(field, f"{field} must be a decimal number written as a string, such as \"12.5\"")
    try:
        result = to_decimal(value)
    except MoneyError as exc:
        raise invalid(field, f"{field}: {exc}") from None
    if result < 0 or (positive and result == 0):
        raise invalid(field, f"{field} must be {'greater than 0' if positive else 'at least 0'}")
    if abs(result) >= Decimal(10) ** 15 or result.as_tuple().exponent < -12:  # type: ignore[operator]
        raise invalid(field, f"{field} is out of range (at most 15 digits before and 12 after the point)")
    return result


def money(value: Any, field: str, currency: str) -> Decimal:
    """An Amount {quantity, currency} in the plan's currency."""
    if not isinstance(value, dict):
        raise invalid(field, f"{field} must be an amount {{quantity, currency}}")
    given = value.get("currency")
    if given is not None and (not isinstance(given, str) or not is_currency(given)):
        raise invalid(f"{field}.currency", f"{field}.currency is not an ISO 4217 currency code")
    if given is not None and given.upper() != currency:
        raise invalid(f"{field}.currency", f"{field} is in {given}, but these prices are in {currency}")
    if value.get("quantity") is None:
        raise missing(f"{field}.quantity")
    return number(value["quantity"], f"{field}.quantity")


def _meter_number(value: Any, field: str, positive: bool = False) -> Decimal:
    """A PricingItemConfigMeterValue: {number}."""
    if not isinstance(value, dict) or value.get("number") is None:
        raise invalid(field, f"{field} must be {{number: \"...\"}}")
    return number(value["number"], f"{field}.number", positive)


def interval_of(period: Any, field: str) -> str:
    """A Period {type, value} as a plan interval."""
    if not isinstance(period, dict):
        raise invalid(field, f"{field} must be a period {{type, value}}")
    kind, value = period.get("type"), period.get("value", 1)
    key = (kind if isinstance(kind, str) else None, value if isinstance(value, int) else None)
    if key not in INTERVALS:
        raise invalid(field, f"{field}: ratecard bills every 1 month, 3 months or 1 year, got "
                             f"{str(period.get('value'))[:10]} {str(period.get('type'))[:10]}")
    return INTERVALS[key]


def pricing_type(config: dict[str, Any]) -> Any:
    details = config.get("details") if isinstance(config.get("details"), dict) else {}
    return config.get("pricing_type") or details.get("pricing_type") or config.get("type")


def bands_of(config: dict[str, Any], field: str) -> tuple[list[dict[str, Any]], str]:
    details = config.get("details") if isinstance(config.get("details"), dict) else {}
    if config.get("bands") is not None:
        bands, where = config["bands"], f"{field}.bands"
    else:
        bands, where = details.get("bands"), f"{field}.details.bands"
    if not isinstance(bands, list) or not bands:
        raise missing(where, f"{where} must list at least one band")
    if len(bands) > MAX_BANDS:
        raise invalid(where, f"{where} holds at most {MAX_BANDS} bands")
    for index, band in enumerate(bands):
        if not isinstance(band, dict):
            raise invalid(f"{where}.{index}", f"{where}.{index} must be an object")
        for key in UNSUPPORTED_BAND:
            if band.get(key) is not None:
                raise invalid(f"{where}.{index}.{key}", f"{where}.{index}.{key} has no counterpart in ratecard")
    return bands, where


def charge_fields(config: Any, field: str, model_type: str, currency: str,
                  interval: str | None = None) -> dict[str, Any]:
    """The catalog fields (model and prices, no code or meter) one pricing item config gives.
    A config's `billing_period` / `pricing_period`, when given, must be the plan's interval."""
    if not isinstance(config, dict):
        raise invalid(field, f"{field} must be an object")
    config = {key: value for key, value in config.items() if key != "conditions"}
    details = config.get("details") if isinstance(config.get("details"), dict) else {}
    for key, period in (("billing_period", config.get("billing_period")), ("pricing_period", config.get(
            "pricing_period")), ("details.billing_period", details.get("billing_period")),
                        ("details.pricing_period", details.get("pricing_period"))):
        if period is not None and interval_of(period, f"{field}.{key}") != (interval or "month"):
            raise invalid(f"{field}.{key}", f"{field}.{key} differs from the version's billing period "
                                            f"({interval or 'month'}): ratecard bills a plan on one interval")
    for key in UNSUPPORTED_CONFIG:
        if config.get(key) not in (None, [], {}):
            raise invalid(f"{field}.{key}", f"{field}.{key} has no counterpart in ratecard's charges")
    if config.get("on_demand"):
        raise invalid(f"{field}.on_demand", "on-demand pricing items are not supported")
    kind = pricing_type(config)
    if kind not in ALL_PRICING_TYPES:
        raise invalid(f"{field}.pricing_type", f"{field}.pricing_type must be one of {', '.join(PRICING_TYPES)}")
    if kind not in PRICING_TYPES:
        raise invalid(f"{field}.pricing_type", f"pricing type {kind} has no counterpart in ratecard "
                                               f"(supported: {', '.join(PRICING_TYPES)})")
    bands, where = bands_of(config, field)
    out: dict[str, Any] = {}
    advance = config.get("billing_in_advance")
    if advance is not None:
        if not isinstance(advance, bool):
            raise invalid(f"{field}.billing_in_advance", "billing_in_advance must be true or false")
        out["timing"] = "advance" if advance else "arrears"
    included = config.get("default_included_volume")
    if model_type in FEE_MODEL_TYPES:
        if kind != "FLAT" or len(bands) != 1 or bands[0].get("amount") is None:
            raise invalid(where, f"a {model_type} item is a fee: price it FLAT with one band holding its amount")
        if included is not None:
            raise invalid(f"{field}.default_included_volume", "a fee has no included volume")
        return {"model": "flat", "amount": str(money(bands[0]["amount"], f"{where}.0.amount", currency)), **out}
    if kind == "FLAT":
        if len(bands) != 1:
            raise invalid(where, f"{where}: a FLAT price has exactly one band")
        band, at = bands[0], f"{where}.0"
        if band.get("percentage") is not None:
            out.update(model="percentage", rate=str(number(band["percentage"], f"{at}.percentage")))
            if band.get("fixed_amount") is not None:
                out["fixed_amount"] = str(money(band["fixed_amount"], f"{at}.fixed_amount", currency))
            if included is not None:
                raise invalid(f"{field}.default_included_volume", "a percentage price has no included volume here")
            return out
        if band.get("amount") is None:
            raise missing(f"{at}.amount", f"{at} needs an amount (or a percentage)")
        price = str(money(band["amount"], f"{at}.amount", currency))
        if band.get("block_size") is not None:
            out.update(model="package", package_amount=price,
                       package_size=str(_meter_number(band["block_size"], f"{at}.block_size", positive=True)))
        else:
            out.update(model="per_unit", unit_amount=price)
        if band.get("fixed_amount") is not None:
            raise invalid(f"{at}.fixed_amount", "a FLAT unit price has no fixed amount (use a tiered price)")
        if included is not None:
            free = str(_meter_number(included, f"{field}.default_included_volume"))
            if out["model"] == "package":
                out["free_units"] = free
            else:  # the included volume is a first tier priced 0
                out = {**{k: v for k, v in out.items() if k != "unit_amount"}, "model": "graduated",
                       "tiers": [{"up_to": free, "unit_amount": "0"}, {"up_to": None, "unit_amount": price}]}
        return out
    if included is not None:
        raise invalid(f"{field}.default_included_volume", "give included volume as a first tier priced 0")
    tiers = []
    percentages = any(band.get("percentage") is not None for band in bands)
    for index, band in enumerate(bands):
        at = f"{where}.{index}"
        if band.get("block_size") is not None:
            raise invalid(f"{at}.block_size", "a tiered price has no block size")
        last = index == len(bands) - 1
        bound = band.get("tier_top_bound")
        if bound is None and not last:
            raise missing(f"{at}.tier_top_bound", f"{at}: every band but the last needs a tier_top_bound")
        tier: dict[str, Any] = {"up_to": str(_meter_number(bound, f"{at}.tier_top_bound")) if bound else None}
        if kind == "STAIR_STEP":
            flat = band.get("fixed_amount") if band.get("fixed_amount") is not None else band.get("amount")
            if flat is None:
                raise missing(f"{at}.amount", f"{at} needs the step's amount")
            tier["flat_amount"] = str(money(flat, f"{at}.amount", currency))
        elif percentages:
            if kind != "TIERED" or band.get("percentage") is None or band.get("amount") is not None:
                raise invalid(f"{at}.percentage", "percentage bands are TIERED and every band has a percentage")
            tier["rate"] = str(number(band["percentage"], f"{at}.percentage"))
        else:
            if band.get("amount") is None and band.get("fixed_amount") is None:
                raise missing(f"{at}.amount", f"{at} needs an amount or a fixed_amount")
            if band.get("amount") is not None:
                tier["unit_amount"] = str(money(band["amount"], f"{at}.amount", currency))
        if kind != "STAIR_STEP" and band.get("fixed_amount") is not None:
            tier["flat_amount"] = str(money(band["fixed_amount"], f"{at}.fixed_amount", currency))
        tiers.append(tier)
    model = {"TIERED": "graduated_percentage" if percentages else "graduated", "TOP_TIERED": "volume",
             "STAIR_STEP": "stairstep"}[kind]
    return {**out, "model": model, "tiers": tiers}


# ---------------------------------------------------------------- ratecard -> Solvimon (reading)


def _amount(value: Any, currency: str) -> dict[str, str]:
    return {"quantity": format(Decimal(str(value)), "f"), "currency": currency}


def config_of(charge: dict[str, Any], currency: str) -> dict[str, Any] | None:
    """The Solvimon config a catalog charge shows (None when its model has no counterpart)."""
    model = charge.get("model")
    config: dict[str, Any] = {"type": "FLAT"}
    if charge.get("timing"):
        config["billing_in_advance"] = charge["timing"] == "advance"
    if model == "flat":
        config["bands"] = [{"amount": _amount(charge.get("amount") or 0, currency)}]
    elif model == "per_unit":
        config["bands"] = [{"amount": _amount(charge.get("unit_amount") or 0, currency)}]
    elif model == "package":
        config["bands"] = [{"amount": _amount(charge.get("package_amount") or 0, currency),
                            "block_size": {"number": str(charge.get("package_size"))}}]
    elif model == "percentage":
        band: dict[str, Any] = {"percentage": str(charge.get("rate") or 0)}
        if charge.get("fixed_amount") is not None:
            band["fixed_amount"] = _amount(charge["fixed_amount"], currency)
        config["bands"] = [band]
    elif model in ("graduated", "volume", "stairstep", "graduated_percentage"):
        config["type"] = {"graduated": "TIERED", "graduated_percentage": "TIERED", "volume": "TOP_TIERED",
                          "stairstep": "STAIR_STEP"}[model]
        bands = []
        for tier in charge.get("tiers") or []:
            band = {}
            if tier.get("up_to") is not None:
                band["tier_top_bound"] = {"number": str(tier["up_to"])}
            if model == "stairstep":
                band["amount"] = _amount(tier.get("flat_amount") or 0, currency)
            else:
                if model == "graduated_percentage":
                    band["percentage"] = str(tier.get("rate") or 0)
                else:
                    band["amount"] = _amount(tier.get("unit_amount") or 0, currency)
                if Decimal(str(tier.get("flat_amount") or 0)):
                    band["fixed_amount"] = _amount(tier["flat_amount"], currency)
            bands.append(band)
        config["bands"] = bands
    else:
        return None
    if charge.get("free_units") is not None and model == "package":
        config["default_included_volume"] = {"number": str(charge["free_units"])}
    config["pricing_type"] = config["type"]
    return config


# ---------------------------------------------------------------- conditions -> charge filters

FILTER_PRICE_FIELDS = ("unit_amount", "tiers", "package_size", "package_amount", "free_units", "rate", "fixed_amount")
MAX_FILTERS = 50
MAX_MATCH_KEYS = 10
MAX_MATCH_VALUES = 100


def filter_of(config: dict[str, Any], fields: dict[str, Any], charge: dict[str, Any], field: str) -> dict[str, Any]:
    """The charge filter a config with `conditions` makes: the events whose properties match are
    priced at `fields` (the same model as the charge's own price)."""
    where = f"{field}.conditions"
    conditions = config.get("conditions")
    if not isinstance(conditions, dict):
        raise invalid(where, f"{where} must be an object")
    if conditions.get("expression") is not None:
        raise invalid(f"{where}.expression", "condition expressions are not supported: list meter_properties")
    name = conditions.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 100 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise invalid(f"{where}.name", f"{where}.name (1 to 100 printable characters) names the price's invoice "
                                       "lines")
    properties = conditions.get("meter_properties")
    if not isinstance(properties, list) or not 1 <= len(properties) <= MAX_MATCH_KEYS:
        raise invalid(f"{where}.meter_properties", f"{where}.meter_properties must list 1 to {MAX_MATCH_KEYS} "
                                                   "conditions")
    match: dict[str, list[str]] = {}
    for index, condition in enumerate(properties):
        at = f"{where}.meter_properties.{index}"
        if not isinstance(condition, dict):
            raise invalid(at, f"{at} must be an object")
        comparator = condition.get("comparator") or ("IN" if condition.get("values") is not None else "EQUALS")
        if comparator not in ("EQUALS", "IN"):
            raise invalid(f"{at}.comparator", f"{at}.comparator: ratecard matches EQUALS or IN values only")
        reference = condition.get("reference")
        if not isinstance(reference, str) or not 1 <= len(reference) <= 200:
            raise missing(f"{at}.reference", f"{at}.reference must name the meter property (1 to 200 characters)")
        values = condition.get("values") if comparator == "IN" else [condition.get("value")]
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_MATCH_VALUES or not all(
                isinstance(value, str) and len(value) <= 500 for value in values):
            raise invalid(f"{at}.values", f"{at}: give 1 to {MAX_MATCH_VALUES} values (strings)")
        if reference in match:
            raise invalid(f"{at}.reference", f"{at}: {reference!r} is listed twice")
        match[reference] = list(values)
    if fields.get("model") != charge.get("model") or fields.get("timing") != charge.get("timing"):
        raise invalid(field, f"{field}: a conditional price has the same pricing type as the item's own "
                             f"({charge.get('model')})")
    return {"code": name, "match": match, **{k: v for k, v in fields.items() if k in FILTER_PRICE_FIELDS}}


def filter_config(charge: dict[str, Any], item: dict[str, Any], currency: str) -> dict[str, Any] | None:
    """The Solvimon config a charge filter shows."""
    prices = {k: v for k, v in item.items() if k in FILTER_PRICE_FIELDS and v is not None}
    config = config_of({**charge, **prices}, currency)
    if config is None:
        return None
    config["conditions"] = {"name": item["code"], "meter_properties": [
        {"reference": key, "comparator": "IN", "values": [str(v) for v in values]}
        for key, values in item.get("match", {}).items()]}
    return config
