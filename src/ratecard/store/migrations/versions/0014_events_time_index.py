"""Events by time: the console's events explorer lists the newest events of an environment (or of
a time range) a page at a time; without this index every page would sort all of them.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_time", "events", ["environment", "ts"])


def downgrade() -> None:
    op.drop_index("ix_events_time", table_name="events")
