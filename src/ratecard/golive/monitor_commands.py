"""`ratecard monitor|alerts|webhooks`: the CLI face of golive.monitor, golive.alerts and
golive.webhooks (registered in ratecard.cli). The CLI works on the `live` environment."""

from __future__ import annotations

from typing import Annotated

import typer

from ..ingest.validate import from_micros

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (else RATECARD_DATABASE_URL, "
                                                             "else sqlite:///ratecard.db).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
ENVIRONMENT = "live"


def _iso(micros: int | None) -> str | None:
    return None if micros is None else from_micros(micros).strftime("%Y-%m-%dT%H:%M:%SZ")


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items()))


# ---------------------------------------------------------------- monitor


def monitor_ingestion(
    minutes: Annotated[int, typer.Option("--minutes", help="How many minutes back, the current one included.")] = 60,
    env: Annotated[str, typer.Option("--env", help="live | sandbox (API keys' events)")] = ENVIRONMENT,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Ingestion figures per minute: accepted, rejected by reason, duplicates, unmatched, late."""
    from rich.table import Table

    from ..cli import _now, emit_json, fail, store_for
    from ..cli import out as console
    from ..store.keys import ENVIRONMENTS
    from .monitor import ingestion_minutes

    if minutes < 1 or minutes > 525_600:
        fail(f"--minutes: {minutes} must be between 1 and 525600 (a year)")
    if env not in ENVIRONMENTS:
        fail(f"--env: {env!r} is not an environment ({' or '.join(ENVIRONMENTS)})")
    now = _now()
    with store_for(db) as store:
        figures = ingestion_minutes(store, env, now, minutes)
    if json_output:
        emit_json(figures)
        return
    table = Table(title=f"ingestion per minute ({env}), {figures['from']} to {figures['until']}")
    for column in ("minute", "accepted", "rejected", "duplicates", "unmatched", "late", "reasons"):
        table.add_column(column, justify="left" if column in ("minute", "reasons") else "right")
    for row in [*figures["minutes"], {**figures["totals"], "minute": "total"}]:
        reasons = "; ".join(part for part in (_reasons(row["rejected_by_reason"]),
                                                _reasons(row["unmatched_by_reason"])) if part)
        table.add_row(row["minute"], str(row["accepted"]), str(row["rejected"]), str(row["duplicates"]),
                      str(row["unmatched"]), str(row["late"]), reasons)
    if not figures["minutes"]:
        console.print(f"no ingestion in the last {minutes} minute(s) ({figures['from']} to {figures['until']})")
        return
    console.print(table)


def monitor_run(
    max_attempts: Annotated[int, typer.Option("--max-attempts", min=1, max=100,
                                              help="Attempts before a webhook delivery is marked failed.")] = 10,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Evaluate the alert rules at "now", record alerts, deliver due webhooks. Safe to run from
    cron every minute (overlapping runs neither raise an alert twice nor send a delivery twice
    at once). Exit 1 while any alert is open."""
    from ..cli import _now, emit_json, store_for
    from ..cli import out as console
    from .alerts import evaluate
    from .webhooks import deliver_pending

    now = _now()
    with store_for(db) as store:
        evaluation = evaluate(store, ENVIRONMENT, now)
        deliveries = deliver_pending(store, ENVIRONMENT, now, max_attempts=max_attempts)
    result = {"now": now.isoformat(), **evaluation.as_dict(), "deliveries": deliveries.as_dict()}
    if json_output:
        emit_json(result)
    else:
        for alert in evaluation.opened:
            console.print(f"opened alert {alert['id']}: {alert['message']}", markup=False, highlight=False)
        for alert in evaluation.resolved:
            console.print(f"resolved alert {alert['id']}: {alert['customer']} / {alert['meter']}", markup=False,
                          highlight=False)
        d = deliveries
        console.print(f"{len(evaluation.opened)} opened, {len(evaluation.resolved)} resolved, {evaluation.open} "
                      f"open; webhooks: {d.delivered} delivered, {d.retrying} to retry, {d.failed} failed",
                      markup=False, highlight=False)
    raise typer.Exit(1 if evaluation.open else 0)


# ---------------------------------------------------------------- alerts


def alerts_list(
    status: Annotated[str | None, typer.Option("--status", help="open | resolved")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="At most this many, newest first (0: all).")] = 100,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Alerts, newest first."""
    from rich.table import Table

    from ..cli import emit_json, fail, store_for
    from ..cli import out as console
    from ..store.monitoring import list_alerts
    from .alerts import alert_document

    if status is not None and status not in ("open", "resolved"):
        fail(f"--status: {status!r} is not an alert status (open or resolved)")
    with store_for(db) as store:
        rows, _ = list_alerts(store, ENVIRONMENT, status, limit or None)
    documents = [alert_document(row) for row in rows]
    if json_output:
        emit_json(documents)
        return
    if not documents:
        console.print("no alerts" if status is None else f"no {status} alerts")
        return
    table = Table(title=f"alerts ({len(documents)})")
    for column in ("id", "status", "kind", "customer", "meter", "opened", "resolved", "message"):
        table.add_column(column)
    for a in documents:
        table.add_row(str(a["id"]), a["status"], a["kind"], a["customer"], a["meter"], a["opened_at"],
                      a["resolved_at"] or "", a["message"])
    console.print(table)


def rules_add(
    kind: Annotated[str, typer.Option("--kind", help="silence | drop")],
    hours: Annotated[str | None, typer.Option("--hours", help="silence: alert after this many hours without "
                                                              "events")] = None,
    fraction: Annotated[str | None, typer.Option("--fraction", help="drop: alert below this share of the "
                                                                    "baseline rate (0 < f ≤ 1)")] = None,
    window: Annotated[str | None, typer.Option("--window", help="drop: recent window, e.g. 1h (default)")] = None,
    baseline: Annotated[str | None, typer.Option("--baseline", help="drop: trailing baseline before the "
                                                                    "window, e.g. 7d (default)")] = None,
    min_expected: Annotated[str | None, typer.Option("--min-expected", help="drop: judge only pairs whose "
                                                                            "baseline predicts at least this "
                                                                            "many events in the window "
                                                                            "(default 5)")] = None,
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer (default: all).")] = None,
    meter: Annotated[str | None, typer.Option("--meter", help="Only this meter (default: all).")] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Store an alert rule for missing events."""
    from ..cli import _now, emit_json, fail, store_for
    from ..cli import out as console
    from ..store.monitoring import list_rules
    from .alerts import RuleError, create_rule, describe_rule, rule_document

    now = _now()
    with store_for(db) as store:
        try:
            rule_id = create_rule(store, ENVIRONMENT, now, kind=kind, customer=customer, meter=meter, hours=hours,
                                  fraction=fraction, window=window, baseline=baseline, min_expected=min_expected)
        except RuleError as exc:
            fail(str(exc))
        rule = next(r for r in list_rules(store, ENVIRONMENT) if r.id == rule_id)
    if json_output:
        emit_json(rule_document(rule))
    else:
        console.print(f"added rule {rule.id}: {rule.kind}, {describe_rule(rule)}", markup=False, highlight=False)


def rules_list(db: DbOption = None, json_output: JsonOption = False) -> None:
    """The stored alert rules."""
    from rich.table import Table

    from ..cli import emit_json, store_for
    from ..cli import out as console
    from ..store.monitoring import list_rules
    from .alerts import describe_rule, rule_document

    with store_for(db) as store:
        rules = list_rules(store, ENVIRONMENT)
    if json_output:
        emit_json([rule_document(r) for r in rules])
        return
    if not rules:
        console.print("no alert rules; add one with `ratecard alerts rules add --kind silence --hours 6`")
        return
    table = Table(title=f"alert rules ({len(rules)})")
    for column in ("id", "kind", "customer", "meter", "rule"):
        table.add_column(column)
    for r in rules:
        table.add_row(str(r.id), r.kind, r.customer or "*", r.meter or "*", describe_rule(r))
    console.print(table)


def rules_remove(rule_id: int, db: DbOption = None, json_output: JsonOption = False) -> None:
    """Remove a rule; its open alerts are resolved (and that is delivered)."""
    from ..cli import _now, emit_json, fail, store_for
    from ..cli import out as console
    from .alerts import remove_rule

    now = _now()
    with store_for(db) as store:
        resolved = remove_rule(store, ENVIRONMENT, rule_id, now)
    if resolved is None:
        fail(f"there is no alert rule {rule_id} (see `ratecard alerts rules list`)")
    if json_output:
        emit_json({"removed": rule_id, "resolved_alerts": [a.id for a in resolved]})
    else:
        console.print(f"removed rule {rule_id}; resolved {len(resolved)} open alert(s)")


# ---------------------------------------------------------------- webhooks


def webhooks_add(
    url: str,
    secret: Annotated[str | None, typer.Option("--secret", help="Signing secret (16-256 characters); "
                                                                "generated and printed once if left out.")] = None,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add an endpoint that receives alert.opened and alert.resolved events, signed."""
    from ..cli import _now, emit_json, fail, store_for
    from ..cli import out as console
    from .webhooks import EndpointError, create_endpoint

    now = _now()
    with store_for(db) as store:
        try:
            endpoint_id, chosen = create_endpoint(store, ENVIRONMENT, url, secret, now)
        except EndpointError as exc:
            fail(str(exc))
    if json_output:
        emit_json({"id": endpoint_id, "url": url, "secret": None if secret else chosen})
        return
    console.print(f"added webhook endpoint {endpoint_id}: {url}", markup=False, highlight=False)
    if secret is None:
        console.print("its signing secret (shown once; keep it to verify Ratecard-Signature):")
        console.print(chosen, markup=False, highlight=False)


def webhooks_list(db: DbOption = None, json_output: JsonOption = False) -> None:
    """Webhook endpoints (secrets are never shown again)."""
    from rich.table import Table

    from ..cli import emit_json, store_for
    from ..cli import out as console
    from ..store.monitoring import list_deliveries, list_endpoints

    with store_for(db) as store:
        endpoints = list_endpoints(store, ENVIRONMENT)
        pending = {e.id: len(list_deliveries(store, ENVIRONMENT, e.id, "pending", None)) for e in endpoints}
    documents = [{"id": e.id, "url": e.url, "created_at": _iso(e.created_at), "pending": pending[e.id]}
                 for e in endpoints]
    if json_output:
        emit_json(documents)
        return
    if not documents:
        console.print("no webhook endpoints; add one with `ratecard webhooks add URL`")
        return
    table = Table(title=f"webhook endpoints ({len(documents)})")
    for column in ("id", "url", "created", "pending deliveries"):
        table.add_column(column)
    for d in documents:
        table.add_row(str(d["id"]), d["url"], d["created_at"], str(d["pending"]))
    console.print(table)


def webhooks_remove(endpoint_id: int, db: DbOption = None) -> None:
    """Remove an endpoint; its pending deliveries are marked failed (the log is kept)."""
    from ..cli import fail, store_for
    from ..cli import out as console
    from ..store.monitoring import delete_endpoint

    with store_for(db) as store:
        removed = delete_endpoint(store, ENVIRONMENT, endpoint_id)
    if not removed:
        fail(f"there is no webhook endpoint {endpoint_id} (see `ratecard webhooks list`)")
    console.print(f"removed webhook endpoint {endpoint_id}")


def webhooks_deliveries(
    status: Annotated[str | None, typer.Option("--status", help="pending | delivered | failed")] = None,
    endpoint: Annotated[int | None, typer.Option("--endpoint", help="Only this endpoint's deliveries.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="At most this many, newest first (0: all).")] = 100,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """The delivery log: each delivery's status, attempts, last answer and next attempt."""
    from rich.table import Table

    from ..cli import emit_json, fail, store_for
    from ..cli import out as console
    from ..store.monitoring import list_deliveries

    if status is not None and status not in ("pending", "delivered", "failed"):
        fail(f"--status: {status!r} is not a delivery status (pending, delivered or failed)")
    with store_for(db) as store:
        rows = list_deliveries(store, ENVIRONMENT, endpoint, status, limit or None)
    documents = [{"id": d.id, "endpoint": d.endpoint_id, "event": d.event_type, "alert": d.alert_id,
                  "status": d.status, "attempts": d.attempts, "last_status_code": d.last_status_code,
                  "last_error": d.last_error,
                  "next_attempt_at": _iso(d.next_attempt_at) if d.status == "pending" else None,
                  "created_at": _iso(d.created_at), "delivered_at": _iso(d.delivered_at)} for d in rows]
    if json_output:
        emit_json(documents)
        return
    if not documents:
        console.print("no webhook deliveries")
        return
    table = Table(title=f"webhook deliveries ({len(documents)}, newest first)")
    for column in ("id", "endpoint", "event", "alert", "status", "attempts", "last answer", "next attempt"):
        table.add_column(column)
    for d in documents:
        answer = d["last_error"] or (str(d["last_status_code"]) if d["last_status_code"] is not None else "")
        table.add_row(str(d["id"]), str(d["endpoint"]), d["event"], str(d["alert"] or ""), d["status"],
                      str(d["attempts"]), answer, d["next_attempt_at"] or "")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add `monitor`, `alerts` (with `alerts rules`) and `webhooks` to the ratecard command."""
    monitor_app = typer.Typer(help="Ingestion figures and the cron-safe alert run.", no_args_is_help=True)
    monitor_app.command("ingestion")(monitor_ingestion)
    monitor_app.command("run")(monitor_run)
    app.add_typer(monitor_app, name="monitor")
    alerts_app = typer.Typer(help="Missing-event alerts and their rules.", no_args_is_help=True)
    alerts_app.command("list")(alerts_list)
    rules_app = typer.Typer(help="Alert rules: silence and drop.", no_args_is_help=True)
    rules_app.command("add")(rules_add)
    rules_app.command("list")(rules_list)
    rules_app.command("remove")(rules_remove)
    alerts_app.add_typer(rules_app, name="rules")
    app.add_typer(alerts_app, name="alerts")
    webhooks_app = typer.Typer(help="Signed webhook endpoints for alerts, and the delivery log.",
                               no_args_is_help=True)
    webhooks_app.command("add")(webhooks_add)
    webhooks_app.command("list")(webhooks_list)
    webhooks_app.command("remove")(webhooks_remove)
    webhooks_app.command("deliveries")(webhooks_deliveries)
    app.add_typer(webhooks_app, name="webhooks")
