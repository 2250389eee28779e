"""Backfills (time-scoped, reversible historical usage) and their events.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from ratecard.store.types import JsonText

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _event_columns() -> list[sa.Column]:
    return [
        sa.Column("backfill_id", sa.String(32), primary_key=True),
        sa.Column("id", sa.String(256), primary_key=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("customer", sa.String(256), nullable=False),
        sa.Column("meter", sa.String(256), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("properties", JsonText, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "backfills",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("start_ts", sa.BigInteger, nullable=False),
        sa.Column("end_ts", sa.BigInteger, nullable=False),
        sa.Column("customer", sa.String(256), nullable=True),
        sa.Column("replace", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("closed_at", sa.BigInteger, nullable=True),
        sa.Column("reverted_at", sa.BigInteger, nullable=True),
        sa.Column("result", sa.Text, nullable=True),
    )
    op.create_index("ix_backfills_env_status", "backfills", ["environment", "status"])
    op.create_table("backfill_events", *_event_columns(),
                    sa.Column("applied", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table("backfill_replaced_events", *_event_columns(), sa.Column("late", sa.Boolean, nullable=False))


def downgrade() -> None:
    op.drop_table("backfill_replaced_events")
    op.drop_table("backfill_events")
    op.drop_index("ix_backfills_env_status", "backfills")
    op.drop_table("backfills")
