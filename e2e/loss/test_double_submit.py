"""A voter who presses Vote again and again, in two tabs at once, still has one vote, and both
tabs say which one counts."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .lab import Lab

pytestmark = pytest.mark.e2e

ALREADY_VOTED = "This device has already voted in this poll."
CLICK_FIVE_TIMES = "(button) => { for (let i = 0; i < 5; i++) button.click(); }"


def test_rapid_clicks_in_two_tabs_give_one_vote_and_both_tabs_say_which_counts(lab: Lab) -> None:
    poll = lab.create_poll()
    device = lab.new_device()
    red_tab = device.open_ready(poll)
    blue_tab = device.open(poll)
    red_tab.option("Red").check()
    blue_tab.option("Blue").check()

    # Ten submits before either tab has stored its vote: the outbox's transaction keeps one.
    red_tab.vote_button.evaluate(CLICK_FIVE_TIMES)
    blue_tab.vote_button.evaluate(CLICK_FIVE_TIMES)

    expect(red_tab.status).to_have_text("Confirmed · receipt #1")
    expect(blue_tab.status).to_have_text("Confirmed · receipt #1")
    lab.prove_zero_loss([device], expected_cast=1)
    (stored,) = device.stored_votes()["receipts"]
    red_won = stored["optionId"] == poll["options"][0]["id"]
    winner, loser = (red_tab, blue_tab) if red_won else (blue_tab, red_tab)
    # The other tab either tried and was told, or had already closed its form on hearing of the
    # first vote (both tabs share the outbox); the winner's tab is never told it lost.
    expect(winner.page.get_by_text(ALREADY_VOTED)).to_be_hidden()
    # After the confirmation neither tab invites another vote, and both say which one counts.
    counted = f"Your vote for {'Red' if red_won else 'Blue'} is counted."
    for tab in (winner, loser):
        expect(tab.page.get_by_text(counted)).to_be_visible()
        expect(tab.vote_button).to_be_disabled()
    results = lab.results(poll)
    assert results["total"] == 1
    assert {o["label"]: o["votes"] for o in results["options"]} == {"Red": int(red_won), "Blue": int(not red_won)}
