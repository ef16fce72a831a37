"""Signature checks in the helper process give exactly the answers of checks made in the service."""

from __future__ import annotations

import os
import signal

import msgspec
import pytest

from app.protocol import Ballot, Vote
from app.verifier import SignatureVerifier, forged_here
from tests.helpers import Voter

FORGED = {2, 7, 11}


def ballots(count: int, forged: set[int]) -> list[Ballot]:
    result = []
    for index in range(count):
        vote = Voter().vote("poll", "yes")
        if index in forged:
            vote = {**vote, "signature": Voter().vote("poll", "yes")["signature"]}  # signed by someone else
        result.append(Ballot.of(msgspec.convert(vote, Vote)))
    return result


@pytest.fixture
async def verifier():
    verifier = SignatureVerifier(min_remote_batch=4)
    await verifier.start()
    yield verifier
    await verifier.close()


async def test_helper_finds_exactly_the_forged_signatures(verifier):
    batch = ballots(16, FORGED)
    assert await verifier.forged(batch) == FORGED == forged_here(batch)
    assert await verifier.forged(batch[:3]) == {2}  # below the threshold: checked in the service


async def test_a_dead_helper_costs_no_answer_and_is_replaced(verifier):
    batch = ballots(16, FORGED)
    first = verifier.helper_pid
    os.kill(first, signal.SIGKILL)
    assert await verifier.forged(batch) == FORGED  # checked in the service this time
    assert await verifier.forged(batch) == FORGED  # and while the next helper starts
    await verifier.start()
    assert verifier.helper_pid not in (None, first)
    assert await verifier.forged(batch) == FORGED
