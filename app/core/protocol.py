"""Vote protocol v1 (docs/protocol.md): the wire format, the signed bytes and the ballot hash."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Annotated

import msgspec
from nacl.bindings import crypto_sign_open
from nacl.exceptions import CryptoError

SIGNING_CONTEXT = "vote/v1"
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
PUBLIC_KEY_B64_LEN = 43  # 32 bytes in unpadded base64url
SIGNATURE_BYTES = 64  # Ed25519
SIGNATURE_B64_LEN = 86  # 64 bytes in unpadded base64url

Identifier = Annotated[str, msgspec.Meta(pattern=ID_PATTERN)]
Uuid = Annotated[str, msgspec.Meta(pattern=UUID_PATTERN)]
Millis = Annotated[int, msgspec.Meta(ge=0, le=2**53 - 1)]  # exact in JavaScript numbers
PublicKeyB64 = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]+$", min_length=PUBLIC_KEY_B64_LEN, max_length=PUBLIC_KEY_B64_LEN)
]
# Outside the signed bytes (docs/protocol.md, Eligibility): the proof-of-work nonce, and the
# invitation code a device not yet admitted sends with its vote.
STAMP_PATTERN = r"^[0-9]{1,20}$"
INVITATION_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"
Stamp = Annotated[str, msgspec.Meta(pattern=STAMP_PATTERN)]
InvitationCode = Annotated[str, msgspec.Meta(pattern=INVITATION_PATTERN)]
SignatureB64 = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]+$", min_length=SIGNATURE_B64_LEN, max_length=SIGNATURE_B64_LEN)
]


class Vote(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A vote as the device sends it."""

    vote_id: Uuid
    idempotency_key: Uuid
    poll_id: Identifier
    option_id: Identifier
    created_at: Millis
    public_key: PublicKeyB64
    signature: SignatureB64
    stamp: Stamp | None = None
    """The proof of work (app/eligibility/stamps.py); not signed: its hash binds poll and key."""
    invitation: InvitationCode | None = None
    """An invitation code, from a device its poll has not admitted yet; never stored in clear."""

    def signing_bytes(self) -> bytes:
        return signing_bytes(self.poll_id, self.option_id, self.vote_id, self.idempotency_key, self.created_at)


@dataclass(frozen=True, slots=True)
class Ballot:
    """A vote with its binary fields decoded and its hashes computed once, for the service's hot path."""

    vote: Vote
    public_key: bytes
    signature: bytes
    signed: bytes
    request_hash: bytes
    ballot_hash: str

    @classmethod
    def of(cls, vote: Vote) -> Ballot:
        # The Vote's field patterns already admit only unpadded base64url of the right length.
        public_key = b64url_checked(vote.public_key)
        signature = b64url_checked(vote.signature)
        signed = vote.signing_bytes()
        return cls(
            vote=vote,
            public_key=public_key,
            signature=signature,
            signed=signed,
            request_hash=hashlib.sha256(public_key + signed + signature).digest(),
            ballot_hash=ballot_hash(signed, signature),
        )

    def signature_verifies(self) -> bool:
        return signature_verifies(self.public_key, self.signed, self.signature)


def b64url_checked(text: str) -> bytes:
    """Bytes of a field whose pattern already admits only unpadded base64url of the right length."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ReceiptPayload(msgspec.Struct, kw_only=True):
    """What the service signs. Field order is fixed, so the bytes are reproducible."""

    v: int = 1
    kid: str
    poll_id: str
    vote_id: str
    idempotency_key: str
    ballot_hash: str
    seq: int
    accepted_at: int


class Receipt(msgspec.Struct):
    kid: str
    payload: str
    signature: str


def signature_verifies(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        crypto_sign_open(signature + message, public_key)
    except CryptoError:  # a bad signature, or a key or signature of the wrong length
        return False
    return True


def signing_bytes(poll_id: str, option_id: str, vote_id: str, idempotency_key: str, created_at: int) -> bytes:
    return "\n".join((SIGNING_CONTEXT, poll_id, option_id, vote_id, idempotency_key, str(created_at))).encode()


def ballot_hash(signed: bytes, signature: bytes) -> str:
    return b64encode(hashlib.sha256(signed + signature).digest())


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
