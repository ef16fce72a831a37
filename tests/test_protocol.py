"""Vote protocol v1: the published test vectors, and properties of the signed bytes and receipts."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey, VerifyKey

from app.core.keys import ReceiptKey, kid_for
from app.core.protocol import ID_PATTERN, Ballot, Vote, b64encode, signing_bytes
from tests.helpers import b64decode, issue_receipt, verify_receipt

VECTORS = json.loads((Path(__file__).parent / "vectors" / "vote-v1.json").read_text())

ids = st.from_regex(ID_PATTERN, fullmatch=True)
uuids = st.uuids().map(str)
millis = st.integers(min_value=0, max_value=2**53 - 1)


def test_vector_signing_bytes_match():
    vote = msgspec.convert(VECTORS["vote"], Vote)
    assert vote.signing_bytes().decode() == VECTORS["signing_bytes"]


def test_vector_vote_signature_verifies_with_its_public_key():
    vote = msgspec.convert(VECTORS["vote"], Vote)
    VerifyKey(b64decode(vote.public_key)).verify(vote.signing_bytes(), b64decode(vote.signature))


def test_vector_voter_seed_gives_the_published_signature():
    voter = SigningKey(b64decode(VECTORS["voter"]["seed"]))
    signature = voter.sign(VECTORS["signing_bytes"].encode()).signature
    assert b64encode(signature) == VECTORS["vote"]["signature"]


def test_vector_ballot_hash_matches():
    assert Ballot.of(msgspec.convert(VECTORS["vote"], Vote)).ballot_hash == VECTORS["ballot_hash"]


def test_vector_receipt_is_reproduced_byte_for_byte():
    server = SigningKey(b64decode(VECTORS["server"]["seed"]))
    key = ReceiptKey(kid=kid_for(bytes(server.verify_key)), signing_key=server)
    vote = msgspec.convert(VECTORS["vote"], Vote)
    receipt = issue_receipt(key, vote, seq=VECTORS["receipt_payload"]["seq"], accepted_at=1764000000456)
    assert json.loads(receipt) == VECTORS["receipt"]


def test_vector_receipt_verifies_as_a_client_checks_it():
    keys = [{"kid": VECTORS["server"]["kid"], "public_key": VECTORS["server"]["public_key"]}]
    payload = verify_receipt(VECTORS["receipt"], keys, VECTORS["vote"])
    assert payload == VECTORS["receipt_payload"]


@given(poll_id=ids, option_id=ids, vote_id=uuids, key=uuids, created_at=millis)
def test_signing_bytes_are_the_six_lines_of_the_protocol(poll_id, option_id, vote_id, key, created_at):
    lines = signing_bytes(poll_id, option_id, vote_id, key, created_at).decode().split("\n")
    assert lines == ["vote/v1", poll_id, option_id, vote_id, key, str(created_at)]


@given(
    poll_id=ids,
    option_id=ids,
    vote_id=uuids,
    key=uuids,
    created_at=millis,
    seq=st.integers(min_value=1, max_value=2**53),
    seed=st.binary(min_size=32, max_size=32),
)
def test_receipt_round_trips_and_verifies(poll_id, option_id, vote_id, key, created_at, seq, seed):
    voter = SigningKey(seed)
    signed = signing_bytes(poll_id, option_id, vote_id, key, created_at)
    vote = Vote(
        vote_id=vote_id,
        idempotency_key=key,
        poll_id=poll_id,
        option_id=option_id,
        created_at=created_at,
        public_key=b64encode(bytes(voter.verify_key)),
        signature=b64encode(voter.sign(signed).signature),
    )
    server = ReceiptKey(kid="k", signing_key=SigningKey(seed[::-1]))
    receipt = json.loads(issue_receipt(server, vote, seq=seq, accepted_at=created_at))
    keys = [{"kid": "k", "public_key": b64encode(server.public_key)}]
    payload = verify_receipt(receipt, keys, msgspec.to_builtins(vote))
    assert payload["seq"] == seq


@given(st.binary(max_size=80))
def test_base64url_round_trips_without_padding(data):
    text = b64encode(data)
    assert "=" not in text
    assert b64decode(text) == data


@pytest.mark.parametrize("text", ["AA==", "A+/B", "A"])
def test_base64url_rejects_padding_and_other_alphabets(text):
    with pytest.raises(ValueError, match=r".+"):
        b64decode(text)
