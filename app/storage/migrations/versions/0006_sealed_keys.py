"""A fleet's signing keys, sealed under a key-encryption key that only the nodes hold.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sealed_keys",
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("created_ns", sa.BigInteger(), nullable=False),
        sa.Column("active_from", sa.BigInteger(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("purpose", "created_ns", name="pk_sealed_keys"),
    )


def downgrade() -> None:
    op.drop_table("sealed_keys")
