"""Polls: creation, lookup, and the demo poll for `make run`. Once created, a poll changes only by
closing early and by its results visibility; its manage token is kept as a SHA-256 alone."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import unicodedata
from collections.abc import Collection
from typing import Annotated, Literal

import msgspec
from sqlalchemy import exists, insert, or_, select, update

from app.core.protocol import ID_PATTERN, Identifier, Millis
from app.polls.validation import (
    MAX_DIFFICULTY,
    MAX_LABEL_CHARS,
    MAX_LATE_GRACE_SECONDS,
    MAX_OPTIONS,
    MAX_QUESTION_CHARS,
    MIN_DIFFICULTY,
    MIN_OPTIONS,
    PROOF_OF_WORK,
    InvalidPoll,
    check_closing,
    clean_labels,
    clean_text,
    difficulty_for,
)
from app.storage.db import Database
from app.storage.poll_locks import hold_admission_exclusively
from app.storage.schema import options as options_table
from app.storage.schema import polls as polls_table
from app.storage.schema import votes as votes_table

POLL_ID_BYTES = 12  # 16 URL-safe characters, 96 random bits: not guessable, not enumerable
MANAGE_TOKEN_BYTES = 32  # 43 URL-safe characters, 256 random bits

ResultsVisibility = Literal["always", "after-voting", "after-closing"]
RESULTS_VISIBILITIES: tuple[str, ...] = ("always", "after-voting", "after-closing")

Label = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_LABEL_CHARS)]
# Litestar drops the limits of a union's members from OpenAPI: the options' items are spelt out.
_OPTION_ITEMS_SCHEMA = {
    "oneOf": [
        {"type": "string", "minLength": 1, "maxLength": MAX_LABEL_CHARS},
        {
            "type": "object",
            "properties": {
                "label": {"type": "string", "minLength": 1, "maxLength": MAX_LABEL_CHARS},
                "id": {"oneOf": [{"type": "string", "pattern": ID_PATTERN}, {"type": "null"}]},
            },
            "required": ["label"],
            "additionalProperties": False,
        },
    ]
}


class Option(msgspec.Struct):
    id: str
    label: str


class Poll(msgspec.Struct):
    id: str
    question: str
    options: list[Option]
    closes_at: int | None
    late_grace_seconds: int = 0
    created_at: int = 0
    """When the poll was created, in ms since the epoch by the service's clock."""
    eligibility: str = PROOF_OF_WORK
    """Who may vote: `invite`, `proof-of-work` or `anyone` (docs/abuse.md)."""
    difficulty: int = 0
    """Leading zero bits a proof-of-work stamp's hash needs; 0 in the other modes."""
    results_visibility: ResultsVisibility = "always"
    """Who may read the counts before the poll closes: anyone, devices that voted, or no one."""

    def option_ids(self) -> set[str]:
        return {option.id for option in self.options}

    def closed(self, now_ms: int) -> bool:
        return self.closes_at is not None and now_ms >= self.closes_at

    def results_withheld(self, now_ms: int) -> ResultsVisibility | None:
        """The visibility that keeps the counts from the public now, or None when anyone may read them."""
        if self.results_visibility == "always" or self.closed(now_ms):
            return None
        return self.results_visibility


class OptionSpec(msgspec.Struct, forbid_unknown_fields=True):
    label: Label
    id: Identifier | None = None


class PollSpec(msgspec.Struct, forbid_unknown_fields=True):
    """What an organiser sends to create a poll. Options are labels, or objects with an id."""

    question: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_QUESTION_CHARS)]
    options: Annotated[
        list[Label | OptionSpec],
        msgspec.Meta(
            min_length=MIN_OPTIONS, max_length=MAX_OPTIONS, extra_json_schema={"extra": {"items": _OPTION_ITEMS_SCHEMA}}
        ),
    ]
    # Litestar drops the bounds of an optional integer from OpenAPI: spelt out too.
    closes_at: Annotated[
        Millis | None,
        msgspec.Meta(
            extra_json_schema={
                "extra": {"oneOf": [{"type": "integer", "minimum": 0, "maximum": 2**53 - 1}, {"type": "null"}]}
            }
        ),
    ] = None
    late_grace_seconds: Annotated[int, msgspec.Meta(ge=0, le=MAX_LATE_GRACE_SECONDS)] = 0
    eligibility: Literal["invite", "proof-of-work", "anyone"] = "proof-of-work"
    """Who may vote; see docs/abuse.md."""
    difficulty: Annotated[
        int | None,
        msgspec.Meta(
            extra_json_schema={
                "extra": {
                    "oneOf": [
                        {"type": "integer", "minimum": MIN_DIFFICULTY, "maximum": MAX_DIFFICULTY},
                        {"type": "null"},
                    ]
                }
            }
        ),
    ] = None
    """Proof-of-work polls only: leading zero bits of the stamp's hash; the default when null."""
    results_visibility: ResultsVisibility = "always"


def new_manage_token() -> str:
    return secrets.token_urlsafe(MANAGE_TOKEN_BYTES)


def manage_hash(token: str) -> bytes:
    # A plain hash suffices: the token carries 256 random bits, so nothing can be guessed from it.
    return hashlib.sha256(token.encode()).digest()


async def load_poll(db: Database, poll_id: str) -> Poll | None:
    return (await load_polls(db, [poll_id])).get(poll_id)


async def load_polls(db: Database, poll_ids: Collection[str]) -> dict[str, Poll]:
    """The named polls that exist, read in two queries however many there are."""
    async with db.read() as conn:
        poll_rows = (await conn.execute(select(polls_table).where(polls_table.c.id.in_(poll_ids)))).all()
        if not poll_rows:
            return {}
        option_rows = await conn.execute(
            select(options_table.c.poll_id, options_table.c.id, options_table.c.label)
            .where(options_table.c.poll_id.in_([row.id for row in poll_rows]))
            .order_by(options_table.c.poll_id, options_table.c.position)
        )
        options_by_poll: dict[str, list[Option]] = {}
        for option in option_rows:
            options_by_poll.setdefault(option.poll_id, []).append(Option(id=option.id, label=option.label))
    return {
        row.id: Poll(
            id=row.id,
            question=row.question,
            options=options_by_poll.get(row.id, []),
            closes_at=row.closes_at,
            late_grace_seconds=row.late_grace_seconds,
            created_at=row.created_at,
            eligibility=row.eligibility,
            difficulty=row.difficulty,
            results_visibility=row.results_visibility,
        )
        for row in poll_rows
    }


def new_poll_id() -> str:
    """A random id that does not start with "-": a command line would take it for an option
    (`litestar polls close -x…`)."""
    while (poll_id := secrets.token_urlsafe(POLL_ID_BYTES)).startswith("-"):
        pass
    return poll_id


async def create_poll(db: Database, spec: PollSpec, manage_token: str | None = None) -> Poll:
    """Creates the poll `spec` describes, or raises InvalidPoll (app/polls/validation.py). With
    `manage_token` (new_manage_token()), its SHA-256 is kept: the token then manages the poll."""
    created_at = int(time.time() * 1000)
    check_closing(spec.closes_at, spec.late_grace_seconds, created_at)
    difficulty = difficulty_for(spec.eligibility, spec.difficulty)
    if spec.eligibility == PROOF_OF_WORK and not MIN_DIFFICULTY <= difficulty <= MAX_DIFFICULTY:
        raise InvalidPoll(f"difficulty must be {MIN_DIFFICULTY} to {MAX_DIFFICULTY} bits.")
    poll = Poll(
        id=new_poll_id(),
        question=clean_text(spec.question, "question", MAX_QUESTION_CHARS),
        options=_options_from(spec.options),
        closes_at=spec.closes_at,
        late_grace_seconds=spec.late_grace_seconds,
        created_at=created_at,
        eligibility=spec.eligibility,
        difficulty=difficulty,
        results_visibility=spec.results_visibility,
    )
    async with db.write() as conn:
        await conn.execute(
            insert(polls_table).values(
                id=poll.id,
                question=poll.question,
                closes_at=poll.closes_at,
                late_grace_seconds=poll.late_grace_seconds,
                created_at=poll.created_at,
                eligibility=poll.eligibility,
                difficulty=poll.difficulty,
                results_visibility=poll.results_visibility,
                manage_hash=None if manage_token is None else manage_hash(manage_token),
            )
        )
        await conn.execute(
            insert(options_table),
            [{"poll_id": poll.id, "id": o.id, "label": o.label, "position": i} for i, o in enumerate(poll.options)],
        )
    return poll


async def close_poll(db: Database, poll_id: str, now_ms: int) -> Poll | None:
    """Closes the poll now, unless it has closed already (then it stays as it was); None when there
    is no such poll. Votes cast before now may still arrive within the poll's late-delivery grace,
    from devices the service saw before now; every other vote is refused from the commit on, on
    every node (app/votes/acceptance.py checks the committed close in each vote's transaction)."""
    async with db.write() as conn:
        # Waits for the poll's votes in flight, which decided against the close they read.
        await conn.run_sync(hold_admission_exclusively, poll_id)
        await conn.execute(
            update(polls_table)
            .where(polls_table.c.id == poll_id)
            .where(or_(polls_table.c.closes_at.is_(None), polls_table.c.closes_at > now_ms))
            .values(closes_at=now_ms)
        )
    return await load_poll(db, poll_id)


async def manage_token_matches(db: Database, poll_id: str, token: str) -> bool:
    """True when `token` is the manage token of poll `poll_id`; an empty token matches nothing."""
    if not token:
        return False
    async with db.read() as conn:
        stored = (
            await conn.execute(select(polls_table.c.manage_hash).where(polls_table.c.id == poll_id))
        ).scalar_one_or_none()
    return stored is not None and hmac.compare_digest(bytes(stored), manage_hash(token))


async def set_results_visibility(db: Database, poll_id: str, visibility: ResultsVisibility) -> Poll | None:
    """The poll with its new visibility; None when there is no such poll."""
    async with db.write() as conn:
        await conn.execute(update(polls_table).where(polls_table.c.id == poll_id).values(results_visibility=visibility))
    return await load_poll(db, poll_id)


async def has_voted(db: Database, poll_id: str, public_key: bytes) -> bool:
    """Whether the device key `public_key` has a vote counted in the poll (an indexed lookup)."""
    async with db.read() as conn:
        query = select(exists().where(votes_table.c.poll_id == poll_id).where(votes_table.c.public_key == public_key))
        return bool((await conn.execute(query)).scalar())


async def first_poll_id(db: Database) -> str | None:
    async with db.read() as conn:
        return (
            await conn.execute(select(polls_table.c.id).order_by(polls_table.c.created_at).limit(1))
        ).scalar_one_or_none()


DEMO_POLL = PollSpec(question="Which should the town build next?", options=["A library", "A park", "A pool"])


async def ensure_demo_poll(db: Database) -> str:
    """Returns the first poll's id, creating the demo poll when there is none."""
    existing = await first_poll_id(db)
    return existing if existing is not None else (await create_poll(db, DEMO_POLL)).id


def _options_from(specs: list[str | OptionSpec]) -> list[Option]:
    labels = clean_labels([spec if isinstance(spec, str) else spec.label for spec in specs])
    result: list[Option] = []
    taken: set[str] = set()
    for index, (spec, label) in enumerate(zip(specs, labels, strict=True), start=1):
        if isinstance(spec, OptionSpec) and spec.id is not None:
            if spec.id in taken:
                raise InvalidPoll(f"option id {spec.id!r} appears twice.")
            option_id = spec.id
        else:
            option_id = _unique(_slug(label) or f"option-{index}", taken)
        taken.add(option_id)
        result.append(Option(id=option_id, label=label))
    return result


def _slug(label: str) -> str:
    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_label.lower()).strip("-")[:56]


def _unique(candidate: str, taken: set[str]) -> str:
    if candidate not in taken:
        return candidate
    n = 2
    while f"{candidate}-{n}" in taken:
        n += 1
    return f"{candidate}-{n}"
