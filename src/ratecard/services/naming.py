"""Natural order for references people read: DRAFT-2 before DRAFT-10, acme-9 before acme-10."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple:
    """Split into text and numbers so that numbers compare by value ("DRAFT-2" < "DRAFT-10")."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in _DIGITS.split(text) if part)
