"""Monthly partitions of the events table on PostgreSQL (SQLite keeps one table: nothing here).

The table is rebuilt as `PARTITION BY RANGE (ts)` in this one transaction: the old table is
renamed aside, the partitioned one created with the same columns and indexes, a partition made
for every month that holds events (up to three months ahead of now) and for the current month
and the three after it, plus a default partition for whatever falls outside (a far-future
timestamp, a month not created yet); the rows are copied over and the old table dropped.

A unique index of a partitioned table must contain the partition key, so (environment, id) can
no longer be the primary key: the key becomes (environment, id, ts), and the rule "an event id
is stored once" moves to `event_ids`, a plain table of (environment, id) claimed by a trigger
before each insert (an id already claimed: the row is skipped, as ON CONFLICT DO NOTHING did)
and released when an event row is deleted (a replacing backfill puts the same ids back).
The bulk COPY path claims its ids itself, a whole batch at once, and tells the trigger so
(store/events.py).

Revision ID: 0026
Revises: 0025
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

AHEAD = 3  # months made ahead of the current one
INDEXES = {
    "ix_events_usage": "(environment, customer, meter, ts)",
    "ix_events_status": "(environment, status)",
    "ix_events_time": "(environment, ts)",
    "ix_events_unbilled": "(environment, late, ts) WHERE status <> 'matched' OR late = true",
}
COLUMNS = "environment, id, customer, meter, ts, properties, received_at, status, late, deleted_at, subscription"

# The id guard. The bulk path sets ratecard.event_ids_claimed for the statements whose ids it
# has claimed already (one COPY into event_ids for the whole batch is ~5x cheaper than a trigger
# call per row); every other insert, whatever the code path, goes through the trigger.
CLAIM_FUNCTION = """
CREATE FUNCTION events_claim_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_ids (environment, id) VALUES (NEW.environment, NEW.id) ON CONFLICT DO NOTHING;
    IF FOUND THEN
        RETURN NEW;
    END IF;
    RETURN NULL;  -- the id is stored already, maybe in another month: this row is not stored
END $$
"""
RELEASE_FUNCTION = """
CREATE FUNCTION events_release_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM event_ids WHERE environment = OLD.environment AND id = OLD.id;
    RETURN NULL;
END $$
"""
TRIGGERS = (
    "CREATE TRIGGER events_claim_id BEFORE INSERT ON events FOR EACH ROW "
    "WHEN (current_setting('ratecard.event_ids_claimed', true) IS DISTINCT FROM 'on') "
    "EXECUTE FUNCTION events_claim_id()",
    "CREATE TRIGGER events_release_id AFTER DELETE ON events FOR EACH ROW EXECUTE FUNCTION events_release_id()",
)


def _micros(year: int, month: int) -> int:
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp()) * 1_000_000


def _next(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def _months_to_create(bind) -> list[tuple[int, int]]:  # noqa: ANN001
    from ratecard.clock import now

    today = now().astimezone(UTC)
    current = (today.year, today.month)
    wanted = {current}
    for _ in range(AHEAD):
        current = _next(*current)
        wanted.add(current)
    horizon = current  # the last month made ahead; later events stay in the default partition
    # only sane instants reach to_timestamp (a stray timestamp far out stays in the default partition)
    held = bind.execute(sa.text(
        "SELECT DISTINCT extract(year FROM moment)::int, extract(month FROM moment)::int FROM "
        "(SELECT to_timestamp(ts / 1000000.0) AT TIME ZONE 'UTC' AS moment FROM events_unpartitioned "
        "WHERE ts >= 0 AND ts < :until) AS t"), {"until": _micros(*_next(*horizon))})
    wanted.update((year, month) for year, month in held)
    return sorted(wanted)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return

    def run(sql: str) -> None:
        bind.execute(sa.text(sql))

    run("ALTER TABLE events RENAME TO events_unpartitioned")
    run("ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_pkey TO events_unpartitioned_pkey")
    for index in INDEXES:
        run(f"ALTER INDEX {index} RENAME TO {index}_unpartitioned")
    run("CREATE TABLE events (LIKE events_unpartitioned INCLUDING DEFAULTS) PARTITION BY RANGE (ts)")
    run("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (environment, id, ts)")
    for index, definition in INDEXES.items():
        run(f"CREATE INDEX {index} ON events {definition}")
    run("CREATE TABLE event_ids (environment VARCHAR(16) NOT NULL, id VARCHAR(256) NOT NULL, "
        "CONSTRAINT event_ids_pkey PRIMARY KEY (environment, id))")
    for year, month in _months_to_create(bind):
        start, end = _micros(year, month), _micros(*_next(year, month))
        run(f"CREATE TABLE events_{year:04d}_{month:02d} PARTITION OF events FOR VALUES FROM ({start}) TO ({end})")
    run("CREATE TABLE events_default PARTITION OF events DEFAULT")
    run(f"INSERT INTO events ({COLUMNS}) SELECT {COLUMNS} FROM events_unpartitioned")
    run("INSERT INTO event_ids (environment, id) SELECT environment, id FROM events_unpartitioned")
    run("DROP TABLE events_unpartitioned")
    run(CLAIM_FUNCTION)
    run(RELEASE_FUNCTION)
    for trigger in TRIGGERS:
        run(trigger)
    run("ANALYZE events")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return

    def run(sql: str) -> None:
        bind.execute(sa.text(sql))

    run("CREATE TABLE events_plain (LIKE events INCLUDING DEFAULTS)")
    run(f"INSERT INTO events_plain ({COLUMNS}) SELECT {COLUMNS} FROM events")
    run("DROP TABLE events")  # its partitions with it; detached archives stay as they are
    run("DROP TABLE event_ids")
    run("DROP FUNCTION events_claim_id()")
    run("DROP FUNCTION events_release_id()")
    run("ALTER TABLE events_plain RENAME TO events")
    run("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (environment, id)")
    for index, definition in INDEXES.items():
        run(f"CREATE INDEX {index} ON events {definition}")
