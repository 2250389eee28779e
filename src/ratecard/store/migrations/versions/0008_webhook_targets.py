"""Webhook endpoints: who holds the delivery lease, and whether private targets are allowed.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.add_column(sa.Column("lease_holder", sa.String(32), nullable=True))
        # endpoints added before the target check get false: a private target among them is refused
        # at delivery from now on (the delivery log says why) until re-added with --allow-private
        batch.add_column(sa.Column("allow_private", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("allow_private")
        batch.drop_column("lease_holder")
