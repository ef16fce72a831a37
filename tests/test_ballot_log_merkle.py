"""RFC 6962 hashes and proofs, C2SP tiles and signed notes: published vectors, and an independent
implementation (pymerkle) as an oracle over random trees."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey
from pymerkle import InmemoryTree

from app.ballot_log import merkle, tiles
from app.ballot_log.checkpoint import Checkpoint, open_checkpoint
from app.ballot_log.note import NoteError, Verifier, open_note, sign

VECTORS = Path(__file__).parent / "vectors"
RFC = json.loads((VECTORS / "rfc6962.json").read_text())
LEAVES = [bytes.fromhex(h) for h in RFC["leaves_hex"]]
ROOTS = [bytes.fromhex(h) for h in RFC["roots_hex"]]
LEAF_HASHES = [merkle.leaf_hash(leaf) for leaf in LEAVES]


def test_roots_match_the_rfc_6962_vectors():
    assert merkle.root_of([]) == bytes.fromhex(RFC["empty_root_hex"])
    for size in range(1, 9):
        assert merkle.root_of(LEAF_HASHES[:size]) == ROOTS[size - 1]


@pytest.mark.parametrize("case", RFC["inclusion"], ids=lambda c: f"{c['leaf']}-of-{c['size']}")
def test_inclusion_proofs_match_the_vectors_and_verify(case):
    index, size = case["leaf"] - 1, case["size"]
    proof = [bytes.fromhex(h) for h in case["proof_hex"]]
    assert merkle.inclusion_proof(index, LEAF_HASHES[:size]) == proof
    merkle.verify_inclusion(index, size, LEAF_HASHES[index], proof, ROOTS[size - 1])
    for bad in (proof[:-1], [*proof, ROOTS[0]], [bytes([p[0] ^ 8]) + p[1:] for p in proof[:1]] + proof[1:]):
        if bad != proof:
            with pytest.raises(merkle.ProofError):
                merkle.verify_inclusion(index, size, LEAF_HASHES[index], bad, ROOTS[size - 1])
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(index, size, LEAF_HASHES[index], proof, merkle.EMPTY_ROOT)


@pytest.mark.parametrize("case", RFC["consistency"], ids=lambda c: f"{c['size1']}-to-{c['size2']}")
def test_consistency_proofs_match_the_vectors_and_verify(case):
    size1, size2 = case["size1"], case["size2"]
    proof = [bytes.fromhex(h) for h in case["proof_hex"]]
    assert merkle.consistency_proof(size1, LEAF_HASHES[:size2]) == proof
    merkle.verify_consistency(size1, size2, proof, ROOTS[size1 - 1], ROOTS[size2 - 1])
    if proof:
        for bad in (proof[:-1], [*proof, ROOTS[0]], [proof[0], *proof], [bytes([proof[0][0] ^ 16]) + proof[0][1:]]):
            with pytest.raises(merkle.ProofError):
                merkle.verify_consistency(size1, size2, bad, ROOTS[size1 - 1], ROOTS[size2 - 1])
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(size1, size2, proof, ROOTS[size2 - 1], ROOTS[size1 - 1])


def test_two_roots_for_one_size_is_a_fork():
    with pytest.raises(merkle.ProofError, match="forked"):
        merkle.verify_consistency(3, 3, [], ROOTS[2], ROOTS[3])


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 1200), st.binary(max_size=8), st.data())
def test_roots_and_proofs_agree_with_pymerkle(size, salt, data):
    entries = [salt + index.to_bytes(4, "big") for index in range(size)]
    oracle = InmemoryTree(algorithm="sha256")
    for entry in entries:
        oracle.append_entry(entry)
    hashes = [merkle.leaf_hash(e) for e in entries]
    assert merkle.root_of(hashes) == oracle.get_root()
    # The tiles' right edge, grown in random steps, reaches the same root.
    stored: dict[tuple[int, int], bytes] = {}
    at = 0
    while at < len(hashes):
        step = data.draw(st.integers(1, 300))
        edge = tiles.TreeEdge(at, lambda level, index: stored[(level, index)])
        edge.append(hashes[at : at + step])
        stored.update(edge.changed)
        at = min(len(hashes), at + step)
        assert edge.root() == oracle.get_root(at)
        assert {tiles.TileId(lvl, idx, len(h) // 32): h for (lvl, idx), h in stored.items()} == tiles.all_tiles(
            hashes[:at]
        )
    index = data.draw(st.integers(0, len(hashes) - 1))
    merkle.verify_inclusion(index, len(hashes), hashes[index], merkle.inclusion_proof(index, hashes), oracle.get_root())
    older = data.draw(st.integers(1, len(hashes)))
    merkle.verify_consistency(
        older, len(hashes), merkle.consistency_proof(older, hashes), oracle.get_root(older), oracle.get_root()
    )


def test_tile_paths_follow_tlog_tiles():
    assert tiles.encode_index(1234067) == "x001/x234/067"
    assert tiles.encode_index(5) == "005"
    assert tiles.TileId(0, 1234067).path == "tile/0/x001/x234/067"
    assert tiles.TileId("entries", 3, 17).path == "tile/entries/003.p/17"
    assert tiles.parse_tile_path("1/x001/x234/067.p/255") == tiles.TileId(1, 1234067, 255)
    for bad in ("01/000", "0/5", "0/000.p/0", "0/000.p/256", "0/000.p/007", "64/000", "0/x000/001", "0/000/", "x/000"):
        assert tiles.parse_tile_path(bad) is None, bad


def test_tile_counts_follow_the_specifications_example():
    counted = tiles.tiles_for_size(70_000)
    full0 = [t for t in counted if t.level == 0 and t.width == 256]
    assert len(full0) == 273
    partial = sorted((t.level, t.width) for t in counted if t.width < 256)
    assert partial == [(0, 112), (1, 17), (2, 1)]
    assert [t for t in counted if t.level == 1 and t.width == 256] == [tiles.TileId(1, 0)]
    assert tiles.tiles_for_size(256) == [tiles.TileId(0, 0), tiles.TileId(1, 0, 1)]


def test_the_signed_note_example_verifies():
    vector = json.loads((VECTORS / "signed-note.json").read_text())
    verifier = Verifier.parse(vector["vkey"])
    assert verifier.vkey == vector["vkey"]
    assert open_note(vector["note"].encode(), [verifier]) == vector["text"]
    tampered = vector["note"].replace("example message", "example massage").encode()
    with pytest.raises(NoteError, match="does not verify"):
        open_note(tampered, [verifier])


def test_a_checkpoint_needs_a_known_key():
    key, other = SigningKey(os.urandom(32)), SigningKey(os.urandom(32))
    checkpoint = Checkpoint("vote.example/polls/demo", 8, ROOTS[7])
    note = sign(checkpoint.text(), "vote.example/polls", key).encode()
    assert open_checkpoint(note, [Verifier.of("vote.example/polls", bytes(key.verify_key))]) == checkpoint
    with pytest.raises(NoteError, match="not signed by a known log key"):
        open_checkpoint(note, [Verifier.of("vote.example/polls", bytes(other.verify_key))])
    with pytest.raises(NoteError, match=r"not 'vote\.example/polls/other'"):
        open_checkpoint(note, [Verifier.of("vote.example/polls", bytes(key.verify_key))], "vote.example/polls/other")


def test_the_entry_vector_is_the_vote_vector_in_canonical_form():
    from app.ballot_log.entries import bundle, decode_entry, entry_of_row
    from app.core.protocol import b64url_checked, ballot_hash, signing_bytes

    vector = json.loads((VECTORS / "ballot-log-entry.json").read_text())
    vote = json.loads((VECTORS / "vote-v1.json").read_text())
    fields = vote["vote"]
    encoded = entry_of_row(
        fields["poll_id"], fields["option_id"], fields["vote_id"], fields["idempotency_key"], fields["created_at"],
        b64url_checked(fields["public_key"]), b64url_checked(fields["signature"]),
    )  # fmt: skip
    assert encoded == vector["entry"].encode()
    assert merkle.leaf_hash(encoded).hex() == vector["leaf_hash_hex"]
    assert bundle([encoded]).hex() == vector["bundle_hex"]
    entry = decode_entry(encoded)
    assert entry.signature_verifies()
    signed = signing_bytes(entry.poll_id, entry.option_id, entry.vote_id, entry.idempotency_key, entry.created_at)
    assert ballot_hash(signed, b64url_checked(entry.signature)) == vote["ballot_hash"]
    spaced = vector["entry"].replace(",", ", ").encode()
    with pytest.raises(ValueError, match="canonical"):
        decode_entry(spaced)
