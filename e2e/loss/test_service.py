"""The service dies mid-flush and comes back: nothing lost, nothing counted twice."""

from __future__ import annotations

import pytest
from playwright.sync_api import Route, expect

from .lab import SENDS, Lab, receipts_in, votes_in, wait_for

pytestmark = pytest.mark.e2e

BACKLOG = 6  # votes queued offline, one per poll (a device has one vote per poll)


def test_service_killed_mid_flush_loses_nothing_and_counts_nothing_twice(lab: Lab) -> None:
    polls = [lab.create_poll(f"Question {n}?", ("Yes", "No")) for n in range(1, BACKLOG + 1)]
    device = lab.new_device()
    voter = device.open_ready(polls[0])
    for poll in polls[1:]:
        device.open_ready(poll, voter.page)  # so that each page opens offline too
    device.context.set_offline(True)
    for poll in polls:
        voter = device.open(poll, voter.page)
        voter.vote("Yes")
        voter.expect_state("Queued")
    cut_off: dict[str, dict] = {}  # the receipts the service signed but never got to send

    def kill_the_service_during_the_first_send(route: Route) -> None:
        if cut_off:
            route.continue_()  # refused while the service is down
            return
        response = route.fetch()  # the service has committed these votes and signed their receipts
        lab.service.kill()  # SIGKILL before the answer leaves: the device never hears it
        cut_off.update(receipts_in(route.request, response.body()))
        assert len(cut_off) == len(votes_in(route.request))
        route.abort("connectionreset")

    device.context.route(SENDS, kill_the_service_during_the_first_send)

    device.context.set_offline(False)  # the worker starts sending the backlog
    wait_for(voter.page, lambda: bool(cut_off), "the service to be killed mid-flush")
    lab.service.start()
    device.nudge_as_if_reconnected()

    stored = device.settled_votes(BACKLOG)
    assert len(stored["receipts"]) == BACKLOG, stored["outbox"]
    expect(voter.status).to_have_text("Confirmed · receipt #1")
    for receipt in stored["receipts"]:
        if receipt["voteId"] in cut_off:
            assert receipt["receipt"] == cut_off[receipt["voteId"]], "the retry got the receipt signed before the kill"
    assert [lab.results(poll)["total"] for poll in polls] == [1] * BACKLOG
    lab.prove_zero_loss([device], expected_cast=BACKLOG)
