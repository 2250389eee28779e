"""Continuous roll-ups: roll-up definitions, hourly partial aggregates, unique values.

Revision ID: 0024
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

from ratecard.store.types import ExactDecimal

revision = "0024"
down_revision = "0021"
branch_labels = None
depends_on = None

_KEY = ("environment", "meter_key", "customer", "hour", "subscription", "dimension")


def _key_columns() -> list[sa.Column]:
    return [
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("meter_key", sa.String(64), nullable=False),
        sa.Column("customer", sa.String(256), nullable=False),
        sa.Column("hour", sa.BigInteger, nullable=False),
        sa.Column("subscription", sa.String(256), nullable=False),
        sa.Column("dimension", sa.String(2048), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "rollup_meters",
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("done", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("total", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("environment", "key"),
    )
    op.create_table(
        "usage_rollups",
        *_key_columns(),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("total", ExactDecimal, nullable=True),
        sa.Column("low", ExactDecimal, nullable=True),
        sa.Column("high", ExactDecimal, nullable=True),
        sa.Column("moment", ExactDecimal, nullable=True),
        sa.Column("latest_ts", sa.BigInteger, nullable=True),
        sa.Column("latest_id", sa.String(256), nullable=True),
        sa.Column("latest_value", ExactDecimal, nullable=True),
        sa.PrimaryKeyConstraint(*_KEY),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "rollup_values",
        *_key_columns(),
        sa.Column("value_key", sa.String(2048), nullable=False),
        sa.PrimaryKeyConstraint(*_KEY, "value_key"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("rollup_values")
    op.drop_table("usage_rollups")
    op.drop_table("rollup_meters")
