"""Poll pages opened one after another at once, in every engine: each shows its votes' states.

The worker paints a poll page it has a copy of at once, so a voter going from poll to poll leaves
each page while it is still reading and writing the device's database. WebKit keeps a left page
in its back/forward cache, frozen with its transactions unfinished, and every page opened after
it waited on the database forever: no vote's state, no vote cast (frontend/db.js ends them).
"""

from __future__ import annotations

import pytest

from .lab import EngineLab

pytestmark = [pytest.mark.e2e, pytest.mark.engines]

POLLS = 3
ROUNDS = 3  # each poll page opened again this many times, one right after the other
CONFIRMED = r"^Confirmed · receipt #\d+$"
SHOWN_WITHIN_S = 20.0


def test_poll_pages_opened_one_after_another_show_their_votes(engine_lab: EngineLab) -> None:
    urls = [engine_lab.poll_url(engine_lab.create_poll(f"Question {n}?", ("Red", "Blue"))) for n in range(POLLS)]
    window = engine_lab.new_device().window
    for url in urls:
        window.open(url)
        window.wait_until_offline_ready()
    for url in urls:
        window.open(url)
        window.vote("Red")
        window.wait_for_status(CONFIRMED)
    for _ in range(ROUNDS):
        for url in urls:
            window.open(url)
            window.wait_for_status(CONFIRMED, SHOWN_WITHIN_S)
