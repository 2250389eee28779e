"""Events by time: the console's events explorer lists the newest events of an environment (or of
a time range) a page at a time; without this index every page would sort all of them. The
unbilled ones (unmatched, rejected on reprocessing, late: a few in a hundred) get a partial index
of their own, so a page of them deep in the list does not walk every billable event before it.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_time", "events", ["environment", "ts"])
    op.create_index("ix_events_unbilled", "events", ["environment", "late", "ts"],
                    sqlite_where=sa.text("status <> 'matched' OR late = 1"),
                    postgresql_where=sa.text("status <> 'matched' OR late = true"))


def downgrade() -> None:
    op.drop_index("ix_events_unbilled", table_name="events")
    op.drop_index("ix_events_time", table_name="events")
