"""Ed25519 for group commits: large batches go to a helper process, small ones stay here.

Checking a vote's signature and signing its receipt cost more CPU than anything else the service
does for it, and the event loop is what limits a worker. A thread cannot help: libsodium
releases the GIL, but taking it back after every call waits for the busy loop (32 checks took
7 ms instead of 2 while the loop was busy). So a whole batch goes, in one message, to a helper
process (app/crypto_worker.py) on another core, and the loop serves HTTP meanwhile. A batch too
small to repay the round trip, or any trouble with the helper, means doing the work here
instead: the answer is the same either way, only where the CPU is spent differs.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

import msgspec

from app.keys import ReceiptKey
from app.protocol import SIGNATURE_BYTES, Ballot

MIN_REMOTE_BATCH = 8  # below this the round trip costs about what it saves
# Signing waits inside the open transaction, behind any check already on the pipe: worth it only
# for batches as large as the batch endpoint's.
MIN_REMOTE_SIGN = 100
HELPER_TIMEOUT_S = 10.0

log = logging.getLogger("app.crypto_helper")
_encode = msgspec.msgpack.Encoder().encode


def forged_here(ballots: Sequence[Ballot]) -> set[int]:
    return {index for index, ballot in enumerate(ballots) if not ballot.signature_verifies()}


class CryptoHelper:
    def __init__(
        self,
        *,
        use_helper: bool = True,
        min_remote_batch: int = MIN_REMOTE_BATCH,
        min_remote_sign: int = MIN_REMOTE_SIGN,
    ) -> None:
        self.use_helper = use_helper
        self.min_remote_batch = min_remote_batch
        self.min_remote_sign = min_remote_sign
        self._helper: asyncio.subprocess.Process | None = None
        self._starting: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def helper_pid(self) -> int | None:
        return None if self._helper is None else self._helper.pid

    async def forged(self, ballots: Sequence[Ballot]) -> set[int]:
        """The positions of the ballots whose signature does not verify."""
        if self._usable(len(ballots), self.min_remote_batch):
            items = [(b.public_key, b.signed, b.signature) for b in ballots]
            answer = await self._ask(["verify", items], len(ballots))
            if answer is not None:
                return {index for index, ok in enumerate(answer) if not ok}
        return forged_here(ballots)

    async def sign(self, key: ReceiptKey, payloads: Sequence[bytes]) -> list[bytes]:
        """The receipt key's signature of each payload."""
        if self._usable(len(payloads), self.min_remote_sign):
            answer = await self._ask(["sign", bytes(key.signing_key), list(payloads)], SIGNATURE_BYTES * len(payloads))
            if answer is not None:
                return [answer[i : i + SIGNATURE_BYTES] for i in range(0, len(answer), SIGNATURE_BYTES)]
        return [key.sign(payload) for payload in payloads]

    async def start(self) -> None:
        """Starts the helper process; the first large batch also does, in the background."""
        if self._helper is None and self.use_helper:
            await asyncio.shield(self._spawn_soon())

    async def close(self) -> None:
        helper, self._helper = self._helper, None
        if helper is not None and helper.returncode is None:
            helper.kill()
            await helper.wait()

    def _usable(self, size: int, threshold: int) -> bool:
        if not self.use_helper or size < threshold:
            return False
        if self._helper is None:
            self._spawn_soon()  # until it is up, batches are done here
            return False
        return True

    def _spawn_soon(self) -> asyncio.Task[None]:
        if self._starting is None or self._starting.done():
            self._starting = asyncio.create_task(self._spawn())
        return self._starting

    async def _spawn(self) -> None:
        try:
            helper = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "app.crypto_worker", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
            )
        except OSError as error:
            log.warning("cannot start the crypto helper (%s); doing its work here", error)
            self.use_helper = False
            return
        self._helper = helper

    async def _ask(self, request: list, expected_bytes: int) -> bytes | None:
        """The helper's answer, or None (after restarting it) if it failed to give one."""
        try:
            return await asyncio.wait_for(self._exchange(request, expected_bytes), HELPER_TIMEOUT_S)
        except (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError) as error:
            log.warning("crypto helper failed (%s); doing its work here and starting a new one", error)
            await self.close()
            return None

    async def _exchange(self, request: list, expected_bytes: int) -> bytes:
        helper = self._helper
        if helper is None or helper.stdin is None or helper.stdout is None:
            raise EOFError("the helper was stopped meanwhile")  # another request saw it fail
        payload = _encode(request)
        async with self._lock:  # one request on the pipe at a time: answers come in order
            helper.stdin.write(len(payload).to_bytes(4, "big") + payload)
            await helper.stdin.drain()
            length = int.from_bytes(await helper.stdout.readexactly(4), "big")
            answer = await helper.stdout.readexactly(length)
        if len(answer) != expected_bytes:
            raise EOFError(f"the helper answered {len(answer)} bytes, not {expected_bytes}")
        return answer
