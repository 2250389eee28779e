"""Billing modes (shadow/live), cohorts, cutover, parallel runs; invoices gain mode, kind,
revision and corrects so a cut can hold a shadow invoice, a live one, and corrections.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("mode", sa.String(8), nullable=False, server_default="live"))
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="invoice"))
        batch.add_column(sa.Column("revision", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("corrects", sa.Integer, nullable=True))
        batch.drop_constraint("uq_invoices_cut", type_="unique")
        batch.create_unique_constraint(
            "uq_invoices_cut", ["environment", "subscription", "boundary_ts", "mode", "kind", "revision"]
        )
    op.create_table(
        "cohorts",
        sa.Column("environment", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("promoted_at", sa.BigInteger, nullable=True),
        sa.Column("rolled_back_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "customer_modes",
        sa.Column("environment", sa.String(16), primary_key=True),
        sa.Column("customer", sa.String(256), primary_key=True),
        sa.Column("cohort", sa.String(200), nullable=True),
        sa.Column("live_from", sa.BigInteger, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "cutovers",
        sa.Column("environment", sa.String(16), primary_key=True),
        sa.Column("live_from", sa.BigInteger, nullable=False),
        sa.Column("date", sa.String(32), nullable=False),
        sa.Column("applied_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "parallel_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("cohort", sa.String(200), nullable=False),
        sa.Column("cycle", sa.String(32), nullable=False),
        sa.Column("legacy_file", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("lines_compared", sa.Integer, nullable=False),
        sa.Column("differences", sa.Integer, nullable=False),
        sa.Column("clean", sa.Boolean, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("report", sa.Text, nullable=False),
    )
    op.create_index("ix_parallel_runs_cohort", "parallel_runs", ["environment", "cohort", "id"])


def downgrade() -> None:
    op.drop_index("ix_parallel_runs_cohort", "parallel_runs")
    op.drop_table("parallel_runs")
    op.drop_table("cutovers")
    op.drop_table("customer_modes")
    op.drop_table("cohorts")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_constraint("uq_invoices_cut", type_="unique")
        batch.create_unique_constraint("uq_invoices_cut", ["environment", "subscription", "boundary_ts"])
        for column in ("corrects", "revision", "kind", "mode"):
            batch.drop_column(column)
