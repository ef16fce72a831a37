"""Polls, options and votes.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "polls",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("closes_at", sa.BigInteger, nullable=True),
        sa.Column("late_grace_seconds", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("vote_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_polls"),
    )
    op.create_table(
        "options",
        sa.Column("poll_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("votes", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("poll_id", "id", name="pk_options"),
        sa.ForeignKeyConstraint(["poll_id"], ["polls.id"], name="fk_options_poll_id", ondelete="CASCADE"),
    )
    op.create_table(
        "votes",
        sa.Column("idempotency_key", sa.String(36), nullable=False),
        sa.Column("poll_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("vote_id", sa.String(36), nullable=False),
        sa.Column("option_id", sa.String(64), nullable=False),
        sa.Column("public_key", sa.LargeBinary(32), nullable=False),
        sa.Column("signature", sa.LargeBinary(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("accepted_at", sa.BigInteger, nullable=False),
        sa.Column("request_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("receipt", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key", name="pk_votes"),
        sa.ForeignKeyConstraint(["poll_id", "option_id"], ["options.poll_id", "options.id"], name="fk_votes_poll_id"),
        sa.UniqueConstraint("poll_id", "public_key", name="uq_votes_poll_id_public_key"),
        sa.UniqueConstraint("poll_id", "seq", name="uq_votes_poll_id_seq"),
    )


def downgrade() -> None:
    op.drop_table("votes")
    op.drop_table("options")
    op.drop_table("polls")
