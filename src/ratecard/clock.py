"""The one place "now" is read. RATECARD_NOW (RFC 3339) pins it for demos, tests and simulations."""

from __future__ import annotations

import os
from datetime import UTC, datetime


def now() -> datetime:
    pinned = os.environ.get("RATECARD_NOW")
    if pinned:
        moment = datetime.fromisoformat(pinned)
        if moment.tzinfo is None:
            raise ValueError("RATECARD_NOW needs a timezone offset, e.g. 2026-11-01T00:00:00Z")
        return moment
    return datetime.now(UTC)
