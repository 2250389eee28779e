"""Catalog use cases: check a catalog file, apply it as a new version, read the applied one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..catalog import Catalog, CatalogFileError, Problem, build_catalog, check_document, load_document
from ..catalog.discount_rules import new_code_problems
from ..catalog.entity_files import attach_entity_files
from ..catalog.stored import catalog_from_json
from ..domain.instants import to_micros
from ..store import Store
from ..store.catalogs import load_version, load_version_text, save_version
from .errors import InvalidInput, NoCatalog

DEFAULT_INVOICE_PREFIX = "RC"  # the numbering prefix before any catalog names one
NO_CATALOG = "no catalog has been applied yet; run `ratecard catalog apply FILE` first"


def current_catalog(store: Store, environment: str = "live") -> tuple[int, Catalog]:
    """(version, catalog) of the applied catalog; NoCatalog when none was applied yet."""
    loaded = load_version_text(store, environment)
    if loaded is None:
        raise NoCatalog(NO_CATALOG)
    return loaded[0], catalog_from_json(loaded[1])


def catalog_at(store: Store, version: int, environment: str = "live") -> Catalog | None:
    """One applied version, built; None when there is no such version."""
    loaded = load_version_text(store, environment, version)
    return catalog_from_json(loaded[1]) if loaded is not None else None


def optional_catalog(store: Store, environment: str = "live") -> tuple[int, Catalog] | tuple[None, None]:
    """The applied catalog, or (None, None): for use cases that also work without one."""
    try:
        return current_catalog(store, environment)
    except NoCatalog:
        return None, None


def invoice_prefix(store: Store, environment: str = "live") -> Callable[[str], str]:
    """customer -> the prefix its final invoices get (the billing entity's, else RC): each entity
    numbers its invoices in a sequence of its own."""
    _, catalog = optional_catalog(store, environment)
    if catalog is None:
        return lambda customer: DEFAULT_INVOICE_PREFIX
    return catalog.invoice_prefix_for


@dataclass
class CatalogCheck:
    file: str
    document: Any  # the checked document, None when there are problems
    problems: list[Problem]
    warnings: list[Problem] = field(default_factory=list)  # allowed, but worth a look

    @property
    def valid(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        """What a valid catalog holds: meters, plans, customers, subscriptions."""
        catalog = build_catalog(self.document)
        return {"meters": len(catalog.meters), "plans": len(catalog.plans), "customers": len(catalog.customers),
                "subscriptions": len(catalog.subscriptions)}

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "valid": self.valid,
                "problems": [{"path": p.path, "message": p.message} for p in self.problems],
                "warnings": [{"path": w.path, "message": w.message} for w in self.warnings]}


def check_catalog_file(path: Path) -> CatalogCheck:
    """Every problem of a catalog file with its path; InvalidInput when it cannot even be parsed."""
    try:
        raw = load_document(path)
    except CatalogFileError as exc:
        raise InvalidInput(str(exc)) from None
    file_problems = attach_entity_files(raw, path.parent)
    checked = check_catalog(raw, str(path))
    if file_problems:
        reported = {problem.path for problem in file_problems}
        checked.problems = file_problems + [problem for problem in checked.problems if problem.path not in reported]
        checked.document = None
    return checked


def check_catalog(raw: Any, source: str) -> CatalogCheck:
    """Every problem of a parsed catalog (a request's body, a file's content) with its path."""
    warnings: list[Problem] = []
    document, problems = check_document(raw, warnings)
    return CatalogCheck(source, document, problems, warnings)


def applicable_catalog(path: Path) -> CatalogCheck:
    """The checked file, ready to apply; InvalidInput (every problem in its details) when it is not."""
    checked = check_catalog_file(path)
    if checked.problems:
        raise InvalidInput(f"{path}: {len(checked.problems)} problem(s); nothing was applied (see `ratecard catalog "
                           "check`)", details=[f"{path}: {problem}" for problem in checked.problems])
    return checked


def new_codes(store: Store, environment: str, document: Any) -> list[Problem]:
    """The coupon and promotion codes `document` adds to the stored catalog that break the code
    rule (discount_rules.new_code_problems); codes stored already are not judged again."""
    loaded = load_version(store, environment)
    return [Problem(path, message) for path, message in
            new_code_problems(loaded[1].coupons if loaded is not None else [], document.coupons)]


def refuse_new_code_problems(store: Store, environment: str, document: Any, file: str) -> None:
    problems = new_codes(store, environment, document)
    if problems:
        raise InvalidInput(f"{file}: {len(problems)} problem(s); nothing was applied. First: {problems[0]}",
                           details=[f"{file}: {problem}" for problem in problems])


def apply_checked(store: Store, checked: CatalogCheck, now: datetime, environment: str = "live") -> dict[str, Any]:
    """Store a checked catalog as a new version (an identical catalog keeps its version). The
    coupon and promotion codes it adds to the stored catalog must be safe and read as no other
    code (discount_rules.new_code_problems); codes stored already are kept as they are."""
    refuse_new_code_problems(store, environment, checked.document, checked.file)
    version, created = save_version(store, checked.document, to_micros(now), environment)
    result: dict[str, Any] = {"file": checked.file, "version": version, "created": created}
    if created:
        from .impact import invoice_impact

        result["invoices"] = invoice_impact(store, build_catalog(checked.document), version, now, environment)
    return result


def apply_catalog(store: Store, path: Path, now: datetime, environment: str = "live") -> dict[str, Any]:
    """Store the file as a new catalog version: all or nothing."""
    return apply_checked(store, applicable_catalog(path), now, environment)
