"""Signature checks for group commits: large batches go to a helper process, small ones stay here.

Verifying a vote costs more CPU than anything else the service does for it, and the event loop
is what limits a worker. A thread cannot help: libsodium releases the GIL, but taking it back
after every signature waits for the busy loop (bench/ingest.py measured 32 checks taking 7 ms
instead of 2). So a batch of votes goes, in one message, to a helper process
(app/verify_worker.py) on another core, and the loop serves HTTP meanwhile. A batch too small
to repay the round trip, or any trouble with the helper, means checking here instead: the
answer is the same either way, only where the CPU is spent differs.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

import msgspec

from app.protocol import Ballot

MIN_REMOTE_BATCH = 8  # below this the round trip costs about what it saves
HELPER_TIMEOUT_S = 10.0

log = logging.getLogger("app.verifier")
_encode = msgspec.msgpack.Encoder().encode


def forged_here(ballots: Sequence[Ballot]) -> set[int]:
    return {index for index, ballot in enumerate(ballots) if not ballot.signature_verifies()}


class SignatureVerifier:
    def __init__(self, *, use_helper: bool = True, min_remote_batch: int = MIN_REMOTE_BATCH) -> None:
        self.use_helper = use_helper
        self.min_remote_batch = min_remote_batch
        self._helper: asyncio.subprocess.Process | None = None
        self._starting: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def forged(self, ballots: Sequence[Ballot]) -> set[int]:
        """The positions of the ballots whose signature does not verify."""
        if not self.use_helper or len(ballots) < self.min_remote_batch:
            return forged_here(ballots)
        if self._helper is None:
            # Start it in the background; until it is up, batches are checked here.
            self._spawn_soon()
            return forged_here(ballots)
        try:
            return await asyncio.wait_for(self._ask(ballots), HELPER_TIMEOUT_S)
        except (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError) as error:
            log.warning("signature helper failed (%s); checking here and starting a new one", error)
            await self.close()
            return forged_here(ballots)

    async def close(self) -> None:
        helper, self._helper = self._helper, None
        if helper is not None and helper.returncode is None:
            helper.kill()
            await helper.wait()

    @property
    def helper_pid(self) -> int | None:
        return None if self._helper is None else self._helper.pid

    async def start(self) -> None:
        """Starts the helper process; forged() also does, in the background, when it needs one."""
        if self._helper is None and self.use_helper:
            await asyncio.shield(self._spawn_soon())

    def _spawn_soon(self) -> asyncio.Task[None]:
        if self._starting is None or self._starting.done():
            self._starting = asyncio.create_task(self._spawn())
        return self._starting

    async def _spawn(self) -> None:
        try:
            helper = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "app.verify_worker", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
            )
        except OSError as error:
            log.warning("cannot start the signature helper (%s); checking signatures here", error)
            self.use_helper = False
            return
        self._helper = helper

    async def _ask(self, ballots: Sequence[Ballot]) -> set[int]:
        helper = self._helper
        assert helper is not None
        assert helper.stdin is not None
        assert helper.stdout is not None
        payload = _encode([(b.public_key, b.signed, b.signature) for b in ballots])
        async with self._lock:  # one batch on the pipe at a time: answers come in order
            helper.stdin.write(len(payload).to_bytes(4, "big") + payload)
            await helper.stdin.drain()
            length = int.from_bytes(await helper.stdout.readexactly(4), "big")
            answer = await helper.stdout.readexactly(length)
        if len(answer) != len(ballots):
            raise EOFError(f"the helper answered {len(answer)} checks for {len(ballots)} signatures")
        return {index for index, ok in enumerate(answer) if not ok}
