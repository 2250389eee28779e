"""The lines of a charge priced per dimension say which filter and which group they price. Lines
written before, and every other line, have neither (NULL).

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoice_lines", sa.Column("filter_code", sa.String(100), nullable=True))
    op.add_column("invoice_lines", sa.Column("group_values", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invoice_lines") as batch:
        batch.drop_column("group_values")
        batch.drop_column("filter_code")
