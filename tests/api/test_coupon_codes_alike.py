"""Coupon and promotion codes that a person would read as the same code, on SQLite and PostgreSQL.

The rule: a new code is 1 to 191 ASCII letters, digits, '-' and '_' (starting with a letter or a
digit) and codes are compared ignoring case, at creation (POST /v1/coupons, POST
/v1/promotion-codes, a catalog apply) and at redemption (a subscription naming a code). Hostile
codes (a zero-width space, fullwidth letters, surrounding spaces, another case of an existing
code) are refused with a reason and nothing is stored; a code stored before the rule keeps being
redeemed exactly as written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ratecard.catalog.discount_rules import SAFE_CODE, code_key
from ratecard.catalog.schema import CatalogDocument
from ratecard.cli import main
from ratecard.store import open_store
from ratecard.store.catalogs import load_version, save_version

from .test_solvimon_coupon_lifecycle import _apply, _start, _with_subscription
from .test_solvimon_sdk import Live, V, catalog_of, server  # noqa: F401

ZWSP = "\u200b"
FULLWIDTH_SPRING = "\uff33\uff30\uff32\uff29\uff2e\uff27"  # ＳＰＲＩＮＧ
PERCENT = {"discount": {"type": "PERCENTAGE", "percentage": "5"}, "duration": {"type": "FOREVER"}}


def _codes(live: Live) -> list[str]:
    return sorted(code for coupon in catalog_of(live).get("coupons", [])
                  for code in (coupon["code"], *(p["code"] for p in coupon.get("promotion_codes", []))))


def test_new_codes_are_safe_ascii_and_unique_ignoring_case(server: Live, tmp_path: Path,  # noqa: F811
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    coupons, _ = _start(server)  # the catalog has coupon SPRING
    version = server.http("GET", "/v1/catalog").json()["version"]
    for reference in (f"SPRING{ZWSP}", FULLWIDTH_SPRING, " SPRING", "SPRING ", "SPR ING", "SPRİNG", "-SPRING",
                      "x" * 192, f"{ZWSP}"):
        refused = server.http("POST", "/v1/coupons", json={"reference": reference, **PERCENT})
        assert (refused.status_code, refused.json()["field"]) == (400, "reference"), (reference, refused.text)
        assert "ASCII letters, digits" in refused.json()["message"] or len(reference) > 191
    for reference in ("spring", "Spring", "sPrInG"):  # the same code in another case
        taken = server.http("POST", "/v1/coupons", json={"reference": reference, **PERCENT})
        assert (taken.status_code, taken.json()["code"]) == (409, "RESOURCE_ALREADY_EXISTS"), taken.text
        assert "reads the same as code 'SPRING'" in taken.json()["message"]
    # promotion codes: the same rule among every code
    for code, status in ((f"FRIENDS{ZWSP}", 400), ("ＦＲＩＥＮＤＳ", 400), ("spring", 409), ("FRIENDS\t", 400)):
        answer = server.http("POST", "/v1/promotion-codes", json={"coupon_id": "cpn_SPRING", "code": code})
        assert (answer.status_code, answer.json()["field"]) == (status, "code"), (code, answer.text)
    assert server.http("GET", "/v1/catalog").json()["version"] == version  # nothing was stored
    made = server.http("POST", "/v1/promotion-codes", json={"coupon_id": "cpn_SPRING", "code": "Friends-2027_a"})
    assert made.status_code == 201, made.text
    again = server.http("POST", "/v1/promotion-codes", json={"coupon_id": "cpn_SPRING", "code": "FRIENDS-2027_A"})
    assert again.status_code == 409, again.text
    assert server.http("POST", "/v1/coupons", json={"reference": "SUMMER-2027", **PERCENT}).status_code == 201
    assert _codes(server) == ["Friends-2027_a", "SPRING", "SUMMER-2027"]

    # a catalog apply: the codes it adds follow the rule too (every problem named, nothing applied)
    document = catalog_of(server)
    document["coupons"] += [{"code": "autumn", "percent_off": "5", "duration": "once"},
                            {"code": "AUTUMN", "percent_off": "5", "duration": "once"},
                            {"code": f"WIN{ZWSP}TER", "percent_off": "5", "duration": "once"}]
    refused = _apply(server, document)
    assert refused.status_code == 400, refused.text
    assert "3 problem(s)" in refused.text and "reads the same as code 'AUTUMN'" in refused.text
    assert _codes(server) == ["Friends-2027_a", "SPRING", "SUMMER-2027"]
    # the CLI's apply is the same service: every problem on its own line, one sentence, exit 2
    file = tmp_path / "catalog.yaml"
    file.write_text(yaml.safe_dump(document))
    capsys.readouterr()
    assert main(["catalog", "apply", str(file), "--db", server.db_url]) == 2
    err = capsys.readouterr().err
    assert "coupons[3].code: 'AUTUMN' reads the same as code 'autumn'" in err
    assert err.strip().splitlines()[-1].startswith(f"error: {file}: 3 problem(s); nothing was applied")
    assert _codes(server) == ["Friends-2027_a", "SPRING", "SUMMER-2027"]


def test_look_alikes_read_as_one_code() -> None:
    assert code_key(FULLWIDTH_SPRING) == code_key(f" Spr{ZWSP}ing\t") == code_key("SPRING") == "spring"
    assert code_key("SPRING-1") != code_key("SPRING_1")
    assert [bool(SAFE_CODE.fullmatch(c)) for c in ("A", "a-_9", "-a", "a b", "ａ", "é", "a" * 191, "a" * 192)] == \
        [True, True, False, False, False, False, True, False]


def test_a_code_is_redeemed_ignoring_case_and_look_alikes_are_refused(server: Live) -> None:  # noqa: F811
    coupons, _ = _start(server)
    assert _with_subscription(server, "spring", "acme-lower").status_code == 201
    stored = {s["reference"]: s.get("coupons") for s in catalog_of(server)["subscriptions"]}
    assert stored["acme-lower"] == ["SPRING"]  # named as the code is stored
    assert coupons.get_coupons_by_resource_id_or_reference(V, "SPRING").number_of_redemptions == 1
    version = server.http("GET", "/v1/catalog").json()["version"]
    for name in (FULLWIDTH_SPRING, f"SPRING{ZWSP}", " SPRING", "SPRING "):
        refused = _with_subscription(server, name, "acme-alike")
        assert refused.status_code == 400, (name, refused.text)
        assert "unknown coupon" in refused.text and "ASCII letters, digits" in refused.text
    assert server.http("GET", "/v1/catalog").json()["version"] == version
    assert coupons.get_coupons_by_resource_id_or_reference(V, "SPRING").number_of_redemptions == 1


def test_a_code_stored_before_the_rule_is_still_redeemed_as_written(server: Live) -> None:  # noqa: F811
    _start(server)
    store = open_store(server.db_url)
    try:  # a catalog stored before the rule: a coupon whose code has a space, and two codes a case apart
        _, document = load_version(store, "live")
        raw: dict[str, Any] = document.model_dump(mode="json")
        raw["coupons"] += [{"code": "Winter Sale", "percent_off": "5", "duration": "once"},
                           {"code": "OLD", "percent_off": "5", "duration": "once"},
                           {"code": "old", "percent_off": "7", "duration": "once"}]
        save_version(store, CatalogDocument.model_validate(raw), 1, "live")
    finally:
        store.engine.dispose()
    assert _with_subscription(server, "Winter Sale", "acme-winter").status_code == 201
    assert _with_subscription(server, "old", "acme-old").status_code == 201
    stored = {s["reference"]: s.get("coupons") for s in catalog_of(server)["subscriptions"]}
    assert (stored["acme-winter"], stored["acme-old"]) == (["Winter Sale"], ["old"])
    # "winter sale" is not a code as written, and "Old" names both OLD and old: refused with why
    assert "unknown coupon 'winter sale'" in _with_subscription(server, "winter sale", "acme-x").text
    ambiguous = _with_subscription(server, "Old", "acme-y")
    assert ambiguous.status_code == 400 and "names 'OLD' and 'old' ignoring case" in ambiguous.text
    # re-applying the catalog that holds them keeps them
    assert _apply(server, catalog_of(server)).status_code in (200, 201)
