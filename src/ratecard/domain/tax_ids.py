"""Offline checks of tax identification numbers: their syntax and, where the number carries one,
its check digits. Nothing here asks a registry (VIES, HMRC, ABR): a VALID answer means "well
formed and the check digits add up", never "registered to this company".

Checked with check digits: EU VAT numbers of AT, BE, DE, DK, FI, FR (numeric key), IT, LU, NL
(both the mod-11 and the 2020 mod-97 forms), PL, SE; UK VAT numbers (GB and XI, incl. the GD/HA
government forms); Australian ABNs (AU_GST); Canadian business numbers with a GST/HST program
account (CA_GST_HST: 9-digit BN with the Luhn check + RT + 4 digits). Checked for syntax only
(answer UNKNOWN when well formed): the other EU member states (BG, CY, CZ, EE, EL, ES, HR, HU,
IE, LT, LV, MT, PT, RO, SI, SK) and a French number with an alphabetic key. Anything else
(another country, a provincial sales-tax number) is UNKNOWN: ratecard cannot tell offline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

VALID, NOT_VALID, UNKNOWN = "VALID", "NOT_VALID", "UNKNOWN"
MAX_LENGTH = 64
_SEPARATORS = re.compile(r"[\s.\-/]")


@dataclass(frozen=True)
class TaxIdCheck:
    number: str  # normalised: upper case, no spaces, dots, dashes or slashes
    result: str  # VALID, NOT_VALID or UNKNOWN
    message: str


def _digits(text: str) -> list[int]:
    return [int(c) for c in text]


def luhn(text: str) -> bool:
    total = 0
    for index, digit in enumerate(reversed(_digits(text))):
        if index % 2:
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return total % 10 == 0


def _weighted(text: str, weights: tuple[int, ...]) -> int:
    return sum(d * w for d, w in zip(_digits(text), weights, strict=False))


def _at(n: str) -> bool:  # U + 8 digits
    total = sum(d if i % 2 == 0 else (d * 2) // 10 + (d * 2) % 10 for i, d in enumerate(_digits(n[1:8])))
    return (10 - (total + 4) % 10) % 10 == int(n[8])


def _be(n: str) -> bool:
    n = n if len(n) == 10 else "0" + n
    return int(n) > 0 and n[0] in "01" and (97 - int(n[:8]) % 97) == int(n[8:])


def _de(n: str) -> bool:  # ISO 7064 MOD 11,10
    if n[0] == "0":
        return False
    product = 10
    for digit in _digits(n[:8]):
        total = (digit + product) % 10 or 10
        product = (2 * total) % 11
    return (11 - product) % 10 == int(n[8])


def _dk(n: str) -> bool:
    return n[0] != "0" and _weighted(n, (2, 7, 6, 5, 4, 3, 2, 1)) % 11 == 0


def _fi(n: str) -> bool:
    rest = _weighted(n[:7], (7, 9, 10, 5, 8, 4, 2)) % 11
    return rest != 1 and (11 - rest) % 11 == int(n[7])


def _fr(n: str) -> bool | None:
    key, siren = n[:2], n[2:]
    # Monaco's numbers (000…) are no SIREN; La Poste's SIREN is the known Luhn exception
    if not siren.startswith("000") and not luhn(siren) and siren != "356000000":
        return False
    if not key.isdigit():
        return None  # an alphabetic key has no public check
    return int(key) == (12 + 3 * (int(siren) % 97)) % 97


def _it(n: str) -> bool:  # digits 8-10: the issuing province's office
    office = n[7:10]
    return n[:7] != "0000000" and ("001" <= office <= "100" or office in ("120", "121", "888", "999")) and luhn(n)


def _lu(n: str) -> bool:
    return int(n[:6]) % 89 == int(n[6:])


def _nl(n: str) -> bool:
    if int(n[:9]) == 0 or int(n[10:]) == 0:
        return False
    mod11 = (_weighted(n[:8], (9, 8, 7, 6, 5, 4, 3, 2)) - int(n[8])) % 11 == 0
    letters = "".join(str(ord(c) - 55) if c.isalpha() else c for c in "NL" + n)
    return mod11 or int(letters) % 97 == 1


def _pl(n: str) -> bool:
    return _weighted(n[:9], (6, 5, 7, 2, 3, 4, 5, 6, 7)) % 11 == int(n[9])


def _se(n: str) -> bool:
    return n.endswith("01") and luhn(n[:10])


def _gb(n: str) -> bool:
    if n.startswith("GD"):
        return int(n[2:]) < 500
    if n.startswith("HA"):
        return int(n[2:]) >= 500
    # 8..2 over the first seven digits plus the last two as a number, mod 97: 0 for the old series,
    # and 42 or 55 (HMRC's later series) for numbers from 100 0000 00 on
    rest = (_weighted(n[:7], (8, 7, 6, 5, 4, 3, 2)) + int(n[7:9])) % 97
    return rest == 0 or (int(n[:3]) >= 100 and rest in (42, 55))


def _abn(n: str) -> bool:
    # the check digits run 11 to 99: "10" passes the sum modulo 89 too (as 99 does), never issued
    if int(n[:2]) < 11:
        return False
    digits = _digits(n)
    digits[0] -= 1
    return digits[0] >= 0 and sum(d * w for d, w in zip(digits, (10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19),
                                                        strict=True)) % 89 == 0


def _ca_gst(n: str) -> bool:
    return luhn(n[:9])


Check = Callable[[str], "bool | None"]
# country prefix -> (syntax of what follows it, check digits or None when only the syntax is known)
VAT: dict[str, tuple[str, Check | None]] = {
    "AT": (r"U\d{8}", _at), "BE": (r"[01]?\d{9}", _be), "DE": (r"\d{9}", _de), "DK": (r"\d{8}", _dk),
    "FI": (r"\d{8}", _fi), "FR": (r"[0-9A-HJ-NP-Z]{2}\d{9}", _fr), "IT": (r"\d{11}", _it), "LU": (r"\d{8}", _lu),
    "NL": (r"\d{9}B\d{2}", _nl), "PL": (r"\d{10}", _pl), "SE": (r"\d{12}", _se),
    "GB": (r"\d{9}|\d{12}|GD\d{3}|HA\d{3}", _gb), "XI": (r"\d{9}|\d{12}|GD\d{3}|HA\d{3}", _gb),
    "BG": (r"\d{9,10}", None), "CY": (r"\d{8}[A-Z]", None), "CZ": (r"\d{8,10}", None), "EE": (r"\d{9}", None),
    "EL": (r"\d{9}", None), "ES": (r"[A-Z0-9]\d{7}[A-Z0-9]", None), "HR": (r"\d{11}", None),
    "HU": (r"\d{8}", None), "IE": (r"\d{7}[A-W][A-I]?|\d[A-Z+*]\d{5}[A-W]", None), "LT": (r"\d{9}|\d{12}", None),
    "LV": (r"\d{11}", None), "MT": (r"\d{8}", None), "PT": (r"\d{9}", None), "RO": (r"[1-9]\d{1,9}", None),
    "SI": (r"\d{8}", None), "SK": (r"\d{10}", None),
}
# Solvimon's tax id types that name a scheme of their own (the others are read by their prefix)
TYPED: dict[str, tuple[str, Check]] = {"AU_GST": (r"\d{11}", _abn), "CA_GST_HST": (r"\d{9}RT\d{4}", _ca_gst)}


def normalise(number: str) -> str:
    return _SEPARATORS.sub("", number).upper()


def _judge(number: str, syntax: str, check: Check | None, scheme: str) -> TaxIdCheck:
    if not re.fullmatch(syntax, number[2:] if scheme.startswith("VAT") else number):
        return TaxIdCheck(number, NOT_VALID, f"not the format of a {scheme} number")
    if check is None:
        return TaxIdCheck(number, UNKNOWN, f"the format of a {scheme} number; its check digits cannot be "
                                           "verified offline")
    verdict = check(number[2:] if scheme.startswith("VAT") else number)
    if verdict is None:
        return TaxIdCheck(number, UNKNOWN, f"the format of a {scheme} number; this form has no public check digits")
    if not verdict:
        return TaxIdCheck(number, NOT_VALID, f"the check digits of this {scheme} number do not add up")
    return TaxIdCheck(number, VALID, f"a well-formed {scheme} number (syntax and check digits; not looked up in "
                                     "a registry)")


def check_tax_id(number: str, kind: str | None = None, country: str | None = None) -> TaxIdCheck:
    """Judge one tax id. `kind`: Solvimon's type (AU_GST, CA_GST_HST, ...; GENERIC_TAX_ID or None
    reads the number's own country prefix); `country`: the customer's, used when an EU or UK VAT
    number is written without its prefix."""
    cleaned = normalise(number)[:MAX_LENGTH + 1]
    if not cleaned or len(cleaned) > MAX_LENGTH or not re.fullmatch(r"[A-Z0-9+*]+", cleaned):
        return TaxIdCheck(cleaned[:MAX_LENGTH], NOT_VALID, "a tax id is 1 to 64 letters and digits")
    if kind in TYPED:
        syntax, check = TYPED[kind]
        return _judge(cleaned.removeprefix("AU") if kind == "AU_GST" else cleaned, syntax, check, kind)
    if kind not in (None, "GENERIC_TAX_ID"):
        return TaxIdCheck(cleaned, UNKNOWN, f"ratecard cannot check a {kind} number offline")
    prefix = cleaned[:2]
    if prefix == "GR":
        prefix, cleaned = "EL", "EL" + cleaned[2:]
    if prefix not in VAT and country is not None:
        alias = "EL" if country.upper() == "GR" else country.upper()
        if alias in VAT:
            prefix, cleaned = alias, alias + cleaned
    if prefix not in VAT:
        return TaxIdCheck(cleaned, UNKNOWN, "no country prefix ratecard can check offline (EU and UK VAT numbers "
                                            "start with their country code)")
    syntax, check = VAT[prefix]
    return _judge(cleaned, syntax, check, f"VAT {prefix}")
