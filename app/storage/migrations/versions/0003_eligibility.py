"""Who may vote: each poll's eligibility mode and proof-of-work difficulty, and invitations.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Polls made before this revision took every vote: they stay `anyone`.
    op.add_column("polls", sa.Column("eligibility", sa.String(16), nullable=False, server_default="anyone"))
    op.add_column("polls", sa.Column("difficulty", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "invitations",
        sa.Column("poll_id", sa.String(64), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("public_key", sa.LargeBinary(32), nullable=True),
        sa.Column("admitted_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("poll_id", "code_hash", name="pk_invitations"),
        sa.ForeignKeyConstraint(["poll_id"], ["polls.id"], name="fk_invitations_poll_id", ondelete="CASCADE"),
    )
    op.create_index("ix_invitations_poll_id_public_key", "invitations", ["poll_id", "public_key"])


def downgrade() -> None:
    op.drop_index("ix_invitations_poll_id_public_key", table_name="invitations")
    op.drop_table("invitations")
    with op.batch_alter_table("polls") as batch:
        batch.drop_column("difficulty")
        batch.drop_column("eligibility")
