"""A ballot the service signs for a voter whose browser runs no script, in an `invite` poll.

Such a browser cannot hold a device key, so the service makes the ballot on the voter's behalf
(docs/protocol.md, Voting without JavaScript): its Ed25519 key is derived from the invitation
code under the eligibility key, so one code always makes the same key (a second ballot for it is
`already-voted`, counted once), and nobody without the service's key (the organiser who printed
the codes included) can link a code to its ballot in the public log. The ballot then goes through
the same acceptance path as any other: the invitation binds to that key, the vote is committed,
receipted and logged.

The form token, given with the form, makes the ballot's bytes: a double submit of one form sends
the same vote, which the idempotency key turns into one vote with one receipt.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid

from nacl.signing import SigningKey

from app.core.protocol import INVITATION_PATTERN, UUID_PATTERN, Vote, b64encode, signing_bytes

_FORM_TOKEN = re.compile(r"(?P<issued>[0-9]{13})\.(?P<key>" + UUID_PATTERN.strip("^$") + ")")
_INVITATION = re.compile(INVITATION_PATTERN)
_LINK_CODE = re.compile(r"#invite=([A-Za-z0-9_-]+)")


class NotABallot(ValueError):
    """The form cannot make a ballot; the page says why in words."""


def new_form_token(now_ms: int | None = None) -> str:
    """`{ms}.{uuid}`: when the form was given (the ballot's created_at) and its idempotency key."""
    issued = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return f"{issued}.{uuid.uuid4()}"


def invitation_code(typed: str) -> str | None:
    """The code as printed (in groups, or the whole invitation link pasted) without its spaces;
    None when it cannot be a code."""
    text = typed.strip()
    if (in_link := _LINK_CODE.search(text)) is not None:
        text = in_link.group(1)
    code = "".join(text.split())  # '-' and '_' belong to codes: only white space is left out
    return code if _INVITATION.fullmatch(code) else None


def ballot_key(eligibility_key: bytes, poll_id: str, code: str) -> SigningKey:
    seed = hmac.new(eligibility_key, f"no-script-ballot/v1\n{poll_id}\n{code}".encode(), hashlib.sha256).digest()
    return SigningKey(seed)


def no_script_ballot(eligibility_key: bytes, poll_id: str, option_id: str, code: str, form_token: str) -> Vote:
    """The signed vote a no-script form makes; the same form always makes the same bytes."""
    token = _FORM_TOKEN.fullmatch(form_token)
    if token is None:
        raise NotABallot("form-token")
    key = ballot_key(eligibility_key, poll_id, code)
    idempotency_key = token["key"]
    # Derived, so a resubmitted form repeats it; distinct from the idempotency key all the same.
    vote_id = str(uuid.UUID(bytes=hashlib.sha256(f"vote-id\n{idempotency_key}".encode()).digest()[:16], version=4))
    created_at = int(token["issued"])
    signed = signing_bytes(poll_id, option_id, vote_id, idempotency_key, created_at)
    return Vote(
        vote_id=vote_id,
        idempotency_key=idempotency_key,
        poll_id=poll_id,
        option_id=option_id,
        created_at=created_at,
        public_key=b64encode(bytes(key.verify_key)),
        signature=b64encode(key.sign(signed).signature),
        invitation=code,
    )


def grouped(code: str, size: int = 4) -> str:
    """A code as printed, in groups a person can copy: `Zp3x R0c1 l9vF 8m2T qYb6 _w`."""
    return " ".join(code[i : i + size] for i in range(0, len(code), size))
