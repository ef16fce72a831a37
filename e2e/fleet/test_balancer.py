"""What the balancer itself answers (deploy/haproxy.cfg, deploy/haproxy-errors/)."""

from __future__ import annotations

import httpx
import pytest

from deploy.fleet import Fleet, wait_until

pytestmark = pytest.mark.e2e


def test_with_no_node_ready_a_vote_gets_a_problem_with_retry_after_from_the_balancer(fleet: Fleet) -> None:
    for node in fleet.nodes:
        node.stop()

    def refused() -> httpx.Response | None:
        response = httpx.post(f"{fleet.url}/api/v1/polls/any/votes", json={}, timeout=10)
        return response if response.status_code == 503 else None

    wait_until(lambda: refused() is not None, "the balancer finding no node ready")
    response = refused()
    assert response is not None
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
    assert response.json()["type"] == "/problems/service-unavailable"
    assert response.json()["status"] == 503
