"""The latest reconciliation of an uploaded legacy export, per environment, with its differences.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

from ratecard.store.types import ExactDecimal

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconciliations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(254), nullable=False),
        sa.Column("legacy_file", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Index("ix_reconciliations_environment", "environment", "id"),
    )
    op.create_table(
        "reconciliation_differences",
        sa.Column("reconciliation_id", sa.Integer, primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("cause", sa.String(32), nullable=False),
        sa.Column("customer", sa.Text, nullable=False),
        sa.Column("code", sa.Text, nullable=False),
        sa.Column("service_start", sa.String(10), nullable=False),
        sa.Column("field", sa.String(16), nullable=False),
        sa.Column("ratecard", ExactDecimal, nullable=True),
        sa.Column("legacy", ExactDecimal, nullable=True),
        sa.Column("delta", ExactDecimal, nullable=True),
        sa.Column("money_at_stake", ExactDecimal, nullable=False),
        sa.Column("currency", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Index("ix_reconciliation_differences_cause", "reconciliation_id", "cause", "position"),
    )


def downgrade() -> None:
    op.drop_table("reconciliation_differences")
    op.drop_table("reconciliations")
