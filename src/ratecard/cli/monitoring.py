"""`ratecard monitor ingestion|run`, `ratecard alerts list|rules …`, `ratecard webhooks …`.
They work on the live environment (`monitor ingestion --env sandbox` shows the sandbox's figures)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import ENVIRONMENT, MAX_ID, MAX_LIMIT, DbOption, JsonOption, counts_text, emit_json, now, store_for
from .console import Table, out, say

monitor_app = typer.Typer(help="Ingestion figures and the cron-safe alert run.", no_args_is_help=True)
alerts_app = typer.Typer(help="Missing-event alerts and their rules.", no_args_is_help=True)
rules_app = typer.Typer(help="Alert rules: silence and drop.", no_args_is_help=True)
webhooks_app = typer.Typer(help="Signed webhook endpoints for alerts, and the delivery log.", no_args_is_help=True)
alerts_app.add_typer(rules_app, name="rules")

RowId = Annotated[int, typer.Argument(min=1, max=MAX_ID)]
Limit = Annotated[int, typer.Option("--limit", min=0, max=MAX_LIMIT, help="At most this many, newest first (0: all).")]

# ---------------------------------------------------------------- monitor


@monitor_app.command("ingestion")
def ingestion(
    minutes: Annotated[int, typer.Option("--minutes", help="How many minutes back, the current one included.")] = 60,
    env: Annotated[str, typer.Option("--env", help="live | sandbox (API keys' events)")] = ENVIRONMENT,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Ingestion figures per minute: accepted, rejected by reason, duplicates, unmatched, late."""
    from ..services import monitoring

    moment = now()
    with store_for(db) as store:
        figures = monitoring.ingestion(store, moment, minutes, env)
    if json_output:
        emit_json(figures)
        return
    if not figures["minutes"]:
        say(out, f"no ingestion in the last {minutes} minute(s) ({figures['from']} to {figures['until']})")
        return
    table = Table(title=f"ingestion per minute ({env}), {figures['from']} to {figures['until']}")
    for column in ("minute", "accepted", "rejected", "duplicates", "unmatched", "late", "reasons"):
        table.add_column(column, justify="left" if column in ("minute", "reasons") else "right")
    for row in [*figures["minutes"], {**figures["totals"], "minute": "total"}]:
        reasons = "; ".join(part for part in (counts_text(row["rejected_by_reason"], ""),
                                                counts_text(row["unmatched_by_reason"], "")) if part)
        table.add_row(row["minute"], str(row["accepted"]), str(row["rejected"]), str(row["duplicates"]),
                      str(row["unmatched"]), str(row["late"]), reasons)
    out.print(table)


@monitor_app.command("run")
def run(
    max_attempts: Annotated[int, typer.Option("--max-attempts", min=1, max=100,
                                              help="Attempts before a webhook delivery is marked failed.")] = 10,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Evaluate the alert rules at "now", record alerts, deliver due webhooks. Safe to run from
    cron every minute (overlapping runs neither raise an alert twice nor send a delivery twice
    at once). Exit 1 while any alert is open."""
    from ..services import monitoring

    moment = now()
    with store_for(db) as store:
        result = monitoring.run(store, moment, ENVIRONMENT, max_attempts)
    evaluation, d = result.evaluation, result.deliveries
    if json_output:
        emit_json(result.as_dict())
    else:
        for alert in evaluation.opened:
            say(out, f"opened alert {alert['id']}: {alert['message']}")
        for alert in evaluation.resolved:
            say(out, f"resolved alert {alert['id']}: {alert['customer']} / {alert['meter']}")
        say(out, f"{len(evaluation.opened)} opened, {len(evaluation.resolved)} resolved, {evaluation.open} open; "
                 f"webhooks: {d.delivered} delivered, {d.retrying} to retry, {d.failed} failed")
    raise typer.Exit(1 if evaluation.open else 0)


# ---------------------------------------------------------------- alerts


@alerts_app.command("list")
def alerts_list(
    status: Annotated[str | None, typer.Option("--status", help="open | resolved")] = None,
    limit: Limit = 100,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Alerts, newest first."""
    from ..services import monitoring

    with store_for(db) as store:
        documents = monitoring.alerts(store, ENVIRONMENT, status, limit or None)
    if json_output:
        emit_json(documents)
        return
    if not documents:
        say(out, "no alerts" if status is None else f"no {status} alerts")
        return
    table = Table(title=f"alerts ({len(documents)})")
    for column in ("id", "status", "kind", "customer", "meter", "opened", "resolved", "message"):
        table.add_column(column)
    for a in documents:
        table.add_row(str(a["id"]), a["status"], a["kind"], a["customer"], a["meter"], a["opened_at"],
                      a["resolved_at"] or "", a["message"])
    out.print(table)


@rules_app.command("add")
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
    from ..services import monitoring

    moment = now()
    with store_for(db) as store:
        rule = monitoring.add_rule(store, moment, ENVIRONMENT, kind=kind, customer=customer, meter=meter, hours=hours,
                                   fraction=fraction, window=window, baseline=baseline, min_expected=min_expected)
    if json_output:
        emit_json(monitoring.rule_as_dict(rule))
    else:
        say(out, f"added rule {rule.id}: {rule.kind}, {monitoring.rule_summary(rule)}")


@rules_app.command("list")
def rules_list(db: DbOption = None, json_output: JsonOption = False) -> None:
    """The stored alert rules."""
    from ..services import monitoring

    with store_for(db) as store:
        rules = monitoring.rules(store, ENVIRONMENT)
    if json_output:
        emit_json([monitoring.rule_as_dict(r) for r in rules])
        return
    if not rules:
        say(out, "no alert rules; add one with `ratecard alerts rules add --kind silence --hours 6`")
        return
    table = Table(title=f"alert rules ({len(rules)})")
    for column in ("id", "kind", "customer", "meter", "rule"):
        table.add_column(column)
    for r in rules:
        table.add_row(str(r.id), r.kind, r.customer or "*", r.meter or "*", monitoring.rule_summary(r))
    out.print(table)


@rules_app.command("remove")
def rules_remove(rule_id: RowId, db: DbOption = None, json_output: JsonOption = False) -> None:
    """Remove a rule; its open alerts are resolved (and that is delivered)."""
    from ..services import monitoring

    moment = now()
    with store_for(db) as store:
        result = monitoring.remove(store, rule_id, moment, ENVIRONMENT)
    if json_output:
        emit_json(result)
    else:
        say(out, f"removed rule {rule_id}; resolved {len(result['resolved_alerts'])} open alert(s)")


# ---------------------------------------------------------------- webhooks


@webhooks_app.command("add")
def webhooks_add(
    url: str,
    secret: Annotated[str | None, typer.Option("--secret", help="Signing secret (16-256 characters); "
                                                                "generated and printed once if left out.")] = None,
    allow_private: Annotated[bool, typer.Option("--allow-private", help="Allow a receiver on a private, loopback "
                                                                        "or link-local address (your own network; "
                                                                        "refused otherwise).")] = False,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add an endpoint that receives alert.opened and alert.resolved events, signed. Its host must be
    a public address (checked now and before every delivery) unless --allow-private is given."""
    from ..services import monitoring

    moment = now()
    with store_for(db) as store:
        endpoint = monitoring.add_webhook(store, url, moment, ENVIRONMENT, secret, allow_private)
    if json_output:
        emit_json(endpoint)
        return
    say(out, f"added webhook endpoint {endpoint['id']}: {url}")
    if endpoint["secret"] is not None:
        say(out, "its signing secret (shown once; keep it to verify Ratecard-Signature):")
        say(out, endpoint["secret"])


@webhooks_app.command("list")
def webhooks_list(db: DbOption = None, json_output: JsonOption = False) -> None:
    """Webhook endpoints (secrets are never shown again)."""
    from ..services import monitoring

    with store_for(db) as store:
        documents = monitoring.webhooks(store, ENVIRONMENT)
    if json_output:
        emit_json(documents)
        return
    if not documents:
        say(out, "no webhook endpoints; add one with `ratecard webhooks add URL`")
        return
    table = Table(title=f"webhook endpoints ({len(documents)})")
    for column in ("id", "url", "created", "pending deliveries"):
        table.add_column(column)
    for d in documents:
        table.add_row(str(d["id"]), d["url"], d["created_at"], str(d["pending"]))
    out.print(table)


@webhooks_app.command("remove")
def webhooks_remove(endpoint_id: RowId, db: DbOption = None) -> None:
    """Remove an endpoint; its pending deliveries are marked failed (the log is kept)."""
    from ..services import monitoring

    with store_for(db) as store:
        monitoring.remove_webhook(store, endpoint_id, ENVIRONMENT)
    say(out, f"removed webhook endpoint {endpoint_id}")


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    status: Annotated[str | None, typer.Option("--status", help="pending | delivered | failed")] = None,
    endpoint: Annotated[int | None, typer.Option("--endpoint", min=1, max=MAX_ID,
                                                                help="Only this endpoint's deliveries.")] = None,
    limit: Limit = 100,
    db: DbOption = None,
    json_output: JsonOption = False,
) -> None:
    """The delivery log: each delivery's status, attempts, last answer and next attempt."""
    from ..services import monitoring

    with store_for(db) as store:
        documents = monitoring.deliveries(store, ENVIRONMENT, status, endpoint, limit or None)
    if json_output:
        emit_json(documents)
        return
    if not documents:
        say(out, "no webhook deliveries")
        return
    table = Table(title=f"webhook deliveries ({len(documents)}, newest first)")
    for column in ("id", "endpoint", "event", "alert", "status", "attempts", "last answer", "next attempt"):
        table.add_column(column)
    for d in documents:
        answer = d["last_error"] or (str(d["last_status_code"]) if d["last_status_code"] is not None else "")
        table.add_row(str(d["id"]), str(d["endpoint"]), d["event"], str(d["alert"] or ""), d["status"],
                      str(d["attempts"]), answer, d["next_attempt_at"] or "")
    out.print(table)


@webhooks_app.command("retry")
def webhooks_retry(delivery_id: RowId, db: DbOption = None, json_output: JsonOption = False) -> None:
    """Send a failed delivery again: back to pending with fresh attempts; the next `ratecard monitor
    run` sends it."""
    from ..services import monitoring

    moment = now()
    with store_for(db) as store:
        result = monitoring.retry_delivery(store, delivery_id, moment, ENVIRONMENT)
    if json_output:
        emit_json(result)
    else:
        say(out, f"delivery {delivery_id} is pending again; the next `ratecard monitor run` sends it")
