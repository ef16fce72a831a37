"""A child process that does blocking or CPU-heavy work for the event loop, with pipelined requests.

Each request is written at once and answers come back in order, straight into the request's
future from the pipe's callback: no lock, no task, no thread per request. Every hop through the
event loop's queue waits behind a whole round of HTTP work, and a thread's result waits for the
GIL, which the busy loop holds; the group commit's latency is made of such waits.

Each helper is a module run as `python -m MODULE` that answers with `serve` below: the vote path's
(app/votes/helper_worker.py) and the ballot log's sequencer (app/ballot_log/integrator.py). Wire
format: a request is a 4-byte big-endian length and a
msgpack array; an answer is a 4-byte length and its bytes. Any trouble with the process (dead,
hung, a wrong-sized answer) means each request in flight is done by its fallback instead, and a
new process is started for later requests: the answers are the same either way.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import msgspec

HELPER_TIMEOUT_S = 10.0
_STDIN, _STDOUT = 0, 1

log = logging.getLogger(__name__)
_encode = msgspec.msgpack.Encoder().encode

Fallback = Callable[[asyncio.Future[Any]], None]
"""Resolves the future in this process, should the helper fail to answer."""


@dataclass(slots=True)
class _Request:
    future: asyncio.Future[Any]
    expected_bytes: int | None  # None: an answer of any length
    parse: Callable[[bytes], Any]
    fallback: Fallback
    timer: asyncio.TimerHandle | None = None

    def answer(self, data: bytes) -> None:
        self._stop_timer()
        if not self.future.done():
            self.future.set_result(self.parse(data))

    def answer_here(self) -> None:
        self._stop_timer()
        if not self.future.done():
            self.fallback(self.future)

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


class _Process(asyncio.SubprocessProtocol):
    """One helper process: writes requests, matches answers to them in order."""

    def __init__(self, on_failure: Callable[[_Process, str], None]) -> None:
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
            expected = self.in_flight[0].expected_bytes
            if expected is not None and length != expected:
                self.on_failure(self, f"{length} bytes answered, {expected} expected")
                return
            self.in_flight.popleft().answer(answer)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self.on_failure(self, f"its pipe closed ({exc or 'EOF'})")

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)
        self.on_failure(self, "it exited")

    def stop(self) -> None:
        """Kills the process; whatever was in flight is done by its fallback."""
        self.failed = True
        for pending in self.in_flight:
            pending.answer_here()
        self.in_flight.clear()
        if self.transport is not None and not self.transport.is_closing():
            if self.transport.get_returncode() is None:
                self.transport.kill()
            self.transport.close()


def copy_outcome(source: asyncio.Future[Any], target: asyncio.Future[Any]) -> None:
    """Settles `target` as `source` was settled (a fallback's work done on a thread)."""
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif source.exception() is not None:
        target.set_exception(source.exception())  # type: ignore[arg-type]
    else:
        target.set_result(source.result())


def done_here(fallback: Fallback) -> asyncio.Future[Any]:
    """A future resolved by `fallback`, for work too small to send."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    fallback(future)
    return future


class HelperProcess:
    """Starts `python -m MODULE` on first use (and again after any failure)."""

    def __init__(self, name: str, module: str, *, enabled: bool = True, timeout_s: float = HELPER_TIMEOUT_S) -> None:
        self.name = name
        self.module = module
        self.enabled = enabled
        self.timeout_s = timeout_s
        self._process: _Process | None = None
        self._starting: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        if self._process is None or self._process.transport is None:
            return None
        return self._process.transport.get_pid()

    def submit(
        self, request: list, *, expected_bytes: int | None, parse: Callable[[bytes], Any], fallback: Fallback
    ) -> asyncio.Future[Any]:
        """Sends `request` now; the future resolves with `parse(answer)`, or by `fallback` if the
        process is not up yet or fails to answer."""
        loop = asyncio.get_running_loop()
        pending = _Request(loop.create_future(), expected_bytes, parse, fallback)
        process = self._usable()
        if process is None:
            pending.answer_here()
            return pending.future
        try:
            process.send(request, pending)
        except (ConnectionError, OSError, RuntimeError) as error:
            self._failed(process, str(error))
            pending.answer_here()
            return pending.future
        pending.timer = loop.call_later(self.timeout_s, self._timed_out, process, pending)
        return pending.future

    async def start(self) -> None:
        """Starts the process now; the first request also does, in the background."""
        if self._process is None and self.enabled:
            await asyncio.shield(self._spawn_soon())

    async def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.stop()
            await asyncio.wait([process.exited], timeout=self.timeout_s)

    def _usable(self) -> _Process | None:
        if not self.enabled:
            return None
        if self._process is None:
            self._spawn_soon()  # until it is up, requests are done by their fallbacks
        return self._process

    def _timed_out(self, process: _Process, pending: _Request) -> None:
        if not pending.future.done():
            self._failed(process, f"no answer within {self.timeout_s:g} s")

    def _failed(self, process: _Process, reason: str) -> None:
        if process.failed:
            return
        if process is self._process:
            log.warning("%s helper failed (%s); doing its work here and starting a new one", self.name, reason)
            self._process = None
        process.stop()

    def _spawn_soon(self) -> asyncio.Task[None]:
        if self._starting is None or self._starting.done():
            self._starting = asyncio.create_task(self._spawn())
        return self._starting

    async def _spawn(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, process = await loop.subprocess_exec(
                lambda: _Process(self._failed),
                sys.executable,
                "-m",
                self.module,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=None,
            )
        except OSError as error:
            log.warning("cannot start the %s helper (%s); doing its work here", self.name, error)
            self.enabled = False
            return
        self._process = process


def serve(answer: Callable[[list], bytes], requests: BinaryIO, answers: BinaryIO) -> None:
    """The helper's side: answers each request in order until its stdin closes."""
    while header := requests.read(4):
        result = answer(msgspec.msgpack.decode(requests.read(int.from_bytes(header, "big"))))
        answers.write(len(result).to_bytes(4, "big") + result)
        answers.flush()
