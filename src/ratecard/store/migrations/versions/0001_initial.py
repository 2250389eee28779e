"""Initial schema: catalog versions, events, invoices, lines, invoice number sequences.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from ratecard.store.types import ExactDecimal, JsonText

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_index("ix_catalog_versions_env", "catalog_versions", ["environment", "version"])
    op.create_table(
        "events",
        sa.Column("environment", sa.String(16), primary_key=True),
        sa.Column("id", sa.String(256), primary_key=True),
        sa.Column("customer", sa.String(256), nullable=False),
        sa.Column("meter", sa.String(256), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("properties", JsonText, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("late", sa.Boolean, nullable=False),
    )
    op.create_index("ix_events_usage", "events", ["environment", "customer", "meter", "ts"])
    op.create_index("ix_events_status", "events", ["environment", "status"])
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("number", sa.String(64), nullable=True),
        sa.Column("customer", sa.String(256), nullable=False),
        sa.Column("subscription", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("boundary_ts", sa.BigInteger, nullable=False),
        sa.Column("issue_date", sa.String(10), nullable=False),
        sa.Column("subtotal", ExactDecimal, nullable=False),
        sa.Column("tax", ExactDecimal, nullable=False),
        sa.Column("total", ExactDecimal, nullable=False),
        sa.Column("tax_rate", ExactDecimal, nullable=False),
        sa.Column("catalog_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("finalized_at", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("environment", "subscription", "boundary_ts", name="uq_invoices_cut"),
        sa.UniqueConstraint("environment", "number", name="uq_invoices_number"),
    )
    op.create_index("ix_invoices_status", "invoices", ["environment", "status"])
    op.create_table(
        "invoice_lines",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("invoice_id", sa.Integer, sa.ForeignKey("invoices.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("code", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("service_start", sa.String(10), nullable=False),
        sa.Column("service_end", sa.String(10), nullable=False),
        sa.Column("service_start_ts", sa.BigInteger, nullable=False),
        sa.Column("service_end_ts", sa.BigInteger, nullable=False),
        sa.Column("quantity", ExactDecimal, nullable=False),
        sa.Column("unit_amount", ExactDecimal, nullable=False),
        sa.Column("amount", ExactDecimal, nullable=False),
    )
    op.create_index("ix_invoice_lines_invoice", "invoice_lines", ["invoice_id"])
    op.create_table(
        "invoice_sequences",
        sa.Column("environment", sa.String(16), primary_key=True),
        sa.Column("prefix", sa.String(32), primary_key=True),
        sa.Column("last_number", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("invoice_sequences", "invoice_lines", "invoices", "events", "catalog_versions"):
        op.drop_table(table)
