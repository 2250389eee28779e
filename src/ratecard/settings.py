"""The settings a server process reads from its environment at start (docs/api.md, Knobs): read by
each worker as it starts, and once by `ratecard serve` before it starts any (`check_server`), so a
wrong one stops the command with its name instead of every worker failing and being started again."""

from __future__ import annotations

import os

OPENTELEMETRY = "RATECARD_OPENTELEMETRY"
SINGLE_EVENT_LANE = "RATECARD_SINGLE_EVENT_LANE"
# the numeric settings and the range each takes
KNOBS = {"RATECARD_GROUP_COMMIT_MAX_EVENTS": (0, 5_000), "RATECARD_GROUP_COMMIT_MAX_WAIT_MS": (0, 100),
         "RATECARD_GROUP_COMMIT_WRITERS": (1, 8), "RATECARD_SWITCH_INTERVAL_MS": (0.05, 100),
         # seconds a request's head, then its body, may take to arrive (api/connections.py)
         "RATECARD_HEADER_TIMEOUT": (0.1, 3600), "RATECARD_BODY_TIMEOUT": (0.1, 3600),
         "RATECARD_MAX_HEADER_BYTES": (1024, 1024 * 1024),  # a request's line and headers
         "RATECARD_MAX_CONNECTIONS": (1, 100_000),  # open connections per worker
         "RATECARD_SEND_TIMEOUT": (0.1, 3600)}  # seconds an answer waits for the client to read
# the numeric settings that count something (events, threads, bytes, connections): whole numbers
# only (a committer of int(0.5) = 0 events would never take a request)
COUNTS = frozenset({"RATECARD_GROUP_COMMIT_MAX_EVENTS", "RATECARD_GROUP_COMMIT_WRITERS", "RATECARD_MAX_HEADER_BYTES",
                    "RATECARD_MAX_CONNECTIONS"})
SWITCHES = {OPENTELEMETRY: False, SINGLE_EVENT_LANE: True}  # the on/off settings and their defaults


def check_server() -> None:
    """Every setting read once: SystemExit naming the first wrong one."""
    for name in KNOBS:
        knob(name, 0)
    for name, default in SWITCHES.items():
        switch(name, default)


def knob(name: str, default: float) -> float:
    """A numeric setting (unset or empty: `default`), within its range in KNOBS."""
    low, high = KNOBS[name]
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        number = float(value)
    except ValueError:
        raise SystemExit(f"{name}={value!r} is not a number") from None
    if name in COUNTS and not (number.is_integer() and low <= number <= high):
        raise SystemExit(f"{name}={value!r} must be a whole number between {low:g} and {high:g}")
    if not low <= number <= high:
        raise SystemExit(f"{name}={value!r} must be between {low:g} and {high:g}")
    return number


def switch(name: str, default: bool) -> bool:
    """An on/off setting: 1 or 0 (spaces around ignored; unset or empty: `default`). Any other value
    is refused naming it: `true`, `yes` or `off` read as one or the other would be a guess, and a
    guess that an operator's RATECARD_OPENTELEMETRY=true meant off (or RATECARD_SINGLE_EVENT_LANE=false
    on) runs the server silently against what was meant."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    if value.strip() not in ("0", "1"):
        raise SystemExit(f"{name}={value!r} must be 0 (off) or 1 (on)")
    return value.strip() == "1"
