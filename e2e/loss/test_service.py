"""The service dies mid-flush and comes back: nothing lost, nothing counted twice."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Route, expect

from .lab import VOTES, Lab, wait_for

pytestmark = pytest.mark.e2e

BACKLOG = 6  # votes queued offline, one per poll (a device has one vote per poll)
KILLED_AT = 3  # the request during which the service dies: it has committed that vote


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
    sent: list[str] = []
    lost_receipt: list[bytes] = []

    def kill_the_service_during_one_send(route: Route) -> None:
        sent.append(json.loads(route.request.post_data or "{}").get("vote_id", ""))
        if len(sent) == KILLED_AT:
            response = route.fetch()  # the service has committed the vote and signed its receipt
            lab.service.kill()  # SIGKILL before the answer leaves: the device never hears it
            lost_receipt.append(response.body())
            route.abort("connectionreset")
        else:
            route.continue_()  # refused while the service is down

    device.context.route(VOTES, kill_the_service_during_one_send)

    device.context.set_offline(False)  # the worker starts sending the backlog
    wait_for(voter.page, lambda: bool(lost_receipt), "the service to be killed mid-flush")
    lab.service.start()
    device.nudge_as_if_reconnected()

    stored = device.settled_votes(BACKLOG)
    assert len(stored["receipts"]) == BACKLOG, stored["outbox"]
    expect(voter.status).to_have_text("Confirmed · receipt #1")
    cut_off = next(r for r in stored["receipts"] if r["voteId"] == sent[KILLED_AT - 1])
    assert cut_off["receipt"] == json.loads(lost_receipt[0]), "the retry got the receipt signed before the kill"
    assert [lab.results(poll)["total"] for poll in polls] == [1] * BACKLOG
    lab.prove_zero_loss([device], expected_cast=BACKLOG)
