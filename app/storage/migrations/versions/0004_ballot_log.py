"""The public ballot log's tiles and latest checkpoint per poll.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ballot_log_tiles",
        sa.Column("poll_id", sa.String(64), nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("tile_index", sa.BigInteger, nullable=False),
        sa.Column("hashes", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("poll_id", "level", "tile_index", name="pk_ballot_log_tiles"),
        sa.ForeignKeyConstraint(["poll_id"], ["polls.id"], name="fk_ballot_log_tiles_poll_id", ondelete="CASCADE"),
    )
    op.create_table(
        "ballot_log_checkpoints",
        sa.Column("poll_id", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.LargeBinary, nullable=False),
        sa.Column("made_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("poll_id", name="pk_ballot_log_checkpoints"),
        sa.ForeignKeyConstraint(
            ["poll_id"], ["polls.id"], name="fk_ballot_log_checkpoints_poll_id", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("ballot_log_checkpoints")
    op.drop_table("ballot_log_tiles")
