"""Payments (the outbox of Stripe charges and refunds, bank transfers marked paid) and the log of
invoice emails.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("invoice_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("customer", sa.String(256), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("stripe_customer_id", sa.String(255), nullable=True),
        sa.Column("refunds", sa.Integer, nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("attempt_started_at", sa.BigInteger, nullable=True),
        sa.Column("intent_id", sa.String(255), nullable=True),
        sa.Column("payment_method", sa.String(255), nullable=True),
        sa.Column("action_url", sa.Text, nullable=True),
        sa.Column("failure", sa.Text, nullable=True),
        sa.Column("first_failed_at", sa.BigInteger, nullable=True),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=True),
        sa.Column("reference", sa.String(255), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("environment", "invoice_id", "kind", name="uq_payments_invoice"),
        sa.Index("ix_payments_due", "environment", "status", "next_attempt_at"),
        sa.Index("ix_payments_intent", "environment", "intent_id"),
    )
    op.create_table(
        "invoice_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("invoice_id", sa.Integer, nullable=False),
        sa.Column("recipient", sa.String(320), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("sent_at", sa.BigInteger, nullable=True),
        sa.Index("ix_invoice_deliveries_invoice", "environment", "invoice_id"),
        sa.Index("ix_invoice_deliveries_status", "environment", "status"),
    )


def downgrade() -> None:
    op.drop_table("invoice_deliveries")
    op.drop_table("payments")
