"""Events remember the subscription they name, so each is billed by that subscription only.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("subscription", sa.String(256), nullable=True))


def downgrade() -> None:
    op.drop_column("events", "subscription")
