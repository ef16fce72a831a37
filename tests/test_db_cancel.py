"""A cancelled write never leaves the workers' file lock held: it waits for the thread that takes it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from app.votes.commit_engine import _finish_even_if_cancelled


async def test_cancelled_caller_still_waits_for_the_thread_and_hands_back_its_result():
    release = threading.Event()
    started = threading.Event()
    handed_back: list[str] = []

    def blocking() -> str:
        started.set()
        release.wait(10)
        return "lock"

    task = asyncio.create_task(_finish_even_if_cancelled(blocking, on_cancel=handed_back.append))
    await asyncio.to_thread(started.wait, 10)
    task.cancel()
    await asyncio.sleep(0)  # one turn of the loop: the cancellation reaches the task
    assert not task.done()  # still waiting for the thread, though cancelled
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert handed_back == ["lock"]  # e.g. the file lock, released instead of leaked
