"""When a failed card payment is tried again: at each of the entity's dunning days after the first
failure (`billing_entity.payments.dunning_days`, default [1, 3, 7]); once every retry has failed
the invoice is uncollectible (collected by hand, or written off)."""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_DAYS = (1, 3, 7)
DAY_US = 86_400_000_000


def next_attempt(first_failed_at: int, failures: int, days: Sequence[int] = DEFAULT_DAYS) -> int | None:
    """The instant (µs) of the retry after `failures` failed attempts (the first charge included),
    or None: no retry is left, the invoice is uncollectible."""
    if failures < 1:
        raise ValueError("a retry follows a failure")
    if failures > len(days):
        return None
    return first_failed_at + days[failures - 1] * DAY_US
