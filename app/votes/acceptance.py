"""Every rule a vote must pass, in the order they are checked. A new rule for votes goes here.

1. The request's form (`vote_from_request`, `vote_from_item`): JSON, an Idempotency-Key header
   naming the body's key, a body that is a vote, for the poll of the URL.
2. The idempotency key in flight in this worker (`in_flight_problem`): an identical request
   joins the one in progress, a different body under the same key waits for its answer.
3. The poll (`poll_problem`): it exists, has the option, is open; the vote is dated neither in
   the future nor before the poll existed. After the close, within the late-delivery grace
   (`arrives_late`), only a device key the service registered before the close may vote
   (`late_problem`, app/votes/devices.py). A vote stopped here that was stored earlier still gets
   its receipt: see VoteService.
   Then who may vote (docs/abuse.md), cheapest first: a `proof-of-work` poll's stamp, one SHA-256
   (`poll_problem`, before any signature is checked); an `invite` poll's roll (`needs_admission`),
   after the signature, since admitting a key binds an invitation to it for good
   (app/eligibility/invitations.py). Rate limits come before all of these, per request
   (app/eligibility/rate_limits.py).
4. Inside the transaction that stores it (`decide`), against committed rows and the rest of its
   batch: the key's stored vote (a replay, or a reuse of the key for another vote), the
   signature (checked in batches as votes arrive, app/votes/crypto.py), the device (one vote per
   key per poll).

The single endpoint, its fast path and each item of the batch endpoint all go through these, so
a vote gets the same answer whichever way it came. docs/protocol.md lists the answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy.engine import Connection

from app.core import problems
from app.core.protocol import Ballot, Vote
from app.eligibility.stamps import stamp_valid
from app.polls.cache import CachedPoll
from app.polls.validation import INVITE, PROOF_OF_WORK
from app.votes.idempotency import idempotency_key_from
from app.votes.rows import devices_that_voted, poll_window, registered_by, reserve_seqs, stored_by_key

MAX_CLOCK_AHEAD_MS = 5 * 60 * 1000  # devices' clocks drift; beyond this a vote is suspect
JSON_MEDIA_TYPE = "application/json"
LATE_UNREGISTERED = (
    "The poll has closed, and this device's key was not registered while it was open: "
    "only a device the service saw before the close may deliver a vote late."
)
KEY_REUSED = "This idempotency key was already used for a different vote."
ALREADY_VOTED = "This device's key has already cast a vote in this poll."
INVALID_SIGNATURE = "The signature does not verify against public_key."
STAMP_MISSING = "This poll needs a proof-of-work stamp with each vote, made for its poll and public_key."
STAMP_WRONG = "The stamp does not meet the poll's difficulty of {bits} bits for this poll and public_key."

_decode_vote = msgspec.json.Decoder(Vote).decode
_AT_FIELD = re.compile(r"(?s)(.*) - at `\$\.([^`]*)`")


@dataclass(frozen=True, slots=True)
class Accepted:
    receipt: bytes
    created: bool
    """True only for the request that caused the commit; every replay gets False."""

    @property
    def status(self) -> int:
        return 201 if self.created else 200


# 1. The request's form


def single_header(name: str, values: Sequence[str]) -> str | None:
    """The one value of a header that may appear once. Two are refused whatever they say: servers,
    proxies and frameworks disagree on which of them counts (the first, the last, or both joined)."""
    if len(values) > 1:
        raise problems.DuplicateHeader(f"Send one {name} header, not {len(values)}.")
    return values[0] if values else None


def require_json(content_types: Sequence[str]) -> None:
    media_type = (single_header("Content-Type", content_types) or "").split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        raise problems.UnsupportedMediaType(f"Send application/json, not {media_type or 'nothing'}.")


def vote_from_request(
    content_types: Sequence[str], idempotency_headers: Sequence[str], body: bytes, poll_id: str
) -> Vote:
    """The vote a `POST /api/v1/polls/{poll_id}/votes` carries, or the problem with its form.
    Each header comes as every value the request has for it, in order."""
    require_json(content_types)
    key = idempotency_key_from(single_header("Idempotency-Key", idempotency_headers))
    try:
        vote = _decode_vote(body)
    except msgspec.ValidationError as error:  # a subclass of DecodeError: JSON, but not a vote
        raise invalid_vote(error) from None
    except msgspec.DecodeError as error:
        raise problems.MalformedJson(str(error)) from None
    if key != vote.idempotency_key:
        raise problems.IdempotencyKeyMismatch("The Idempotency-Key header must equal idempotency_key.")
    if vote.poll_id != poll_id:
        raise problems.PollMismatch(f"The vote is for poll {vote.poll_id!r}, sent to poll {poll_id!r}.")
    return vote


def vote_from_item(item: Any) -> Vote:
    """One vote of a batch, already parsed as JSON; its key and poll are its own."""
    try:
        return msgspec.convert(item, Vote)
    except msgspec.ValidationError as error:
        raise invalid_vote(error) from None


def invalid_vote(error: msgspec.ValidationError) -> problems.InvalidVote:
    """Names the field at fault, in the words and shape every vote endpoint uses."""
    message = str(error)
    at_field = _AT_FIELD.fullmatch(message)
    if at_field is None:
        # Not about one field (a missing or unknown field, not an object): the whole body.
        return problems.InvalidVote(message, errors=[{"message": message, "key": "data", "source": "body"}])
    message, field = at_field.groups()
    return problems.InvalidVote(f"{field}: {message}", errors=[{"message": message, "key": field, "source": "body"}])


# 2. The idempotency key in flight


def in_flight_problem(in_flight_hash: bytes, request_hash: bytes) -> problems.Problem | None:
    """None when the request is the one in flight (it joins it); else it must wait."""
    if in_flight_hash == request_hash:
        return None
    return problems.RequestInFlight(headers={"Retry-After": "1"})


# 3. The poll


def poll_problem(vote: Vote, poll: CachedPoll | None, now_ms: int) -> problems.Problem | None:
    """What is wrong with the vote for its poll, if anything."""
    if poll is None:
        return problems.PollNotFound.named(vote.poll_id)
    if vote.option_id not in poll.option_ids:
        return problems.UnknownOption(f"Poll {vote.poll_id!r} has no option {vote.option_id!r}.")
    if vote.created_at > now_ms + MAX_CLOCK_AHEAD_MS:
        return problems.ClockInFuture("created_at is more than 5 minutes ahead of the service's clock.")
    if vote.created_at < poll.poll.created_at - MAX_CLOCK_AHEAD_MS:
        return problems.DatedBeforePoll("created_at is more than 5 minutes before the poll was created.")
    closes_at = poll.poll.closes_at
    if closes_at is not None and (
        vote.created_at > closes_at or now_ms > closes_at + poll.poll.late_grace_seconds * 1000
    ):
        return problems.PollClosed(f"Poll {vote.poll_id!r} closed at {closes_at} ms.")
    if poll.poll.eligibility == PROOF_OF_WORK and not stamp_valid(
        vote.poll_id, vote.public_key, vote.stamp, poll.poll.difficulty
    ):
        if vote.stamp is None:
            return problems.ProofOfWorkRequired(STAMP_MISSING)
        return problems.ProofOfWorkRequired(STAMP_WRONG.format(bits=poll.poll.difficulty))
    return None


def needs_admission(poll: CachedPoll) -> bool:
    """Whether the vote's key must be on the poll's roll (checked against the database)."""
    return poll.poll.eligibility == INVITE


def arrives_late(poll: CachedPoll, now_ms: int) -> bool:
    """After the close, within the grace: the device's clock says the vote was cast in time, and
    nothing the service saw says so; the device's key must have been registered before the close."""
    closes_at = poll.poll.closes_at
    return closes_at is not None and now_ms > closes_at


def late_problem(registered_before_close: bool) -> problems.Problem | None:
    return None if registered_before_close else problems.PollClosed(LATE_UNREGISTERED)


# 4. In the transaction


def stored_answer(stored_hash: bytes, receipt: bytes, request_hash: bytes) -> Accepted | problems.Problem:
    """The answer to a vote whose key is already stored: the same receipt, or the key's reuse."""
    if stored_hash != request_hash:
        return problems.IdempotencyKeyReused(KEY_REUSED)
    return Accepted(receipt=receipt, created=False)


@dataclass(slots=True)
class Decision:
    """What a batch's transaction decided before its receipts are signed."""

    outcomes: list[Accepted | problems.Problem | None]
    fresh: list[tuple[int, Ballot]]
    """The new votes, with their positions in the batch."""
    seqs: list[int]
    accepted_at: int


def decide(conn: Connection, batch: Sequence[Ballot], forged: set[int], clock: Callable[[], int]) -> Decision:
    """Decides each vote of a batch inside its transaction, and reserves the new ones' positions.

    Checked against committed rows and within the batch, so each vote gets exactly the answer it
    would have had alone. A forged vote (its position is in `forged`) is refused, unless its key
    names another vote: then the key's reuse is the answer, as for any other refused vote.
    """
    outcomes: list[Accepted | problems.Problem | None] = [None] * len(batch)
    fresh: list[tuple[int, Ballot]] = []
    # Devices first, keys second: on PostgreSQL each statement sees what was committed when it
    # started, so a rival commit landing between the two shows its key (a replay, which takes
    # precedence) rather than only its device (which would wrongly say "already voted").
    voted = devices_that_voted(conn, [(b.vote.poll_id, b.public_key) for b in batch])
    stored = stored_by_key(conn, [b.vote.idempotency_key for b in batch])
    for index, ballot in enumerate(batch):
        vote = ballot.vote
        device = (vote.poll_id, ballot.public_key)
        if vote.idempotency_key in stored:
            # A forged vote never matches a stored hash: that vote's signature was verified.
            outcomes[index] = stored_answer(*stored[vote.idempotency_key], ballot.request_hash)
        elif index in forged:
            outcomes[index] = problems.InvalidSignature(INVALID_SIGNATURE)
        elif device in voted:
            outcomes[index] = problems.AlreadyVoted(ALREADY_VOTED)
        else:
            voted.add(device)
            fresh.append((index, ballot))
    now = clock()
    fresh, seqs = take_seqs_in_window(conn, fresh, outcomes, now)
    return Decision(outcomes, fresh, seqs, now)


def take_seqs_in_window(
    conn: Connection,
    fresh: list[tuple[int, Ballot]],
    outcomes: list[Accepted | problems.Problem | None],
    now: int,
) -> tuple[list[tuple[int, Ballot]], list[int]]:
    """Reserves the new votes' positions, one statement per open poll, while the poll as committed
    admits them. The poll was checked before (`poll_problem`), but from memory: a poll closed early
    since then refuses, here, on whichever node, the votes it would refuse now had it closed then.
    After a close (early or not), each vote is judged against it (`_admitted_after_close`).

    Polls are taken in sorted order, so that concurrent batches on PostgreSQL take their polls'
    admission locks (app/storage/poll_locks.py) in the same order and cannot deadlock.
    """
    by_poll: dict[str, list[tuple[int, Ballot]]] = {}
    for item in fresh:
        by_poll.setdefault(item[1].vote.poll_id, []).append(item)
    seq_of: dict[int, int] = {}
    for poll_id in sorted(by_poll):
        votes = by_poll[poll_id]
        cast_by = max(ballot.vote.created_at for _, ballot in votes)
        seqs = reserve_seqs(conn, poll_id, len(votes), open_for=(cast_by, now))
        if seqs is None:
            votes = _admitted_after_close(conn, poll_id, votes, now, outcomes)
            seqs = reserve_seqs(conn, poll_id, len(votes)) if votes else None
        if seqs is not None:
            for seq, (index, _) in zip(seqs, votes, strict=True):
                seq_of[index] = seq
    kept = [item for item in fresh if item[0] in seq_of]
    return kept, [seq_of[index] for index, _ in kept]


def _admitted_after_close(
    conn: Connection,
    poll_id: str,
    votes: list[tuple[int, Ballot]],
    now: int,
    outcomes: list[Accepted | problems.Problem | None],
) -> list[tuple[int, Ballot]]:
    """The rules of `poll_problem` and `late_problem`, against the poll as committed: it exists, and
    the vote was cast before its close, delivered within its grace, from a device the service saw
    before the close."""
    window = poll_window(conn, poll_id)
    if window is None:  # removed since it was read into memory
        for index, _ in votes:
            outcomes[index] = problems.PollNotFound.named(poll_id)
        return []
    closes_at, grace_s = window
    assert closes_at is not None  # an open poll admits every vote its poll_problem admitted
    in_time = [(index, ballot) for index, ballot in votes if ballot.vote.created_at <= closes_at]
    seen = registered_by(conn, poll_id, [ballot.public_key for _, ballot in in_time], closes_at) if in_time else set()
    admitted = []
    for index, ballot in votes:
        if ballot.vote.created_at > closes_at or now > closes_at + grace_s * 1000:
            outcomes[index] = problems.PollClosed(f"Poll {poll_id!r} closed at {closes_at} ms.")
        elif ballot.public_key not in seen:
            outcomes[index] = problems.PollClosed(LATE_UNREGISTERED)
        else:
            admitted.append((index, ballot))
    return admitted
