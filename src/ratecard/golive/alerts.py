"""Missing-event detection: stored alert rules, evaluated against event timestamps at a given
"now" (passed in; nothing here reads the clock).

- `silence`: a (customer, meter) that had events before has none in the last `window`.
- `drop`: a (customer, meter) whose events in the last `window` number fewer than `fraction` ×
  the count its trailing baseline rate predicts (events in the `baseline` before the window,
  scaled to the window's length). Pairs whose baseline predicts fewer than `min_expected`
  events in the window are not judged (too few events to tell a drop from chance).

Only matched, not deleted events count, by their timestamp. An alert stays open while its
condition holds and is not raised again; it is resolved at the first evaluation where the
condition no longer holds (a new alert is opened if it comes back). Opening and resolving
queue one webhook delivery per endpoint, in the alert's transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from ..domain.instants import rfc3339_seconds, to_micros
from ..domain.money import Bound, MoneyError, exact_problem, to_decimal
from ..domain.numbers import shown_number
from ..store import Store
from ..store.monitoring import (
    AlertRow,
    RuleRow,
    add_rule,
    delete_rule,
    enqueue_deliveries,
    event_counts,
    insert_open_alert,
    last_event_times,
    list_endpoints,
    list_rules,
    open_alerts,
    resolve_alert,
    webhook_settings,
)
from .webhooks import subscribed

KINDS = ("silence", "drop")
DEFAULT_MIN_EXPECTED = Decimal(5)
# a number and a unit written together, once spaces around the whole are trimmed; ASCII digits
# (\d takes ١ and １)
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


class RuleError(ValueError):
    """A rule that cannot be stored; the message names the option and what is expected."""


def parse_duration(text: str, option: str) -> int:
    """'90s', '30m', '1h', '1.5h', '7d', '2w' -> seconds (at least 1). Spaces around the duration
    are trimmed; one inside it (`30 m`, `3 0m`) is refused, wherever it falls."""
    bare = (text or "").strip()
    match = _DURATION.fullmatch(bare)
    if not match:
        if _DURATION.fullmatch("".join(bare.split())):
            raise RuleError(f"{option}: {bare!r} has a space inside: write the number and its unit together, "
                            "such as 30m, 1h or 7d")
        raise RuleError(f"{option}: {text!r} is not a duration (a number and a unit: 30m, 1h, 7d, 2w)")
    return _bounded_seconds(_decimal(match.group(1), option) * _UNITS[match.group(2)], text, option,
                            format_duration(MAX_RULE_SECONDS))


# the longest window or baseline a rule takes: a year (and a leap day). Detection looks that far
# back at most, and a longer span would not fit the rule's integer column (1e30 hours did: an
# internal error instead of a refusal)
MAX_RULE_SECONDS = 366 * 86_400


def _bounded_seconds(seconds: Decimal, text: str, option: str, limit: str) -> int:
    """A rule's span in whole seconds, refused below one second or above MAX_RULE_SECONDS (`limit`:
    that bound as the option is written, 366d for a duration, 8784 for --hours)."""
    if seconds > MAX_RULE_SECONDS:
        raise RuleError(f"{option}: {text!r} is longer than 366 days (at most {limit})")
    whole = int(seconds)
    if whole < 1:
        raise RuleError(f"{option}: {text!r} must be at least one second")
    return whole


def format_duration(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# --fraction and --min-expected are stored as written, in columns of 32 characters: a number of at
# most this many digits (as written, trailing zeros included) fits in any form str() gives it
MAX_STORED_DIGITS = 20


def _stored_problem(number: Decimal) -> str | None:
    """Why a number cannot be kept as a rule's fraction or min-expected (a sentence), or None."""
    problem = exact_problem(number)
    if problem is None and len(number.as_tuple().digits) > MAX_STORED_DIGITS:
        problem = f"{shown_number(number)} has too many digits (at most {MAX_STORED_DIGITS} digits)"
    return problem


def _decimal(text: str, option: str, bound: Bound = exact_problem) -> Decimal:
    try:
        return to_decimal(text, bound=bound)
    except MoneyError as exc:
        raise RuleError(f"{option}: {exc}") from None


def create_rule(store: Store, environment: str, now: datetime, *, kind: str, customer: str | None = None,
                meter: str | None = None, hours: str | None = None, fraction: str | None = None,
                window: str | None = None, baseline: str | None = None, min_expected: str | None = None) -> int:
    """Validate and store a rule; returns its id."""
    if kind not in KINDS:
        raise RuleError(f"--kind: {kind!r} is not a rule kind (silence or drop)")
    values: dict[str, Any] = {"kind": kind, "customer": customer or None, "meter": meter or None,
                              "created_at": to_micros(now), "baseline_seconds": None, "fraction": None,
                              "min_expected": None}
    if kind == "silence":
        if hours is None:
            raise RuleError("--hours is required for a silence rule (alert after this many hours without events)")
        if fraction is not None or baseline is not None or min_expected is not None:
            raise RuleError("--fraction, --baseline and --min-expected belong to drop rules, not silence")
        span = _decimal(hours, "--hours")
        if span <= 0:
            raise RuleError(f"--hours: {hours} must be more than 0")
        values["window_seconds"] = (parse_duration(window, "--window") if window is not None else _bounded_seconds(
            max(span * 3600, Decimal(1)), hours, "--hours", str(MAX_RULE_SECONDS // 3600)))
        return add_rule(store, environment, values)
    if hours is not None:
        raise RuleError("--hours belongs to silence rules; a drop rule takes --window and --baseline")
    if fraction is None:
        raise RuleError("--fraction is required for a drop rule (e.g. 0.5: alert below half the baseline rate)")
    share = _decimal(fraction, "--fraction", _stored_problem)
    if not 0 < share <= 1:
        raise RuleError(f"--fraction: {fraction} must be more than 0 and at most 1")
    span = parse_duration(window or "1h", "--window")
    base = parse_duration(baseline or "7d", "--baseline")
    if base < span:
        raise RuleError(f"--baseline {format_duration(base)} must be at least as long as --window "
                        f"{format_duration(span)}")
    least = DEFAULT_MIN_EXPECTED if min_expected is None else _decimal(min_expected, "--min-expected", _stored_problem)
    if least < 0:
        raise RuleError(f"--min-expected: {min_expected} must not be negative")
    values.update(window_seconds=span, baseline_seconds=base, fraction=str(share), min_expected=str(least))
    return add_rule(store, environment, values)


def rule_document(rule: RuleRow) -> dict[str, Any]:
    document: dict[str, Any] = {"id": rule.id, "kind": rule.kind, "customer": rule.customer, "meter": rule.meter}
    if rule.kind == "silence":
        document["hours"] = str(Decimal(rule.window_seconds) / 3600)
        document["window"] = format_duration(rule.window_seconds)
    else:
        document.update(fraction=rule.fraction, window=format_duration(rule.window_seconds),
                        baseline=format_duration(rule.baseline_seconds or 0), min_expected=rule.min_expected)
    document["created_at"] = rfc3339_seconds(rule.created_at)
    return document


def describe_rule(rule: RuleRow) -> str:
    scope = f"customer {rule.customer or '*'}, meter {rule.meter or '*'}"
    if rule.kind == "silence":
        return f"silent for {format_duration(rule.window_seconds)} ({scope})"
    return (f"below {rule.fraction} × baseline over {format_duration(rule.window_seconds)}, baseline "
            f"{format_duration(rule.baseline_seconds or 0)}, judged from {rule.min_expected} expected ({scope})")


def remove_rule(store: Store, environment: str, rule_id: int, now: datetime) -> list[AlertRow] | None:
    """Delete a rule and resolve its open alerts (their resolution is delivered); None if unknown."""
    now_us = to_micros(now)
    with store.engine.begin() as connection:
        still_open = open_alerts(connection, environment, rule_id)
        if not delete_rule(connection, environment, rule_id):
            return None
        endpoints = list_endpoints(connection, environment)
        resolved = []
        for alert in still_open:
            if resolve_alert(connection, alert.id, now_us):
                resolved.append(alert)
                _queue(connection, environment, endpoints, "alert.resolved", alert, "resolved", now_us,
                       {"reason": "rule removed"})
    return resolved


# ---------------------------------------------------------------- evaluation


@dataclass
class Finding:
    customer: str
    meter: str
    message: str
    details: dict[str, Any]


@dataclass
class Evaluation:
    opened: list[dict[str, Any]]
    resolved: list[dict[str, Any]]
    open: int

    def as_dict(self) -> dict[str, Any]:
        return {"opened": self.opened, "resolved": self.resolved, "open": self.open}


def evaluate(store: Store, environment: str, now: datetime) -> Evaluation:
    """Evaluate every rule at `now`: open alerts for new findings, resolve cleared ones."""
    now_us = to_micros(now)
    opened: list[dict[str, Any]] = []
    resolved: list[dict[str, Any]] = []
    for rule in list_rules(store, environment):
        findings = _silences(store, environment, rule, now_us) if rule.kind == "silence" \
            else _drops(store, environment, rule, now_us)
        with store.engine.begin() as connection:
            endpoints = list_endpoints(connection, environment)
            current = {(a.customer, a.meter): a for a in open_alerts(connection, environment, rule.id)}
            for finding in findings:
                if (finding.customer, finding.meter) in current:
                    continue  # still open: not raised again
                details = {"rule": rule.id, **finding.details}
                alert_id = insert_open_alert(connection, environment, rule.id, rule.kind, finding.customer,
                                             finding.meter, finding.message, orjson.dumps(details).decode(), now_us)
                if alert_id is None:
                    continue  # another run opened it a moment ago
                alert = AlertRow(alert_id, rule.id, rule.kind, finding.customer, finding.meter, "open",
                                 finding.message, orjson.dumps(details).decode(), now_us, None)
                _queue(connection, environment, endpoints, "alert.opened", alert, "open", now_us, {})
                opened.append(alert_document(alert))
            found = {(f.customer, f.meter) for f in findings}
            for pair, alert in current.items():
                if pair not in found and resolve_alert(connection, alert.id, now_us):
                    _queue(connection, environment, endpoints, "alert.resolved", alert, "resolved", now_us,
                           {"reason": "condition cleared"})
                    resolved.append({**alert_document(alert), "status": "resolved", "resolved_at": rfc3339_seconds(now_us)})
    with store.engine.connect() as connection:
        still_open = len(open_alerts(connection, environment))
    return Evaluation(opened, resolved, still_open)


def _silences(store: Store, environment: str, rule: RuleRow, now_us: int) -> list[Finding]:
    window_us = rule.window_seconds * 1_000_000
    findings = []
    for (customer, meter), last in sorted(last_event_times(store, environment, rule.customer, rule.meter).items()):
        if now_us - last >= window_us:
            hours = Decimal(now_us - last) / Decimal(3_600_000_000)
            findings.append(Finding(customer, meter,
                                    f"no {meter} events from {customer} for {hours.quantize(Decimal('0.1'))} h "
                                    f"(rule: silent for {format_duration(rule.window_seconds)})",
                                    {"last_event_at": rfc3339_seconds(last), "silent_seconds": (now_us - last) // 1_000_000,
                                     "window": format_duration(rule.window_seconds)}))
    return findings


def _drops(store: Store, environment: str, rule: RuleRow, now_us: int) -> list[Finding]:
    window_us = rule.window_seconds * 1_000_000
    baseline_us = (rule.baseline_seconds or 0) * 1_000_000
    recent_start = now_us - window_us
    baseline = event_counts(store, environment, rule.customer, rule.meter, recent_start - baseline_us, recent_start)
    recent = event_counts(store, environment, rule.customer, rule.meter, recent_start, now_us)
    fraction = Decimal(rule.fraction or "0")
    least = Decimal(rule.min_expected or "0")
    findings = []
    for (customer, meter), base in sorted(baseline.items()):
        expected = Decimal(base) * window_us / baseline_us
        observed = recent.get((customer, meter), 0)
        if expected >= least and observed < fraction * expected:
            shown = expected.quantize(Decimal("0.1"))
            findings.append(Finding(customer, meter,
                                    f"{observed} {meter} events from {customer} in the last "
                                    f"{format_duration(rule.window_seconds)}, expected {shown} from the "
                                    f"{format_duration(rule.baseline_seconds or 0)} baseline (alert below "
                                    f"{rule.fraction} × expected)",
                                    {"observed": observed, "expected": str(shown), "baseline_events": base,
                                     "fraction": rule.fraction, "window": format_duration(rule.window_seconds),
                                     "baseline": format_duration(rule.baseline_seconds or 0)}))
    return findings


# ---------------------------------------------------------------- documents and deliveries


def alert_document(alert: AlertRow) -> dict[str, Any]:
    return {"id": alert.id, "rule": alert.rule_id, "kind": alert.kind, "customer": alert.customer,
            "meter": alert.meter, "status": alert.status, "message": alert.message,
            "details": orjson.loads(alert.details), "opened_at": rfc3339_seconds(alert.opened_at),
            "resolved_at": None if alert.resolved_at is None else rfc3339_seconds(alert.resolved_at)}


def _queue(connection: Any, environment: str, endpoints: list, event_type: str, alert: AlertRow, status: str,
           now_us: int, extra: dict[str, Any]) -> None:
    data = {**alert_document(alert), "status": status, **extra}
    if status == "resolved":
        data["resolved_at"] = rfc3339_seconds(now_us)
    body = orjson.dumps({"id": f"alert_{alert.id}.{event_type.split('.')[1]}", "type": event_type,
                         "environment": environment, "created_at": rfc3339_seconds(now_us), "data": data}).decode()
    settings = webhook_settings(connection, environment)  # Solvimon webhooks take the actions they chose
    enqueue_deliveries(connection, environment, [
        {"endpoint_id": endpoint.id, "event_type": event_type, "alert_id": alert.id, "body": body,
         "created_at": now_us} for endpoint in endpoints if subscribed(settings.get(endpoint.id), event_type)])
