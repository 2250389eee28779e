"""Drafts are numbered per environment (sandbox's first draft is DRAFT-1 too).

Until now a draft was shown as DRAFT-<its row id>, a key shared by every environment, so an
invoice run in sandbox shifted live's draft numbers and told sandbox how many invoices live has.
Every existing invoice gets a draft number 1, 2, 3... within its environment in the order it was
created (final ones too, so a reference written down before finalization still finds its invoice),
and each environment's counter continues after its highest number.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# UPDATE … FROM (PostgreSQL, SQLite 3.33+): the numbering is computed once, not once per row
NUMBERED = ("SELECT id, row_number() OVER (PARTITION BY environment ORDER BY id) AS draft_number "
            "FROM invoices")


def upgrade() -> None:
    op.add_column("invoices", sa.Column("draft_number", sa.Integer, nullable=True))
    op.execute(f"UPDATE invoices SET draft_number = numbered.draft_number FROM ({NUMBERED}) AS numbered "
               "WHERE numbered.id = invoices.id")
    op.create_index("uq_invoices_draft_number", "invoices", ["environment", "draft_number"], unique=True)
    op.create_table(
        "draft_sequences",
        sa.Column("environment", sa.String(16), primary_key=True),
        sa.Column("last_number", sa.Integer, nullable=False),
    )
    op.execute("INSERT INTO draft_sequences (environment, last_number) "
               "SELECT environment, MAX(draft_number) FROM invoices GROUP BY environment")


def downgrade() -> None:
    # back to DRAFT-<id>: the numbers are dropped, the invoices keep everything else
    op.drop_table("draft_sequences")
    op.drop_index("uq_invoices_draft_number", table_name="invoices")
    op.drop_column("invoices", "draft_number")
