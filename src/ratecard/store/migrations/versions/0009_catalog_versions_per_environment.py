"""Catalog versions are numbered per environment (sandbox's first catalog is version 1 too).

Until now the version was the table's global key, so an apply in one environment shifted the other's
numbers. Existing versions are renumbered 1, 2, 3... within their environment in the order they were
applied, and the invoices that name a catalog version follow. A database that only ever used one
environment keeps every number.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

RENUMBERED = ("SELECT version AS old, row_number() OVER (PARTITION BY environment ORDER BY version) AS new "
              "FROM catalog_versions")


def upgrade() -> None:
    op.execute(f"UPDATE invoices SET catalog_version = (SELECT r.new FROM ({RENUMBERED}) r "
               "WHERE r.old = invoices.catalog_version) "
               "WHERE catalog_version IN (SELECT version FROM catalog_versions)")
    op.create_table(
        "catalog_versions_new",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.UniqueConstraint("environment", "version", name="uq_catalog_versions_env"),
    )
    op.execute("INSERT INTO catalog_versions_new (environment, version, created_at, digest, document) "
               "SELECT environment, row_number() OVER (PARTITION BY environment ORDER BY version), "
               "created_at, digest, document FROM catalog_versions ORDER BY version")
    op.drop_index("ix_catalog_versions_env", table_name="catalog_versions")
    op.drop_table("catalog_versions")
    op.rename_table("catalog_versions_new", "catalog_versions")


def downgrade() -> None:
    # back to one global sequence: versions renumbered in apply order (invoices keep the numbers they name)
    op.create_table(
        "catalog_versions_old",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.execute("INSERT INTO catalog_versions_old (environment, created_at, digest, document) "
               "SELECT environment, created_at, digest, document FROM catalog_versions ORDER BY id")
    op.drop_table("catalog_versions")
    op.rename_table("catalog_versions_old", "catalog_versions")
    op.create_index("ix_catalog_versions_env", "catalog_versions", ["environment", "version"])
