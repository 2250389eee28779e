"""Invoice runs shared by several processes: a run row, one item per customer to bill (claimed with a
lease, taken over when the lease runs out), and each claimed batch's report.

Revision ID: 0025
Revises: 0024
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoice_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("until", sa.String(40), nullable=False),
        sa.Column("catalog_version", sa.Integer, nullable=False),
        sa.Column("now_us", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("workers", sa.Integer, nullable=False),
        sa.Column("chunk", sa.Integer, nullable=False),
        sa.Column("lease_us", sa.BigInteger, nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_invoice_runs_open", "invoice_runs", ["environment", "status"])
    op.create_table(
        "invoice_run_items",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("customer", sa.String(256), nullable=True),
        sa.Column("subscriptions", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("worker", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.BigInteger, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_invoice_run_items_status", "invoice_run_items", ["run_id", "status", "position"])
    op.create_table(
        "invoice_run_reports",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("batch", sa.String(64), primary_key=True),
        sa.Column("worker", sa.String(128), nullable=False),
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("invoice_run_reports")
    op.drop_index("ix_invoice_run_items_status", table_name="invoice_run_items")
    op.drop_table("invoice_run_items")
    op.drop_index("ix_invoice_runs_open", table_name="invoice_runs")
    op.drop_table("invoice_runs")
