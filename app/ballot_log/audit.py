"""The auditor: recounts a poll from its public ballot log, trusting nothing but the log keys.

It reads the log where it is published (the service, a CDN mirror, or a directory written by
publish-log), checks the signed checkpoint, every ballot's signature, every tile against the
entries, one vote per device key, every vote inside the poll's window, and that the log extends
the checkpoint an earlier run saved. Any mismatch stops it with the reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from app.ballot_log.checkpoint import Checkpoint, open_checkpoint
from app.ballot_log.entries import EntryError, Void, decode_entry, unbundle
from app.ballot_log.merkle import leaf_hash, root_of
from app.ballot_log.note import NoteError, Verifier
from app.ballot_log.sources import Source, SourceError
from app.ballot_log.tiles import TILE_WIDTH, all_tiles, bundles_for_size

CLOCK_TOLERANCE_MS = 5 * 60 * 1000  # docs/protocol.md: no vote dated before its poll, give or take this


class AuditFailure(Exception):
    """The log does not check out; the message says where and why."""


@dataclass(frozen=True, slots=True)
class PollWindow:
    poll_id: str
    option_ids: frozenset[str]
    created_at: int
    closes_at: int | None


@dataclass
class AuditReport:
    checkpoint: Checkpoint
    note: bytes
    tally: Counter[str] = field(default_factory=Counter)
    voids: int = 0
    """Entries that hold no vote: seqs handed out to transactions that never committed."""


def audit(source: Source, verifiers: list[Verifier], poll: PollWindow, since: bytes | None = None) -> AuditReport:
    try:
        return _audit(source, verifiers, poll, since)
    except (NoteError, EntryError, SourceError) as error:
        raise AuditFailure(str(error)) from None


def _audit(source: Source, verifiers: list[Verifier], poll: PollWindow, since: bytes | None) -> AuditReport:
    note = source.get("checkpoint")
    checkpoint = open_checkpoint(note, verifiers)
    if not checkpoint.origin.endswith(f"/polls/{poll.poll_id}"):
        raise AuditFailure(f"the checkpoint is for the log {checkpoint.origin!r}, not poll {poll.poll_id!r}")
    report = AuditReport(checkpoint, note)
    hashes: list[bytes] = []
    devices: set[str] = set()
    for bundle_id in bundles_for_size(checkpoint.size):
        entries = unbundle(source.get(bundle_id.path), bundle_id.width)
        for offset, data in enumerate(entries):
            index = bundle_id.index * TILE_WIDTH + offset
            _check_entry(index, data, poll, devices, report)
            hashes.append(leaf_hash(data))
    for tile_id, expected in all_tiles(hashes).items():
        if source.get(tile_id.path) != expected:
            raise AuditFailure(f"{tile_id.path} does not match the entries: the published tree was altered")
    if root_of(hashes) != checkpoint.root:
        raise AuditFailure("the entries do not hash to the checkpoint's root: an entry was added, dropped or changed")
    if since is not None:
        _check_extends(open_checkpoint(since, verifiers), checkpoint, hashes)
    return report


def _check_entry(index: int, data: bytes, poll: PollWindow, devices: set[str], report: AuditReport) -> None:
    try:
        entry = decode_entry(data)
    except EntryError as error:
        raise AuditFailure(f"entry {index}: {error}") from None
    if entry.poll_id != poll.poll_id:
        raise AuditFailure(f"entry {index} is a vote in poll {entry.poll_id!r}, not {poll.poll_id!r}")
    if isinstance(entry, Void):
        if entry.void != index + 1:
            raise AuditFailure(f"entry {index} voids seq {entry.void}, not its own seq {index + 1}")
        report.voids += 1  # no vote: counted by no one
        return
    if entry.option_id not in poll.option_ids:
        raise AuditFailure(f"entry {index} votes for {entry.option_id!r}, which is not an option")
    if not entry.signature_verifies():
        raise AuditFailure(f"entry {index}: the ballot's signature does not verify")
    if entry.public_key in devices:
        raise AuditFailure(f"entry {index}: a second vote by the same device key")
    if entry.created_at < poll.created_at - CLOCK_TOLERANCE_MS:
        raise AuditFailure(f"entry {index} is dated before the poll existed")
    if poll.closes_at is not None and entry.created_at > poll.closes_at:
        raise AuditFailure(f"entry {index} is dated after the poll closed")
    devices.add(entry.public_key)
    report.tally[entry.option_id] += 1


def _check_extends(earlier: Checkpoint, now: Checkpoint, hashes: list[bytes]) -> None:
    if earlier.origin != now.origin:
        raise AuditFailure(f"the saved checkpoint is for {earlier.origin!r}, not {now.origin!r}")
    if earlier.size > now.size:
        raise AuditFailure(f"the log shrank from {earlier.size} to {now.size} entries: the log forked")
    if root_of(hashes[: earlier.size]) != earlier.root:
        if earlier.size == now.size:
            raise AuditFailure(f"two checkpoints of size {now.size} with different roots: the log forked")
        raise AuditFailure(
            f"the log of {now.size} entries does not extend the saved one of {earlier.size}: the log forked"
        )
