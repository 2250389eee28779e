"""Go-live readiness: every finding, and the same findings grouped by cause for people to read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..golive.readiness import Finding, readiness
from ..store import Store
from .catalog import current_catalog
from .errors import InvalidInput
from .naming import natural_key

EXAMPLES_PER_GROUP = 3


@dataclass
class FindingGroup:
    """The findings of one cause (severity and kind): how many, and the first few by subject."""

    severity: str
    kind: str
    findings: list[Finding]

    @property
    def count(self) -> int:
        return len(self.findings)

    @property
    def examples(self) -> list[Finding]:
        return self.findings[:EXAMPLES_PER_GROUP]

    def as_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "kind": self.kind, "count": self.count,
                "examples": [finding.subject for finding in self.examples],
                "message": self.examples[0].message}


@dataclass
class Readiness:
    findings: list[Finding]  # blockers first, then by kind, subjects in natural order

    @property
    def blockers(self) -> int:
        return sum(1 for finding in self.findings if finding.severity == "blocker")

    @property
    def ready(self) -> bool:
        return self.blockers == 0

    def groups(self) -> list[FindingGroup]:
        groups: dict[tuple[str, str], FindingGroup] = {}
        for finding in self.findings:
            key = (finding.severity, finding.kind)
            groups.setdefault(key, FindingGroup(finding.severity, finding.kind, [])).findings.append(finding)
        return list(groups.values())

    def as_dict(self) -> dict[str, Any]:
        return {"ready": self.ready, "blockers": self.blockers, "warnings": len(self.findings) - self.blockers,
                "findings": [finding.as_dict() for finding in self.findings],
                "groups": [group.as_dict() for group in self.groups()]}


def check_readiness(store: Store, now: datetime, environment: str = "live", quiet_days: int = 7) -> Readiness:
    """Is the applied catalog with its data ready to bill real customers? (NoCatalog without one.)"""
    if quiet_days < 1:
        raise InvalidInput(f"{quiet_days} must be at least 1", field="days")
    _, catalog = current_catalog(store, environment)
    findings = readiness(store, catalog, now, quiet_days, environment)
    ordered = sorted(findings, key=lambda f: (f.severity != "blocker", f.kind, natural_key(f.subject)))
    return Readiness(ordered)
