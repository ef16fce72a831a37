"""The crypto helper process gives exactly the answers the service would compute itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal

import msgspec
import pytest
from nacl.signing import SigningKey

from app.core.keys import ReceiptKey
from app.core.protocol import Ballot, Vote
from app.votes.crypto import CryptoHelper, forged_here
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
async def helper():
    helper = CryptoHelper(min_remote_batch=4, min_remote_sign=4)
    await helper.start()
    yield helper
    await helper.close()


async def test_helper_finds_exactly_the_forged_signatures(helper):
    batch = ballots(16, FORGED)
    assert await helper.check(batch) == FORGED == forged_here(batch)
    assert await helper.check(batch[:3]) == {2}  # below the threshold: checked in the service


async def test_a_dead_helper_costs_no_answer_and_is_replaced(helper):
    batch = ballots(16, FORGED)
    first = helper.helper_pid
    os.kill(first, signal.SIGKILL)
    assert await helper.check(batch) == FORGED  # checked in the service this time
    assert await helper.check(batch) == FORGED  # and while the next helper starts
    await helper.start()
    assert helper.helper_pid not in (None, first)
    assert await helper.check(batch) == FORGED


async def test_helper_signs_receipts_exactly_as_the_service_would(helper):
    key = ReceiptKey(kid="k1", signing_key=SigningKey.generate())
    payloads = [f"receipt payload {i}".encode() for i in range(12)]
    signatures = await helper.sign(key, payloads)
    assert signatures == [key.sign(p) for p in payloads]  # Ed25519 signatures are deterministic
    for payload, signature in zip(payloads, signatures, strict=True):
        key.signing_key.verify_key.verify(payload, signature)


async def test_requests_in_flight_together_each_get_their_own_answer(helper):
    batches = [ballots(8, {1}), ballots(8, set()), ballots(8, {0, 7})]
    key = ReceiptKey(kid="k1", signing_key=SigningKey.generate())
    payloads = [f"payload {i}".encode() for i in range(6)]
    # All written to the pipe before the first answer comes back; answers come in order.
    checks = [helper.check(batch) for batch in batches]
    signatures = helper.sign(key, payloads)
    assert await asyncio.gather(*checks) == [{1}, set(), {0, 7}]
    assert await signatures == [key.sign(p) for p in payloads]


async def test_a_hung_helper_is_replaced_and_its_work_done_here():
    helper = CryptoHelper(min_remote_batch=4, timeout_s=0.5)
    await helper.start()
    hung = helper.helper_pid
    try:
        os.kill(hung, signal.SIGSTOP)
        async with asyncio.timeout(5):  # the helper's own timeout is 0.5 s
            assert await helper.check(ballots(16, FORGED)) == FORGED  # checked here instead
        await helper.start()
        assert helper.helper_pid not in (None, hung)
        assert await helper.check(ballots(16, FORGED)) == FORGED
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(hung, signal.SIGKILL)
        await helper.close()
