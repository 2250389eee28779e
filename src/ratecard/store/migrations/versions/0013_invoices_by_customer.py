"""An index of invoices by customer: the console's customer list (open drafts, last invoice) and
customer page (the customer's invoices, newest first) read a few customers' invoices without
scanning every invoice of the environment.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_invoices_customer", "invoices", ["environment", "customer", "id"])


def downgrade() -> None:
    op.drop_index("ix_invoices_customer", table_name="invoices")
