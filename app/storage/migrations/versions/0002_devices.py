"""Device keys registered while a poll is open, for late delivery.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("poll_id", sa.String(64), nullable=False),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("registered_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("poll_id", "public_key", name="pk_devices"),
        sa.ForeignKeyConstraint(["poll_id"], ["polls.id"], name="fk_devices_poll_id", ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("devices")
