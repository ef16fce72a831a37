"""Organisers: each poll's manage capability (its SHA-256 only) and who may see its results.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch_alter_table: SQLite adds the columns in place; PostgreSQL runs plain ALTER TABLE.
    with op.batch_alter_table("polls") as batch:
        # Polls made before this revision have no manage link: only the admin token manages them.
        batch.add_column(sa.Column("manage_hash", sa.LargeBinary(32), nullable=True))
        batch.add_column(sa.Column("results_visibility", sa.String(16), nullable=False, server_default="always"))


def downgrade() -> None:
    with op.batch_alter_table("polls") as batch:
        batch.drop_column("results_visibility")
        batch.drop_column("manage_hash")
