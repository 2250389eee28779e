"""Guard the months archived before this revision (PostgreSQL; SQLite has no partitions: nothing here).

Since this revision `ratecard events partitions detach` adds to the default partition a check
constraint per archived month, events_default_archived_YYYY_MM (ts outside the month): no event
of an archived month can be stored any more (store/partitions.py), and the validators refuse
them as `archived_period`, reading the guards with every catalog fingerprint. The months detached
before get theirs here. One whose late events were already stored in the default partition gets
it NOT VALID: it refuses new rows, keeps those (move them into the archive before re-attaching it,
docs/scaling.md).

Revision ID: 0027
Revises: 0026
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

GUARD_PREFIX = "events_default_archived_"
ARCHIVES = (
    "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' "
    "AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = to_regclass('events')) "
    "AND c.relname ~ '^events_archive_[0-9]{4}_[0-9]{2}$' "
    "AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid) ORDER BY c.relname"
)


def _micros(year: int, month: int) -> int:
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp()) * 1_000_000


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or bind.execute(sa.text("SELECT to_regclass('events_default')")).scalar() is None:
        return
    for name in bind.execute(sa.text(ARCHIVES)).scalars().all():
        suffix = name[-7:]  # YYYY_MM
        year, month = int(suffix[:4]), int(suffix[5:])
        if not (1970 <= year <= 9998 and 1 <= month <= 12):
            continue  # a look-alike name of no month (an operator's own table): no archive
        start, end = _micros(year, month), _micros(year + (month == 12), month % 12 + 1)
        guard = GUARD_PREFIX + suffix
        if bind.execute(sa.text("SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = "
                                "to_regclass('events_default') AND conname = :name)"), {"name": guard}).scalar():
            continue
        held = bind.execute(sa.text("SELECT EXISTS (SELECT 1 FROM events_default WHERE ts >= :start AND ts < :end)"),
                            {"start": start, "end": end}).scalar()
        op.execute(f"ALTER TABLE events_default ADD CONSTRAINT {guard} CHECK (ts < {start} OR ts >= {end})"
                   + (" NOT VALID" if held else ""))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or bind.execute(sa.text("SELECT to_regclass('events_default')")).scalar() is None:
        return
    names = bind.execute(sa.text(
        "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass('events_default') "
        f"AND left(conname, {len(GUARD_PREFIX)}) = '{GUARD_PREFIX}'")).scalars().all()
    for name in names:
        op.execute(f"ALTER TABLE events_default DROP CONSTRAINT {name}")
