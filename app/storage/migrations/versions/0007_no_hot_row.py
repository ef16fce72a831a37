"""No row that every vote of a poll updates: counts in sharded rows, and on PostgreSQL each poll's
seqs from a sequence of its own (docs/capacity.md, "What breaks first").

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The sequence's name is app/storage/poll_locks.py's `sequence_of`, computed in SQL: any way a poll row
# comes to exist (the service, a restore, a test) gets its sequence with it.
SEQUENCE_NAME_SQL = "'vote_seq_' || substr(encode(sha256(convert_to({poll_id}, 'UTF8')), 'hex'), 1, 32)"


def upgrade() -> None:
    op.create_table(
        "option_tallies",
        sa.Column("poll_id", sa.String(64), nullable=False),
        sa.Column("option_id", sa.String(64), nullable=False),
        sa.Column("shard", sa.Integer, nullable=False),
        sa.Column("votes", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("poll_id", "option_id", "shard", name="pk_option_tallies"),
    )
    # A foreign key to an option makes every vote share-lock the option's row: on PostgreSQL
    # concurrent transactions of one poll then build a multixact on it for each vote.
    with op.batch_alter_table("votes") as batch:
        batch.drop_constraint("fk_votes_poll_id", type_="foreignkey")
    op.execute(
        "INSERT INTO option_tallies (poll_id, option_id, shard, votes) "
        "SELECT poll_id, id, 0, votes FROM options WHERE votes > 0"
    )
    # In place on both (SQLite 3.35+): batch mode would copy and drop the table, and dropping it
    # deletes the counts just copied, through their foreign key's ON DELETE CASCADE.
    op.execute("ALTER TABLE options DROP COLUMN votes")
    op.create_table(
        "ballot_log_voids",
        sa.Column("poll_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("poll_id", "seq", name="pk_ballot_log_voids"),
        sa.ForeignKeyConstraint(["poll_id"], ["polls.id"], name="fk_ballot_log_voids_poll_id", ondelete="CASCADE"),
    )
    if op.get_bind().dialect.name == "postgresql":
        _sequences_per_poll()


def _sequences_per_poll() -> None:
    new_name = SEQUENCE_NAME_SQL.format(poll_id="NEW.id")
    old_name = SEQUENCE_NAME_SQL.format(poll_id="OLD.id")
    op.execute(
        "CREATE FUNCTION vote_seq_create() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %I', {new_name}); RETURN NEW; END $$"
    )
    op.execute(
        "CREATE FUNCTION vote_seq_drop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"EXECUTE format('DROP SEQUENCE IF EXISTS %I', {old_name}); RETURN OLD; END $$"
    )
    for event, function in (("INSERT", "vote_seq_create"), ("DELETE", "vote_seq_drop")):
        op.execute(f"CREATE TRIGGER polls_{function} AFTER {event} ON polls FOR EACH ROW EXECUTE FUNCTION {function}()")
    # The polls that exist go on from the seqs they handed out.
    op.execute(
        "DO $$ DECLARE poll record; BEGIN FOR poll IN SELECT id, vote_count FROM polls LOOP "
        f"EXECUTE format('CREATE SEQUENCE %I START WITH %s', {SEQUENCE_NAME_SQL.format(poll_id='poll.id')}, "
        "poll.vote_count + 1); END LOOP; END $$"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE polls SET vote_count = greatest("
            "(SELECT coalesce(max(seq), 0) FROM votes WHERE votes.poll_id = polls.id), "
            "(SELECT coalesce(max(seq), 0) FROM ballot_log_voids v WHERE v.poll_id = polls.id))"
        )
        op.execute(
            "DO $$ DECLARE poll record; BEGIN FOR poll IN SELECT id FROM polls LOOP "
            f"EXECUTE format('DROP SEQUENCE IF EXISTS %I', {SEQUENCE_NAME_SQL.format(poll_id='poll.id')}); "
            "END LOOP; END $$"
        )
        op.execute("DROP TRIGGER polls_vote_seq_drop ON polls")
        op.execute("DROP TRIGGER polls_vote_seq_create ON polls")
        op.execute("DROP FUNCTION vote_seq_drop()")
        op.execute("DROP FUNCTION vote_seq_create()")
    op.drop_table("ballot_log_voids")
    with op.batch_alter_table("options") as batch:
        batch.add_column(sa.Column("votes", sa.BigInteger, nullable=False, server_default="0"))
    op.execute(
        "UPDATE options SET votes = (SELECT coalesce(sum(t.votes), 0) FROM option_tallies t "
        "WHERE t.poll_id = options.poll_id AND t.option_id = options.id)"
    )
    op.drop_table("option_tallies")
    with op.batch_alter_table("votes") as batch:
        batch.create_foreign_key("fk_votes_poll_id", "options", ["poll_id", "option_id"], ["poll_id", "id"])
