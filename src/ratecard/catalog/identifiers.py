"""Checks of the identifiers a billing entity and a customer carry on their documents: country
codes, IBAN and BIC, VAT numbers, locales, the logo. Each raises ValueError with a sentence for the
catalog's problem list."""

from __future__ import annotations

import base64
import binascii
import re

from babel import Locale, UnknownLocaleError
from jinja2 import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from lxml import etree

MAX_LOGO_BYTES = 256 * 1024
MAX_TEMPLATE_BYTES = 128 * 1024
LOGO_TYPES = {"image/png": "PNG", "image/svg+xml": "SVG"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# CLDR territories that are not ISO 3166-1 countries (regions, reserved and private-use codes)
_NOT_COUNTRIES = frozenset({"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "ZZ"})
COUNTRIES = frozenset(code for code in Locale("en").territories
                      if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES)
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_BIC = re.compile(r"[A-Z]{4}([A-Z]{2})[A-Z0-9]{2}([A-Z0-9]{3})?")
_EAS = re.compile(r"[0-9]{4}")
_PARTICIPANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-_:]{0,99}")
_TAX_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .\-/]{1,39}")


def country_code(value: str) -> str:
    if value not in COUNTRIES:
        raise ValueError(f"unknown country {value!r} (expected an ISO 3166 alpha-2 code such as DE)")
    return value


def iban(value: str) -> str:
    """An IBAN, spaces allowed for reading; stored without them. The ISO 13616 check digits must hold."""
    compact = value.replace(" ", "").upper()
    if not _IBAN.fullmatch(compact) or compact[:2] not in COUNTRIES:
        raise ValueError(f"{value!r} is not an IBAN (a country code, two check digits, then up to 30 letters or digits)")
    rearranged = compact[4:] + compact[:4]
    if int("".join(str(int(char, 36)) for char in rearranged)) % 97 != 1:
        raise ValueError(f"{value!r} is not a valid IBAN: its check digits do not match (a typo?)")
    return compact


def bic(value: str) -> str:
    compact = value.replace(" ", "").upper()
    match = _BIC.fullmatch(compact)
    if match is None or match.group(1) not in COUNTRIES:
        raise ValueError(f"{value!r} is not a BIC (8 or 11 letters and digits, such as DEUTDEFF)")
    return compact


def tax_identifier(value: str) -> str:
    if not _TAX_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a tax identifier (2 to 40 letters, digits, spaces, dots, dashes, slashes)")
    return value


def peppol_participant(value: str) -> str:
    """scheme:identifier, the scheme a four-digit code of the EAS list (0088 GLN, 9930 German VAT, …)."""
    scheme, _, identifier = value.partition(":")
    if not (_EAS.fullmatch(scheme) and _PARTICIPANT.fullmatch(identifier)):
        raise ValueError(f"{value!r} is not a Peppol participant id (scheme:identifier, such as 0088:4035811991014)")
    return value


def locale_name(value: str) -> str:
    try:
        Locale.parse(value)
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValueError(f"unknown locale {value!r} (expected a locale such as en_US, de_DE or fr_FR)") from None
    return value


def logo_problem(content: bytes, media_type: str) -> str | None:
    """Why the bytes are not a logo ratecard puts on documents, or None."""
    if len(content) > MAX_LOGO_BYTES:
        return f"is larger than {MAX_LOGO_BYTES // 1024} KiB"
    if media_type == "image/png":
        return None if content.startswith(_PNG_SIGNATURE) else "is not a PNG image"
    # an SVG is XML: no DOCTYPE (entities could expand without bound or name files), an <svg> root
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError:
        return "is not an SVG image (not well-formed XML)"
    if root.getroottree().docinfo.doctype or etree.QName(root).localname != "svg":
        return "is not an SVG image (an <svg> root, without a DOCTYPE)"
    return None


def logo_data_uri(value: str) -> str:
    """The logo as stored in a catalog version: data:image/png;base64,… or data:image/svg+xml;base64,…"""
    head, _, payload = value.partition(",")
    media_type = head.removeprefix("data:").removesuffix(";base64")
    if not head.startswith("data:") or not head.endswith(";base64") or media_type not in LOGO_TYPES:
        raise ValueError("must be a PNG or SVG data URI (ratecard fills it from `logo`)")
    try:
        content = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None
    problem = logo_problem(content, media_type)
    if problem:
        raise ValueError(problem)
    return value


def media_type_of(file_name: str) -> str | None:
    lowered = file_name.lower()
    if lowered.endswith(".png"):
        return "image/png"
    if lowered.endswith(".svg"):
        return "image/svg+xml"
    return None


def template_problem(text: str) -> str | None:
    """Why the text is not a template the documents can render (a Jinja2 syntax error), or None."""
    try:
        ImmutableSandboxedEnvironment(autoescape=True).parse(text)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    return None
