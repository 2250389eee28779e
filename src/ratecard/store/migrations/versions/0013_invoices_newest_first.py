"""Indexes of invoices newest first, of an environment and of one of its customers: the console's
invoice list reads its first page without sorting every invoice of the environment, and its
customer list (open drafts, last invoice) and customer page (the customer's invoices) read a few
customers' invoices without scanning them all.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_invoices_recent", "invoices", ["environment", "id"])
    op.create_index("ix_invoices_customer", "invoices", ["environment", "customer", "id"])


def downgrade() -> None:
    op.drop_index("ix_invoices_customer", table_name="invoices")
    op.drop_index("ix_invoices_recent", table_name="invoices")
