"""Ed25519 for group commits: batches go to a helper process, in one message each.

Checking a vote's signature and signing its receipt cost more CPU than anything else the service
does for it, and the event loop is what limits a worker. A thread cannot help: libsodium
releases the GIL, but taking it back after every call waits for the busy loop (32 checks took
7 ms instead of 2 while the loop was busy). So a batch goes, in one message, to a helper process
(app/crypto_worker.py) on another core, and the loop serves HTTP meanwhile.

Requests are pipelined: each is written at once and answers come back in order, straight into
the request's future from the pipe's callback. No lock, no task per request: every hop through
the event loop's queue waits behind a whole round of HTTP work, and the group commit's latency
is made of such hops. A batch too small to repay the message, or any trouble with the helper
(dead, hung, a short answer), means doing the work here instead: the answer is the same either
way, only where the CPU is spent differs.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from app.keys import ReceiptKey
from app.protocol import SIGNATURE_BYTES, Ballot

MIN_REMOTE_BATCH = 2  # a lone vote is checked here: one message costs the loop about half a check
# Signing waits inside the open transaction, behind any checks already on the pipe: worth it only
# for batches as large as the batch endpoint's.
MIN_REMOTE_SIGN = 100
HELPER_TIMEOUT_S = 10.0
_STDIN, _STDOUT = 0, 1

log = logging.getLogger("app.crypto_helper")
_encode = msgspec.msgpack.Encoder().encode


def forged_here(ballots: Sequence[Ballot]) -> set[int]:
    return {index for index, ballot in enumerate(ballots) if not ballot.signature_verifies()}


def _forged_from(answer: bytes) -> set[int]:
    return {index for index, ok in enumerate(answer) if not ok}


def _signatures_from(answer: bytes) -> list[bytes]:
    return [answer[i : i + SIGNATURE_BYTES] for i in range(0, len(answer), SIGNATURE_BYTES)]


@dataclass(slots=True)
class _Request:
    future: asyncio.Future[Any]
    expected_bytes: int
    parse: Callable[[bytes], Any]
    here: Callable[[], Any]
    """Computes the same answer in this process, should the helper fail to give it."""
    timer: asyncio.TimerHandle | None = None

    def answer(self, data: bytes) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if not self.future.done():
            self.future.set_result(self.parse(data))

    def answer_here(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if not self.future.done():
            self.future.set_result(self.here())


class _Helper(asyncio.SubprocessProtocol):
    """One helper process: writes requests, matches answers to them in order."""

    def __init__(self, on_failure: Callable[[_Helper, str], None]) -> None:
        self.on_failure = on_failure
        self.transport: asyncio.SubprocessTransport | None = None
        self.in_flight: deque[_Request] = deque()
        self.failed = False
        self.exited: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: list, pending: _Request) -> None:
        assert self.transport is not None
        stdin = self.transport.get_pipe_transport(_STDIN)
        if stdin is None or stdin.is_closing():
            raise ConnectionError("the helper's stdin is closed")
        payload = _encode(request)
        stdin.write(len(payload).to_bytes(4, "big") + payload)
        self.in_flight.append(pending)

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd != _STDOUT or self.failed:
            return
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 4:
            length = int.from_bytes(buffer[:4], "big")
            if len(buffer) < 4 + length:
                break
            answer = bytes(buffer[4 : 4 + length])
            del buffer[: 4 + length]
            if not self.in_flight:
                self.on_failure(self, "an answer nobody asked for")
                return
            pending = self.in_flight.popleft()
            if length != pending.expected_bytes:
                self.in_flight.appendleft(pending)
                self.on_failure(self, f"{length} bytes answered, {pending.expected_bytes} expected")
                return
            pending.answer(answer)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self.on_failure(self, f"its pipe closed ({exc or 'EOF'})")

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)
        self.on_failure(self, "it exited")

    def stop(self) -> None:
        """Kills the process; whatever was in flight is answered here."""
        self.failed = True
        for pending in self.in_flight:
            pending.answer_here()
        self.in_flight.clear()
        if self.transport is not None and not self.transport.is_closing():
            if self.transport.get_returncode() is None:
                self.transport.kill()
            self.transport.close()


class CryptoHelper:
    def __init__(
        self,
        *,
        use_helper: bool = True,
        min_remote_batch: int = MIN_REMOTE_BATCH,
        min_remote_sign: int = MIN_REMOTE_SIGN,
        timeout_s: float = HELPER_TIMEOUT_S,
    ) -> None:
        self.use_helper = use_helper
        self.min_remote_batch = min_remote_batch
        self.min_remote_sign = min_remote_sign
        self.timeout_s = timeout_s
        self._helper: _Helper | None = None
        self._starting: asyncio.Task[None] | None = None

    @property
    def helper_pid(self) -> int | None:
        if self._helper is None or self._helper.transport is None:
            return None
        return self._helper.transport.get_pid()

    def check(self, ballots: Sequence[Ballot]) -> asyncio.Future[set[int]]:
        """The positions of the ballots whose signature does not verify, once known.

        Sent at once; the future never fails: if the helper does, the check is done here."""
        batch = list(ballots)
        return self._submit(
            ["verify", [(b.public_key, b.signed, b.signature) for b in batch]],
            size=len(batch),
            threshold=self.min_remote_batch,
            expected_bytes=len(batch),
            parse=_forged_from,
            here=lambda: forged_here(batch),
        )

    async def forged(self, ballots: Sequence[Ballot]) -> set[int]:
        return await self.check(ballots)

    async def sign(self, key: ReceiptKey, payloads: Sequence[bytes]) -> list[bytes]:
        """The receipt key's signature of each payload."""
        batch = list(payloads)
        return await self._submit(
            ["sign", bytes(key.signing_key), batch],
            size=len(batch),
            threshold=self.min_remote_sign,
            expected_bytes=SIGNATURE_BYTES * len(batch),
            parse=_signatures_from,
            here=lambda: [key.sign(payload) for payload in batch],
        )

    async def start(self) -> None:
        """Starts the helper process; the first large batch also does, in the background."""
        if self._helper is None and self.use_helper:
            await asyncio.shield(self._spawn_soon())

    async def close(self) -> None:
        helper, self._helper = self._helper, None
        if helper is not None:
            helper.stop()
            await asyncio.wait([helper.exited], timeout=self.timeout_s)

    def _submit(
        self,
        request: list,
        *,
        size: int,
        threshold: int,
        expected_bytes: int,
        parse: Callable[[bytes], Any],
        here: Callable[[], Any],
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        pending = _Request(loop.create_future(), expected_bytes, parse, here)
        helper = self._usable(size, threshold)
        if helper is None:
            pending.answer_here()
            return pending.future
        try:
            helper.send(request, pending)
        except (ConnectionError, OSError, RuntimeError) as error:
            self._failed(helper, str(error))
            pending.answer_here()
            return pending.future
        pending.timer = loop.call_later(self.timeout_s, self._timed_out, helper, pending)
        return pending.future

    def _usable(self, size: int, threshold: int) -> _Helper | None:
        if not self.use_helper or size < threshold:
            return None
        if self._helper is None:
            self._spawn_soon()  # until it is up, batches are done here
            return None
        return self._helper

    def _timed_out(self, helper: _Helper, pending: _Request) -> None:
        if not pending.future.done():
            self._failed(helper, f"no answer within {self.timeout_s:g} s")

    def _failed(self, helper: _Helper, reason: str) -> None:
        if helper.failed:
            return
        if helper is self._helper:
            log.warning("crypto helper failed (%s); doing its work here and starting a new one", reason)
            self._helper = None
        helper.stop()

    def _spawn_soon(self) -> asyncio.Task[None]:
        if self._starting is None or self._starting.done():
            self._starting = asyncio.create_task(self._spawn())
        return self._starting

    async def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, helper = await loop.subprocess_exec(
                lambda: _Helper(self._failed),
                sys.executable,
                "-m",
                "app.crypto_worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=None,
            )
        except OSError as error:
            log.warning("cannot start the crypto helper (%s); doing its work here", error)
            self.use_helper = False
            return
        self._helper = helper
