"""A log entry: the published ballot, exactly what checks its signature and nothing more; or a
void, the place of a seq that no vote took.

Canonical encoding (docs/ballot-log.md): UTF-8 JSON, one object, these seven keys in this order,
no spaces, integers in decimal; the binary fields as the vote carries them (base64url). A void is
`{"poll_id":…,"void":seq}`, its seq being its index + 1.
"""

from __future__ import annotations

import msgspec

from app.core.protocol import (
    Identifier,
    Millis,
    PublicKeyB64,
    SignatureB64,
    Uuid,
    b64encode,
    b64url_checked,
    signature_verifies,
    signing_bytes,
)

LENGTH_BYTES = 2  # entry bundles: big-endian uint16 length before each entry
MAX_ENTRY_BYTES = 1024  # a ballot is ~400 bytes; anything near 64 KiB is not one


class Entry(msgspec.Struct, forbid_unknown_fields=True):
    """One ballot in the log. Field order is the canonical key order."""

    poll_id: Identifier
    option_id: Identifier
    vote_id: Uuid
    idempotency_key: Uuid
    created_at: Millis
    public_key: PublicKeyB64
    signature: SignatureB64

    def encode(self) -> bytes:
        return msgspec.json.encode(self)

    def signature_verifies(self) -> bool:
        """The vote/v1 signature (docs/protocol.md) by the entry's own device key."""
        signed = signing_bytes(self.poll_id, self.option_id, self.vote_id, self.idempotency_key, self.created_at)
        return signature_verifies(b64url_checked(self.public_key), signed, b64url_checked(self.signature))


class Void(msgspec.Struct, forbid_unknown_fields=True):
    """A seq handed out to a transaction that never committed (app/ballot_log/voids.py): no vote,
    counted by no one, there so that entry i stays the vote with seq i + 1."""

    poll_id: Identifier
    void: int

    def encode(self) -> bytes:
        return msgspec.json.encode(self)


def void_entry(poll_id: str, seq: int) -> bytes:
    return Void(poll_id, seq).encode()


class EntryError(ValueError):
    """Bytes that are not a canonical entry, or a bundle that does not hold what it should."""


def entry_of_row(
    poll_id: str,
    option_id: str,
    vote_id: str,
    idempotency_key: str,
    created_at: int,
    public_key: bytes,
    signature: bytes,
) -> bytes:
    """The canonical entry of a stored vote."""
    return Entry(
        poll_id, option_id, vote_id, idempotency_key, created_at, b64encode(public_key), b64encode(signature)
    ).encode()


_decoder = msgspec.json.Decoder(Entry)
_void_decoder = msgspec.json.Decoder(Void)


def decode_entry(data: bytes) -> Entry | Void:
    """The ballot or void, if these are its canonical bytes: each fits one encoding only."""
    try:
        entry: Entry | Void = _decoder.decode(data)  # the vote's own field rules, as docs/protocol.md has them
    except msgspec.ValidationError as error:
        try:
            entry = _void_decoder.decode(data)
        except msgspec.ValidationError:
            raise EntryError(f"not a ballot: {error}") from None
    except msgspec.DecodeError:
        raise EntryError("not a JSON ballot") from None
    if entry.encode() != data:
        raise EntryError("not in the canonical encoding")
    return entry


def bundle(entries: list[bytes]) -> bytes:
    return b"".join(len(entry).to_bytes(LENGTH_BYTES, "big") + entry for entry in entries)


def unbundle(data: bytes, count: int) -> list[bytes]:
    """The `count` entries of a bundle; EntryError if it holds more, fewer or a broken length."""
    entries, at = [], 0
    while at < len(data):
        if at + LENGTH_BYTES > len(data):
            raise EntryError("the entry bundle ends inside a length")
        length = int.from_bytes(data[at : at + LENGTH_BYTES], "big")
        at += LENGTH_BYTES
        if at + length > len(data):
            raise EntryError("the entry bundle ends inside an entry")
        entries.append(data[at : at + length])
        at += length
    if len(entries) != count:
        raise EntryError(f"the entry bundle holds {len(entries)} entries, not {count}")
    return entries
