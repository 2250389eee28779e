"""API keys, idempotency keys, duplicate submissions, soft-deleted events.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from ratecard.store.types import JsonText

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("deleted_at", sa.BigInteger, nullable=True))
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("environment", sa.String(16), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response_body", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_idempotency_created", "idempotency_keys", ["created_at"])
    op.create_table(
        "event_duplicates",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("id", sa.String(256), nullable=False),
        sa.Column("customer", sa.String(256), nullable=False),
        sa.Column("meter", sa.String(256), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("properties", JsonText, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_event_duplicates_id", "event_duplicates", ["environment", "id"])


def downgrade() -> None:
    op.drop_table("event_duplicates")
    op.drop_table("idempotency_keys")
    op.drop_table("api_keys")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("deleted_at")
