"""The relational schema, shared by SQLite and PostgreSQL. Alembic migrations create it."""

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    }
)

polls = Table(
    "polls",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("question", Text, nullable=False),
    Column("closes_at", BigInteger, nullable=True),  # ms since the epoch
    Column("late_grace_seconds", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    # SQLite: the seqs handed out so far; the next accepted vote takes vote_count + 1 as its seq.
    # PostgreSQL takes seqs from a sequence per poll instead (app/storage/poll_locks.py) and leaves this as
    # migration 0007 found it: a row every vote updated would be locked until each commit.
    Column("vote_count", BigInteger, nullable=False, server_default="0"),
    # Who may vote (docs/abuse.md): polls made before modes existed keep taking every vote.
    Column("eligibility", String(16), nullable=False, server_default="anyone"),
    Column("difficulty", Integer, nullable=False, server_default="0"),  # proof-of-work bits
    # SHA-256 of the poll's manage token (app/polls/store.py): a copy of the database opens nothing.
    Column("manage_hash", LargeBinary(32), nullable=True),
    # always | after-voting | after-closing: who may read the counts before the poll closes.
    Column("results_visibility", String(16), nullable=False, server_default="always"),
)

options = Table(
    "options",
    metadata,
    Column("poll_id", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("label", Text, nullable=False),
    Column("position", Integer, nullable=False),
    ForeignKeyConstraint(["poll_id"], ["polls.id"], ondelete="CASCADE"),
)

# Each option's count, kept in the vote's own transaction so results never scan the votes table,
# and split over shards so that concurrent transactions of one poll do not queue on one row
# (app/votes/rows.py picks a shard per transaction). An option's count is the sum of its shards.
option_tallies = Table(
    "option_tallies",
    metadata,
    Column("poll_id", String(64), primary_key=True),
    Column("option_id", String(64), primary_key=True),
    Column("shard", Integer, primary_key=True),
    Column("votes", BigInteger, nullable=False),
)

# A vote carries no personal data: the public key is a per-poll key made on the device.
votes = Table(
    "votes",
    metadata,
    Column("idempotency_key", String(36), primary_key=True),
    Column("poll_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("vote_id", String(36), nullable=False),
    Column("option_id", String(64), nullable=False),
    Column("public_key", LargeBinary(32), nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("accepted_at", BigInteger, nullable=False),
    # SHA-256 over everything the client sent that matters; tells a retry from a reuse of the key.
    Column("request_hash", LargeBinary(32), nullable=False),
    # The exact receipt bytes, so that every retry gets a byte-identical answer.
    Column("receipt", LargeBinary, nullable=False),
    # No foreign key to the option: each vote would share-lock the option's row, and on PostgreSQL
    # concurrent transactions of one poll build a multixact on it for every vote (bench/hot_row.py).
    # The vote path checks each vote's option against its poll's (app/votes/acceptance.py
    # `poll_problem`), and a poll's options never change once it is made.
    UniqueConstraint("poll_id", "public_key"),
    UniqueConstraint("poll_id", "seq"),
)

# Device keys the service saw while a poll was open, with its own clock: only these may deliver a
# vote after the poll closes, within its late-delivery grace (app/votes/acceptance.py). A key is
# a per-poll key made on the device: no personal data.
devices = Table(
    "devices",
    metadata,
    Column("poll_id", String(64), primary_key=True),
    Column("public_key", LargeBinary(32), primary_key=True),
    Column("registered_at", BigInteger, nullable=False),  # ms since the epoch, the service's clock
    ForeignKeyConstraint(["poll_id"], ["polls.id"], ondelete="CASCADE"),
)

# The voter roll of an `invite` poll: one row per invitation, stored only as a keyed hash of its
# code (app/eligibility/invitations.py), bound to the first device key it admitted, forever.
invitations = Table(
    "invitations",
    metadata,
    Column("poll_id", String(64), primary_key=True),
    Column("code_hash", LargeBinary(32), primary_key=True),
    Column("public_key", LargeBinary(32), nullable=True),
    Column("admitted_at", BigInteger, nullable=True),  # ms since the epoch, the service's clock
    ForeignKeyConstraint(["poll_id"], ["polls.id"], ondelete="CASCADE"),
    Index("ix_invitations_poll_id_public_key", "poll_id", "public_key"),
)

# The public ballot log (app/ballot_log/): its entries are the votes rows in seq order; these hold
# the Merkle tree's tiles and the latest signed checkpoint, which only ever extends.
ballot_log_tiles = Table(
    "ballot_log_tiles",
    metadata,
    Column("poll_id", String(64), primary_key=True),
    Column("level", Integer, primary_key=True),
    Column("tile_index", BigInteger, primary_key=True),
    # Up to 256 hashes of 32 bytes; a partial tile grows until it is full, then never changes.
    Column("hashes", LargeBinary, nullable=False),
    ForeignKeyConstraint(["poll_id"], ["polls.id"], ondelete="CASCADE"),
)

# Seqs that were handed out to a transaction that never committed (PostgreSQL's sequences do not
# roll back): each is a void entry in the log, so that entry i stays the vote with seq i + 1.
ballot_log_voids = Table(
    "ballot_log_voids",
    metadata,
    Column("poll_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    ForeignKeyConstraint(["poll_id"], ["polls.id"], ondelete="CASCADE"),
)

ballot_log_checkpoints = Table(
    "ballot_log_checkpoints",
    metadata,
    Column("poll_id", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", LargeBinary, nullable=False),  # the signed checkpoint, served as stored
    Column("made_at", BigInteger, nullable=False),  # ms since the epoch, the service's clock
    ForeignKeyConstraint(["poll_id"], ["polls.id"], ondelete="CASCADE"),
)

# A fleet's signing keys (app/storage/sealed_keys.py): each seed sealed under the key-encryption key
# every node is given, so a copy of the database signs nothing. `purpose` is receipt, log or
# eligibility; the first key of each has created_ns 0, so that nodes starting together agree on it.
sealed_keys = Table(
    "sealed_keys",
    metadata,
    Column("purpose", String(16), primary_key=True),
    Column("created_ns", BigInteger, primary_key=True),
    Column("active_from", BigInteger, nullable=False),  # ms since the epoch: when it may sign
    Column("sealed", LargeBinary, nullable=False),
)
