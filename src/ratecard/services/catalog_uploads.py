"""A catalog file uploaded by a person: checked first (every problem with its path, and what it
would change on the next invoice run), applied only when they confirm what they were shown.

Applying is tied to the version the check was made against: if another version was applied
between the check and the confirmation, the impact shown is stale and the apply is refused.
What is confirmed is the checked catalog as canonical JSON (what a version stores): checked again
in a fraction of a second, where parsing the YAML again would cost what the first check did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..catalog import CatalogFileError, build_catalog
from ..catalog.load import parse_text
from ..domain.instants import to_micros
from ..store import Store
from ..store.catalog_history import latest_version
from ..store.catalogs import canonical_json, save_version, save_version_on
from .catalog import CatalogCheck, check_catalog, new_codes, refuse_new_code_problems
from .errors import Conflict, InvalidInput
from .impact import impact_sentence, invoice_impact


@dataclass
class UploadCheck:
    checked: CatalogCheck
    base: int | None  # the version current when it was checked (None: no catalog yet)
    counts: dict[str, int] | None  # meters, plans, customers, subscriptions (valid catalogs only)
    impact: dict[str, Any] | None  # what the next invoice run would change (None: nothing invoiced yet)
    canonical: str | None  # the valid catalog as canonical JSON, for the confirmation to send back

    @property
    def impact_sentence(self) -> str | None:
        return impact_sentence(self.impact)


def parse_upload(content: bytes, name: str) -> Any:
    """The uploaded bytes as a catalog document; InvalidInput when they are not UTF-8 YAML/JSON."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{name}: the file is not UTF-8 text") from None
    if not text.strip():
        raise InvalidInput(f"{name}: the file is empty")
    try:
        return parse_text(text, name)
    except CatalogFileError as exc:
        raise InvalidInput(str(exc)) from None


def check_upload(store: Store, content: bytes, name: str, now: datetime, environment: str) -> UploadCheck:
    """The check `ratecard catalog check` makes, plus what applying would change (nothing is written)."""
    checked = check_catalog(parse_upload(content, name), name)
    base = latest_version(store, environment)
    if not checked.problems:
        checked.problems = new_codes(store, environment, checked.document)
        if checked.problems:
            checked.document = None
    if checked.problems:
        return UploadCheck(checked, base, None, None, None)
    catalog = build_catalog(checked.document)
    impact = invoice_impact(store, catalog, (base or 0) + 1, now, environment)
    counts = {"meters": len(catalog.meters), "plans": len(catalog.plans), "customers": len(catalog.customers),
              "subscriptions": len(catalog.subscriptions)}
    return UploadCheck(checked, base, counts, impact, canonical_json(checked.document))


def apply_upload(store: Store, content: bytes, name: str, base: int | None, now: datetime,
                 environment: str) -> dict[str, Any]:
    """Check again and store as a new version, if `base` is still the current version:
    {"version", "created"} (an identical catalog keeps its version)."""
    checked = check_catalog(parse_upload(content, name), name)
    if checked.problems:
        raise InvalidInput(f"{name}: {len(checked.problems)} problem(s); nothing was applied",
                           details=[str(problem) for problem in checked.problems])
    refuse_new_code_problems(store, environment, checked.document, name)
    stale = Conflict("another catalog version was applied since this file was checked; nothing was applied "
                     "(upload it again to see what it changes now)")
    if base is None:
        if latest_version(store, environment) is not None:
            raise stale
        version, created = save_version(store, checked.document, to_micros(now), environment)
        return {"version": version, "created": created}
    stored = save_version_on(store, checked.document, base, to_micros(now), environment)
    if stored is None:
        raise stale
    return {"version": stored, "created": stored != base}
