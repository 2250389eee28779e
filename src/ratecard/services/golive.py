"""Go-live readiness: every finding, and the same findings grouped by cause for people to read."""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..golive.readiness import STALE_DRAFT, Finding, findings_but_stale_drafts, readiness, stale_drafts_counted
from ..store import Store
from .cached_catalog import CatalogCacheLike, catalog_in_use
from .errors import InvalidInput
from .naming import natural_key

EXAMPLES_PER_GROUP = 3


@dataclass
class FindingGroup:
    """The findings of one cause (severity and kind): how many, and the first few by subject."""

    severity: str
    kind: str
    findings: list[Finding]  # every finding of the cause; in a ReadinessSummary the first few only
    counted: int | None = None  # a summary's count (None: the findings are all there)

    @property
    def count(self) -> int:
        return len(self.findings) if self.counted is None else self.counted

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
    def warnings(self) -> int:
        return len(self.findings) - self.blockers

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


@dataclass
class ReadinessSummary:
    """The report as the console shows it: each cause with its count and first few findings,
    counted without reading every finding (a stale draft each is thousands of rows)."""

    causes: list[FindingGroup]  # blockers first, then by kind

    @property
    def blockers(self) -> int:
        return sum(group.count for group in self.causes if group.severity == "blocker")

    @property
    def warnings(self) -> int:
        return sum(group.count for group in self.causes if group.severity != "blocker")

    @property
    def ready(self) -> bool:
        return self.blockers == 0

    def groups(self) -> list[FindingGroup]:
        return self.causes


def _subject_order(finding: Finding) -> tuple:
    return natural_key(finding.subject), finding.subject


def _check_days(quiet_days: int) -> None:
    if quiet_days < 1:
        raise InvalidInput(f"{quiet_days} must be at least 1", field="days")


def check_readiness(store: Store, now: datetime, environment: str = "live", quiet_days: int = 7,
                    catalogs: CatalogCacheLike | None = None) -> Readiness:
    """Is the applied catalog with its data ready to bill real customers? (NoCatalog without one.)
    `catalogs`: a server's catalog cache, to use its built catalog instead of building one."""
    _check_days(quiet_days)
    catalog = catalog_in_use(store, environment, now, catalogs)
    findings = readiness(store, catalog, now, quiet_days, environment)
    ordered = sorted(findings, key=lambda f: (f.severity != "blocker", f.kind, natural_key(f.subject)))
    return Readiness(ordered)


def summarize_readiness(store: Store, now: datetime, environment: str = "live", quiet_days: int = 7,
                        catalogs: CatalogCacheLike | None = None) -> ReadinessSummary:
    """The groups of check_readiness (same counts, same examples, same order), the stale drafts
    counted and their examples picked in the database instead of listed."""
    _check_days(quiet_days)
    catalog = catalog_in_use(store, environment, now, catalogs)
    by_cause: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for finding in findings_but_stale_drafts(store, catalog, now, quiet_days, environment):
        by_cause[(finding.severity, finding.kind)].append(finding)
    causes = [FindingGroup(severity, kind, heapq.nsmallest(EXAMPLES_PER_GROUP, findings, key=_subject_order),
                           counted=len(findings))
              for (severity, kind), findings in by_cause.items()]
    stale, examples = stale_drafts_counted(store, now, environment, EXAMPLES_PER_GROUP)
    if stale:
        causes.append(FindingGroup("blocker", STALE_DRAFT, examples, counted=stale))
    return ReadinessSummary(sorted(causes, key=lambda group: (group.severity != "blocker", group.kind)))
