"""Ed25519 for group commits: batches go to a helper process, in one message each.

Checking a vote's signature and signing its receipt cost more CPU than anything else the service
does for it, and the event loop is what limits a worker. A thread cannot help: libsodium
releases the GIL, but taking it back after every call waits for the busy loop (32 checks took
7 ms instead of 2 while the loop was busy). So a batch goes, in one message, to a helper process
(app/core/helper_process.py) on another core, and the loop serves HTTP meanwhile. A batch too small
to repay the message, or any trouble with the helper, means doing the work here instead: the
answer is the same either way, only where the CPU is spent differs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from app.core.helper_process import HELPER_TIMEOUT_S, HelperProcess, done_here
from app.core.keys import ReceiptKey
from app.core.protocol import SIGNATURE_BYTES, Ballot
from app.votes import helper_worker

MIN_REMOTE_BATCH = 2  # a lone vote is checked here: one message costs the loop about half a check
# Signing waits inside the open transaction, behind the checks already on the pipe (at most a few
# messages of app.votes.group_commit.CHECK_CHUNK_VOTES each); it frees the loop, which limits a worker.
MIN_REMOTE_SIGN = 8


def forged_here(ballots: Sequence[Ballot]) -> set[int]:
    return {index for index, ballot in enumerate(ballots) if not ballot.signature_verifies()}


def _forged_from(answer: bytes) -> set[int]:
    return {index for index, ok in enumerate(answer) if not ok}


def _signatures_from(answer: bytes) -> list[bytes]:
    return [answer[i : i + SIGNATURE_BYTES] for i in range(0, len(answer), SIGNATURE_BYTES)]


class CryptoHelper:
    def __init__(
        self,
        *,
        use_helper: bool = True,
        min_remote_batch: int = MIN_REMOTE_BATCH,
        min_remote_sign: int = MIN_REMOTE_SIGN,
        timeout_s: float = HELPER_TIMEOUT_S,
    ) -> None:
        self.min_remote_batch = min_remote_batch
        self.min_remote_sign = min_remote_sign
        self.process = HelperProcess("crypto", helper_worker.MODULE, enabled=use_helper, timeout_s=timeout_s)

    @property
    def helper_pid(self) -> int | None:
        return self.process.pid

    def check(self, ballots: Sequence[Ballot]) -> asyncio.Future[set[int]]:
        """The positions of the ballots whose signature does not verify, once known.

        Sent at once; the future never fails: if the helper does, the check is done here."""
        batch = list(ballots)

        def here(future: asyncio.Future[set[int]]) -> None:
            future.set_result(forged_here(batch))

        if len(batch) < self.min_remote_batch:
            return done_here(here)
        request = ["verify", [(b.public_key, b.signed, b.signature) for b in batch]]
        return self.process.submit(request, expected_bytes=len(batch), parse=_forged_from, fallback=here)

    async def sign(self, key: ReceiptKey, payloads: Sequence[bytes]) -> list[bytes]:
        """The receipt key's signature of each payload."""
        batch = list(payloads)

        def here(future: asyncio.Future[list[bytes]]) -> None:
            future.set_result([key.sign(payload) for payload in batch])

        if len(batch) < self.min_remote_sign:
            return await done_here(here)
        request = ["sign", bytes(key.signing_key), batch]
        return await self.process.submit(
            request, expected_bytes=SIGNATURE_BYTES * len(batch), parse=_signatures_from, fallback=here
        )

    async def start(self) -> None:
        """Starts the helper process; the first large batch also does, in the background."""
        await self.process.start()

    async def close(self) -> None:
        await self.process.close()
