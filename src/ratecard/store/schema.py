"""The tables. The Alembic migrations in migrations/versions build exactly this schema
(tests/integration/test_migrations.py compares them)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)

from .types import ExactDecimal, JsonText

metadata = MetaData()

catalog_versions = Table(
    "catalog_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # internal; never shown
    Column("environment", String(16), nullable=False),
    # 1, 2, 3... within the environment: sandbox's applies never shift live's numbers
    Column("version", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),  # µs since epoch, UTC
    Column("digest", String(64), nullable=False),
    Column("document", Text, nullable=False),  # canonical JSON, decimals as strings
    UniqueConstraint("environment", "version", name="uq_catalog_versions_env"),
)

# One row per accepted event. (environment, id) is the idempotency key: the insert and the
# dedup are one statement (INSERT OR IGNORE / ON CONFLICT DO NOTHING).
# On PostgreSQL the table is partitioned by month of ts (migration 0026, store/partitions.py): its
# primary key is (environment, id, ts) there, and the idempotency key is held by the plain table
# event_ids (environment, id), claimed by a trigger in the same statement as each insert. Those
# PostgreSQL-only objects are not declared here (SQLite has none of them).
events = Table(
    "events",
    metadata,
    Column("environment", String(16), primary_key=True),
    Column("id", String(256), primary_key=True),
    Column("customer", String(256), nullable=False),
    Column("meter", String(256), nullable=False),
    Column("ts", BigInteger, nullable=False),  # µs since epoch, UTC
    Column("properties", JsonText, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    # matched | unknown_customer | unknown_meter | no_subscription | unpriced | invalid_value
    Column("status", String(32), nullable=False),
    Column("late", Boolean, nullable=False, default=False),
    Column("deleted_at", BigInteger, nullable=True),  # soft delete (µs); a deleted event is never billed
    # the subscription the event names (its reference), if any: it is billed by that subscription only
    Column("subscription", String(256), nullable=True),
    Index("ix_events_usage", "environment", "customer", "meter", "ts"),
    Index("ix_events_status", "environment", "status"),
    # the console's events explorer, newest first: all events, and the unbilled ones (a few in a hundred)
    Index("ix_events_time", "environment", "ts"),
    Index("ix_events_unbilled", "environment", "late", "ts", sqlite_where=text("status <> 'matched' OR late = 1"),
          postgresql_where=text("status <> 'matched' OR late = true")),
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(16), nullable=False),
    Column("number", String(64), nullable=True),  # assigned, gapless, at finalization
    Column("customer", String(256), nullable=False),
    Column("subscription", String(256), nullable=False),
    Column("status", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("boundary_ts", BigInteger, nullable=False),
    Column("issue_date", String(10), nullable=False),
    Column("subtotal", ExactDecimal, nullable=False),
    Column("tax", ExactDecimal, nullable=False),
    Column("total", ExactDecimal, nullable=False),
    Column("tax_rate", ExactDecimal, nullable=False),
    Column("catalog_version", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("finalized_at", BigInteger, nullable=True),
    Column("on_hold", Boolean, nullable=False, server_default=false()),  # held drafts are never finalized
    # live: billed by ratecard; shadow: computed for comparison, never finalized or sent
    Column("mode", String(8), nullable=False, server_default="live"),
    Column("kind", String(16), nullable=False, server_default="invoice"),  # invoice | credit_note
    # 0 for a cut's first invoice; n for the n-th correction (credit note + replacement) of it
    Column("revision", Integer, nullable=False, server_default="0"),
    # a credit note: the invoice it credits; a replacement invoice: the invoice it replaces
    Column("corrects", Integer, nullable=True),
    # what people call a draft (DRAFT-<n>): counted 1, 2, 3... within the environment, so the number says
    # nothing about another environment's invoices; every invoice keeps the one it was created with
    Column("draft_number", Integer, nullable=True),
    # archived (a void invoice): left out of the lists, still found by its id or number
    Column("archived_at", BigInteger, nullable=True),
    UniqueConstraint("environment", "subscription", "boundary_ts", "mode", "kind", "revision",
                     name="uq_invoices_cut"),
    UniqueConstraint("environment", "number", name="uq_invoices_number"),
    Index("ix_invoices_status", "environment", "status"),
    # the newest invoices first, of the environment or of one customer (the console's lists)
    Index("ix_invoices_recent", "environment", "id"),
    Index("ix_invoices_customer", "environment", "customer", "id"),
    Index("uq_invoices_draft_number", "environment", "draft_number", unique=True),
)

invoice_lines = Table(
    "invoice_lines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("invoice_id", Integer, ForeignKey("invoices.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("code", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("service_start", String(10), nullable=False),  # local date
    Column("service_end", String(10), nullable=False),  # local date, exclusive
    Column("service_start_ts", BigInteger, nullable=False),
    Column("service_end_ts", BigInteger, nullable=False),
    Column("quantity", ExactDecimal, nullable=False),
    Column("unit_amount", ExactDecimal, nullable=False),
    Column("amount", ExactDecimal, nullable=False),
    # a tiered usage line's parts, one per tier (JSON, domain.tiers); NULL for other lines and for
    # lines written before the parts were kept
    Column("tiers", Text, nullable=True),
    # a line of a charge priced per dimension: its filter's code (NULL: the default price) and its
    # group as a JSON object of property -> value (NULL: no group_by); NULL for every other line
    Column("filter_code", String(100), nullable=True),
    Column("group_values", Text, nullable=True),
    Index("ix_invoice_lines_invoice", "invoice_id"),
)

invoice_sequences = Table(
    "invoice_sequences",
    metadata,
    Column("environment", String(16), primary_key=True),
    Column("prefix", String(32), primary_key=True),
    Column("last_number", Integer, nullable=False),
)

# The last draft number given in each environment. A counter rather than max+1, so the number of a
# draft that was removed (its lines gone) is never given to another invoice; its row is the lock
# that makes two concurrent invoice runs of one environment take different numbers.
draft_sequences = Table(
    "draft_sequences",
    metadata,
    Column("environment", String(16), primary_key=True),
    Column("last_number", Integer, nullable=False),
)

# API keys: the secret is shown once; only its SHA-256 is stored. A key belongs to one
# environment and never sees another's rows.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("environment", String(16), nullable=False),
    Column("name", String(200), nullable=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

# Idempotency-Key: the first response to a (environment, key) is stored and replayed.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("environment", String(16), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("method", String(8), nullable=False),
    Column("path", Text, nullable=False),
    Column("request_sha256", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response_body", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_idempotency_created", "created_at"),
)

# A submission whose event id was already stored: kept (listed as DUPLICATE), never billed.
event_duplicates = Table(
    "event_duplicates",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(16), nullable=False),
    Column("id", String(256), nullable=False),
    Column("customer", String(256), nullable=False),
    Column("meter", String(256), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("properties", JsonText, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Index("ix_event_duplicates_id", "environment", "id"),
)

# Solvimon-compatible configuration that has no place in the catalog document: meter values,
# meter properties, meters (event schemas), and the Solvimon-only fields of calculations and
# customers (whose billing meaning lives in the catalog). `body` is JSON text.
api_resources = Table(
    "api_resources",
    metadata,
    Column("environment", String(16), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),  # meter | meter_value | meter_property | calculation | customer
    Column("reference", String(256), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("environment", "kind", "reference", name="uq_api_resources_reference"),
)

# One counter per environment, bumped by every change of api_resources, so each worker knows
# when its cached copy is stale with one primary-key read.
api_resource_revisions = Table(
    "api_resource_revisions",
    metadata,
    Column("environment", String(16), primary_key=True),
    Column("revision", BigInteger, nullable=False),
)

# Background jobs (POST /v1/reprocess): visible from every worker process.
jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("environment", String(16), nullable=False),
    Column("type", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # PENDING | RUNNING | DONE | FAILED
    Column("percentage", Integer, nullable=False),
    Column("params", Text, nullable=False),  # JSON
    Column("result", Text, nullable=True),  # JSON
    Column("error", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=True),
    Index("ix_jobs_env_created", "environment", "created_at"),
)


# Shadow launch: a cohort is a named group of customers moved to ratecard together.
cohorts = Table(
    "cohorts",
    metadata,
    Column("environment", String(16), primary_key=True),
    Column("name", String(200), primary_key=True),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("promoted_at", BigInteger, nullable=True),
    Column("rolled_back_at", BigInteger, nullable=True),
)

# A customer's billing mode. No row: live, billed by ratecard from the cutover (if any).
# A row with live_from NULL: shadow. live_from set: ratecard bills the service periods that
# start at or after it; earlier periods stay with the legacy system (shadow invoices).
customer_modes = Table(
    "customer_modes",
    metadata,
    Column("environment", String(16), primary_key=True),
    Column("customer", String(256), primary_key=True),
    Column("cohort", String(200), nullable=True),
    Column("live_from", BigInteger, nullable=True),  # µs
    Column("updated_at", BigInteger, nullable=False),
)

# The full cutover: from this instant ratecard bills every customer not held in shadow.
cutovers = Table(
    "cutovers",
    metadata,
    Column("environment", String(16), primary_key=True),
    Column("live_from", BigInteger, nullable=False),  # µs
    Column("date", String(32), nullable=False),  # as the user gave it
    Column("applied_at", BigInteger, nullable=False),
)

# One parallel-run report per cohort and billing cycle: the history a team reads before promoting.
parallel_runs = Table(
    "parallel_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(16), nullable=False),
    Column("cohort", String(200), nullable=False),
    Column("cycle", String(32), nullable=False),
    Column("legacy_file", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("lines_compared", Integer, nullable=False),
    Column("differences", Integer, nullable=False),
    Column("clean", Boolean, nullable=False),
    Column("summary", Text, nullable=False),  # JSON
    Column("report", Text, nullable=False),  # JSON: the reconciliation as `reconcile --json` prints it
    Index("ix_parallel_runs_cohort", "environment", "cohort", "id"),
)

# --- backfills ---
# A backfill: historical usage for a time window [start_ts, end_ts), imported while pending
# (stored, never billed), made billable by close, undone by revert.
backfills = Table(
    "backfills",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("environment", String(16), nullable=False),
    Column("start_ts", BigInteger, nullable=False),  # µs, inclusive
    Column("end_ts", BigInteger, nullable=False),  # µs, exclusive
    Column("customer", String(256), nullable=True),  # NULL: every customer
    Column("replace", Boolean, nullable=False),  # close replaces the window's stored events
    Column("status", String(16), nullable=False),  # pending | closed | reverted
    Column("created_at", BigInteger, nullable=False),
    Column("closed_at", BigInteger, nullable=True),
    Column("reverted_at", BigInteger, nullable=True),
    Column("result", Text, nullable=True),  # JSON: what the last close or revert did
    Index("ix_backfills_env_status", "environment", "status"),
)

# The backfill's own events, kept for good: copied into events at close (applied: the row was
# new there), removed from events again at revert.
backfill_events = Table(
    "backfill_events",
    metadata,
    Column("backfill_id", String(32), primary_key=True),
    Column("id", String(256), primary_key=True),
    Column("environment", String(16), nullable=False),
    Column("customer", String(256), nullable=False),
    Column("meter", String(256), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("properties", JsonText, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("status", String(32), nullable=False),  # as matched at import
    Column("applied", Boolean, nullable=False, server_default=false()),
)

# Events a replacing backfill moved out of events at close, restored by its revert.
backfill_replaced_events = Table(
    "backfill_replaced_events",
    metadata,
    Column("backfill_id", String(32), primary_key=True),
    Column("id", String(256), primary_key=True),
    Column("environment", String(16), nullable=False),
    Column("customer", String(256), nullable=False),
    Column("meter", String(256), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("properties", JsonText, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("status", String(32), nullable=False),
    Column("late", Boolean, nullable=False),
)


# --- monitoring and alerts ---

# Ingestion figures per minute, written once per import call (a file, an API batch):
# metric is accepted | rejected | duplicate | unmatched | late; reason is the rejection reason
# or the unmatched status ('' when none). `minute` is the receiving minute, µs since epoch.
ingestion_counters = Table(
    "ingestion_counters",
    metadata,
    Column("environment", String(16), primary_key=True),
    Column("minute", BigInteger, primary_key=True),
    Column("metric", String(16), primary_key=True),
    Column("reason", String(32), primary_key=True),
    Column("count", BigInteger, nullable=False),
)

# Missing-event rules. silence: a (customer, meter) with no event for window_seconds;
# drop: fewer events in the last window_seconds than fraction × the trailing baseline's rate.
alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(16), nullable=False),
    Column("kind", String(16), nullable=False),  # silence | drop
    Column("customer", String(256), nullable=True),  # NULL: every customer
    Column("meter", String(256), nullable=True),  # NULL: every meter
    Column("window_seconds", BigInteger, nullable=False),
    Column("baseline_seconds", BigInteger, nullable=True),  # drop only
    Column("fraction", String(32), nullable=True),  # drop only, a decimal
    Column("min_expected", String(32), nullable=True),  # drop only, a decimal
    Column("created_at", BigInteger, nullable=False),
    Index("ix_alert_rules_env", "environment", "id"),
)

# Raised alerts. open_key is "rule/customer/meter" while open and NULL once resolved, so the
# database itself keeps one open alert per rule and pair.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(16), nullable=False),
    Column("rule_id", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("customer", String(256), nullable=False),
    Column("meter", String(256), nullable=False),
    Column("status", String(16), nullable=False),  # open | resolved
    Column("open_key", String(600), nullable=True),
    Column("message", Text, nullable=False),
    Column("details", Text, nullable=False),  # JSON
    Column("opened_at", BigInteger, nullable=False),
    Column("resolved_at", BigInteger, nullable=True),
    UniqueConstraint("environment", "open_key", name="uq_alerts_open"),
    Index("ix_alerts_env_status", "environment", "status", "id"),
)

# Webhook endpoints: the secret signs every delivery (HMAC-SHA256), so it is kept as given.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(16), nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("lease_until", BigInteger, nullable=True),  # µs, wall clock: a run delivering to it holds it until then
    Column("lease_holder", String(32), nullable=True),  # the run holding the lease: only it renews or releases it
    # the operator allowed private, loopback and link-local targets (`webhooks add --allow-private`)
    Column("allow_private", Boolean, nullable=False, server_default=false()),
)

# The delivery log and outbox: one row per (alert event, endpoint), sent in id order per endpoint.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(16), nullable=False),
    Column("endpoint_id", Integer, nullable=False),
    Column("event_type", String(32), nullable=False),  # alert.opened | alert.resolved
    Column("alert_id", Integer, nullable=True),
    Column("body", Text, nullable=False),  # the exact bytes sent and signed
    Column("status", String(16), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("next_attempt_at", BigInteger, nullable=True),  # µs; NULL once delivered or failed
    Column("created_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger, nullable=True),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "status", "id"),
)

# Console users: one login for every environment; the password is kept as an argon2 hash only.
console_users = Table(
    "console_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False),
    Column("role", String(16), nullable=False),  # viewer | operator | admin
    Column("password_hash", Text, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("failed_logins", Integer, nullable=False, server_default="0"),  # in a row; reset by a good login
    Column("locked_until", BigInteger, nullable=True),  # µs
    Column("created_at", BigInteger, nullable=False),
    Column("last_login_at", BigInteger, nullable=True),
    UniqueConstraint("email", name="uq_console_users_email"),
)

# Browser sessions: the SHA-256 of the cookie's random token, the environment the user switched to
# and the session's CSRF token (every form carries it).
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("environment", String(16), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Index("ix_console_sessions_user", "user_id"),
)

# The latest `reconcile` run from the console's upload, per environment: its summary, and each
# difference as a row so that one cause's lines are paged and sorted in SQL. Saving a new one
# replaces the environment's previous one (the legacy file itself is never kept).
reconciliations = Table(
    "reconciliations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(254), nullable=False),
    Column("legacy_file", Text, nullable=False),  # the uploaded file's name, as the browser sent it
    Column("summary", Text, nullable=False),  # JSON: Reconciliation.summary()
    Index("ix_reconciliations_environment", "environment", "id"),
)

reconciliation_differences = Table(
    "reconciliation_differences",
    metadata,
    Column("reconciliation_id", Integer, primary_key=True),
    Column("position", Integer, primary_key=True),  # the order `reconcile` reports them in
    Column("cause", String(32), nullable=False),
    Column("customer", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("service_start", String(10), nullable=False),
    Column("field", String(16), nullable=False),
    Column("ratecard", ExactDecimal, nullable=True),
    Column("legacy", ExactDecimal, nullable=True),
    Column("delta", ExactDecimal, nullable=True),
    Column("money_at_stake", ExactDecimal, nullable=False),
    Column("currency", Text, nullable=True),
    Column("detail", Text, nullable=False),  # JSON: the cause's facts (aggregation, window, rates…)
    Index("ix_reconciliation_differences_cause", "reconciliation_id", "cause", "position"),
)

# Collecting final invoices: one row per invoice charged and per credit note refunded. The row is
# the outbox of the payment: it is written when the invoice is finalized, and `payments run`
# makes the Stripe call. `idempotency_key` and `attempt_started_at` are written BEFORE the call
# and the outcome after it, so a run that died in between asks Stripe again with the same key
# (Stripe answers with the first outcome; the customer is never charged twice).
payments = Table(
    "payments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(16), nullable=False),
    Column("invoice_id", Integer, nullable=False),  # the invoice charged, or the credit note refunded
    Column("kind", String(16), nullable=False),  # charge | refund
    Column("customer", String(256), nullable=False),
    Column("method", String(16), nullable=False),  # stripe | manual (bank transfer, marked paid by hand)
    Column("stripe_customer_id", String(255), nullable=True),
    Column("refunds", Integer, nullable=True),  # a refund: the id of the charge's row it pays back
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),  # in the currency's minor unit (cents)
    # pending | succeeded | failed | requires_action | uncollectible
    Column("status", String(24), nullable=False),
    Column("attempt", Integer, nullable=False, server_default="0"),  # Stripe calls started (1, 2, ...)
    Column("idempotency_key", String(255), nullable=True),  # the key of the latest attempt
    Column("attempt_started_at", BigInteger, nullable=True),  # µs; set until the attempt's outcome is written
    Column("intent_id", String(255), nullable=True),  # the PaymentIntent (charge) or Refund id
    # the payment method the attempt charges, written with its key: a retried call sends the same request
    Column("payment_method", String(255), nullable=True),
    Column("action_url", Text, nullable=True),  # where the customer authenticates (3-D Secure)
    Column("failure", Text, nullable=True),  # the latest failure, as Stripe words it
    Column("first_failed_at", BigInteger, nullable=True),  # µs; the dunning schedule counts from it
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", BigInteger, nullable=True),  # µs; when `payments run` charges it (again)
    Column("reference", String(255), nullable=True),  # a bank transfer's reference (mark-paid)
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("environment", "invoice_id", "kind", name="uq_payments_invoice"),
    Index("ix_payments_due", "environment", "status", "next_attempt_at"),
    Index("ix_payments_intent", "environment", "intent_id"),
)

# Every invoice email sent or tried: recipient, outcome and the SMTP server's answer.
invoice_deliveries = Table(
    "invoice_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(16), nullable=False),
    Column("invoice_id", Integer, nullable=False),
    Column("recipient", String(320), nullable=True),
    Column("status", String(16), nullable=False),  # queued | sent | failed
    Column("detail", Text, nullable=True),  # the refusal or the server's error
    Column("created_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=True),
    Index("ix_invoice_deliveries_invoice", "environment", "invoice_id"),
    Index("ix_invoice_deliveries_status", "environment", "status"),
)


# the statuses a final invoice's e-invoice went through, oldest first: GENERATED when ratecard
# (re)builds its UBL / Factur-X, then what the caller's access point reports
e_invoice_statuses = Table(
    "e_invoice_statuses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(16), nullable=False),
    Column("invoice_id", Integer, nullable=False),
    Column("external_reference", String(256), nullable=False),
    Column("status", String(32), nullable=False),
    Column("message", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_e_invoice_statuses_invoice", "environment", "invoice_id", "id"),
)

# Invoice runs shared by several processes (`invoices generate --workers N`, `worker --invoices`):
# the run, one item per customer to bill, claimed under a lease that a heartbeat extends and another
# worker takes over once it runs out, and the report of each claimed batch (store/run_claims.py).
invoice_runs = Table(
    "invoice_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("environment", String(16), nullable=False),
    Column("until", String(40), nullable=False),  # as given: an ISO date or an RFC 3339 instant
    Column("catalog_version", Integer, nullable=False),  # every worker prices with this version
    Column("now_us", BigInteger, nullable=False),  # the run's one "now", shared by its workers
    Column("status", String(16), nullable=False),  # open | done
    Column("workers", Integer, nullable=False),
    Column("chunk", Integer, nullable=False),  # items a worker claims at once
    Column("lease_us", BigInteger, nullable=False),
    Column("items", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger, nullable=True),
    Index("ix_invoice_runs_open", "environment", "status"),
)

invoice_run_items = Table(
    "invoice_run_items",
    metadata,
    Column("run_id", Integer, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("customer", String(256), nullable=True),  # NULL: drafts of subscriptions gone from the catalog
    Column("subscriptions", Text, nullable=False),  # JSON list of subscription references
    Column("status", String(16), nullable=False),  # pending | claimed | done | failed
    Column("worker", String(128), nullable=True),
    Column("lease_until", BigInteger, nullable=True),  # µs
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("error", Text, nullable=True),
    Column("finished_at", BigInteger, nullable=True),
    Index("ix_invoice_run_items_status", "run_id", "status", "position"),
)

invoice_run_reports = Table(
    "invoice_run_reports",
    metadata,
    Column("run_id", Integer, primary_key=True),
    Column("batch", String(64), primary_key=True),
    Column("worker", String(128), nullable=False),
    Column("report", Text, nullable=False),  # the batch's RunReport as JSON
    Column("created_at", BigInteger, nullable=False),
)

# Continuous roll-ups (docs/rollups.md): one row per roll-up definition (a meter, or a charge priced
# per dimension, as its events are aggregated), and exact partial aggregates per hour.
rollup_meters = Table(
    "rollup_meters",
    metadata,
    Column("environment", String(16), primary_key=True),
    Column("key", String(64), primary_key=True),  # digest of `definition`
    Column("definition", Text, nullable=False),  # canonical JSON: streams, aggregation, field, filters, split
    # building: kept up to date at ingest but not read yet; ready: the invoice run reads it
    Column("state", String(16), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # a build's progress: customers done of those it has to go through
    Column("done", BigInteger, nullable=False, server_default="0"),
    Column("total", BigInteger, nullable=False, server_default="0"),
)

# (environment, meter key, customer, hour, subscription named or '', dimension or '') -> the
# partial aggregates of the events of that hour: enough to merge hours exactly for every aggregation.
usage_rollups = Table(
    "usage_rollups",
    metadata,
    Column("environment", String(16), primary_key=True),
    Column("meter_key", String(64), primary_key=True),
    Column("customer", String(256), primary_key=True),
    Column("hour", BigInteger, primary_key=True),  # µs since epoch, UTC, a multiple of one hour
    Column("subscription", String(256), primary_key=True),  # '' when the events name none
    Column("dimension", String(2048), primary_key=True),  # '' unless per dimension: [filter, [group]]
    Column("events", BigInteger, nullable=False),
    Column("total", ExactDecimal, nullable=True),  # sum of the values
    Column("low", ExactDecimal, nullable=True),
    Column("high", ExactDecimal, nullable=True),
    Column("moment", ExactDecimal, nullable=True),  # sum of value × µs (weighted_sum's integral)
    Column("latest_ts", BigInteger, nullable=True),
    Column("latest_id", String(256), nullable=True),
    Column("latest_value", ExactDecimal, nullable=True),
    sqlite_with_rowid=False,  # one b-tree, the key's: the ingest hook's upserts touch one index, not two
)

# unique_count: the distinct values (their canonical JSON) of each roll-up row, exactly
rollup_values = Table(
    "rollup_values",
    metadata,
    Column("environment", String(16), primary_key=True),
    Column("meter_key", String(64), primary_key=True),
    Column("customer", String(256), primary_key=True),
    Column("hour", BigInteger, primary_key=True),
    Column("subscription", String(256), primary_key=True),
    Column("dimension", String(2048), primary_key=True),
    Column("value_key", String(2048), primary_key=True),
    sqlite_with_rowid=False,
)
