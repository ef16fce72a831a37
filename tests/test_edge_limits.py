"""Limits at the HTTP edge, against a real service process (uvicorn is where they live).

Slow or oversized request heads must be cut off by the service itself: no ASGI code runs until a
head is complete. Each refusal is a problem, and nothing the client sent, nor its address, is logged.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from app.edge.security import SECURITY_HEADERS
from tests.helpers import Voter
from tests.service_process import ServiceProcess

# Bounds so that a missing limit fails the test instead of hanging it; not timing asserts.
READ_BOUND_S = 20.0
LIMITS = {
    "VOTE_HEADER_TIMEOUT_SECONDS": "1",
    "VOTE_BODY_TIMEOUT_SECONDS": "1",
    "VOTE_STREAMS_PER_CLIENT": "2",
    "VOTE_CLIENT_ADDRESS_HEADER": "X-Real-IP",
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with ServiceProcess(tmp_path_factory.mktemp("edge"), env=LIMITS) as process:
        yield process


def connect(service: ServiceProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", service.port))
    sock.settimeout(READ_BOUND_S)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the service sends until it closes the connection (a timeout fails the test)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def assert_problem(raw: bytes, status: int, slug: str) -> dict[str, str]:
    code, headers, body = parse_response(raw)
    assert code == status, raw[:500]
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["type"] == f"/problems/{slug}"
    # Refused before the app saw it, but with the headers of every other answer.
    assert {name: headers.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
    return headers


def test_a_head_that_trickles_in_is_cut_off_with_408(service):
    with connect(service) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        assert_problem(read_until_closed(sock), 408, "request-timeout")


def test_an_idle_connection_that_never_sends_is_closed(service):
    with connect(service) as sock:
        assert_problem(read_until_closed(sock), 408, "request-timeout")


def test_a_body_that_trickles_in_is_cut_off_with_408(service):
    with connect(service) as sock:
        sock.sendall(
            b"POST /api/v1/polls/x/votes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 200\r\nIdempotency-Key: "k"\r\n\r\n{"vote'
        )
        assert_problem(read_until_closed(sock), 408, "request-timeout")


def test_a_head_over_16_kib_is_refused_with_431_before_it_ends(service):
    with connect(service) as sock:
        # The head never ends: the service must refuse it from its size alone.
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000)
        assert_problem(read_until_closed(sock), 431, "headers-too-large")


def test_requests_within_the_limits_pass_and_keep_alive_works(service):
    with service.client() as http:
        for _ in range(3):
            response = http.get("/healthz", headers={"X-Fits": "a" * 8000})
            assert response.status_code == 200
        assert response.extensions["http_version"] == b"HTTP/1.1"


def test_a_websocket_upgrade_is_refused_and_the_client_is_not_logged(service):
    since = service.log_size()
    with connect(service) as sock:
        client_port = sock.getsockname()[1]
        sock.sendall(
            b"GET /api/v1/polls/x/stream HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        assert_problem(read_until_closed(sock), 400, "upgrade-refused")
    # A request after it, so that whatever the upgrade logged is in the file by now.
    with service.client() as http:
        assert http.get("/healthz").status_code == 200
    log = service.log(since)
    assert "127.0.0.1" not in log, log
    assert f":{client_port}" not in log, log
    assert "WebSocket" not in log, log


def test_no_log_line_names_a_client_or_repeats_a_body(service):
    poll = service.create_poll()
    since = service.log_size()
    marker = "body-marker-7f3a"
    with service.client() as http:
        client_port = None
        for path, body in (
            (f"/api/v1/polls/{poll['id']}/votes", f'{{"vote_id": "{marker}"'),
            ("/api/v1/votes/batch", json.dumps({"votes": [{"x": marker}]})),
            ("/api/v1/polls", json.dumps({"question": marker})),
        ):
            response = http.post(path, content=body, headers={"Content-Type": "application/json"})
            assert response.status_code < 500
            client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    for request in (
        b"NOT HTTP " + marker.encode() + b"\r\n\r\n",
        b"GET /api/v1/polls/x/stream HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    ):
        with connect(service) as sock:
            sock.sendall(request)
            read_until_closed(sock)
    with service.client() as http:
        assert http.get("/healthz").status_code == 200
    log = service.log(since)
    assert marker not in log, log
    assert "127.0.0.1" not in log, log
    assert f":{client_port}" not in log, log


def test_streams_per_client_are_capped_with_429_and_a_closed_one_frees_its_place(service):
    poll = service.create_poll()
    path = f"/api/v1/polls/{poll['id']}/stream"
    with ExitStack() as streams, service.client() as http:
        for _ in range(2):
            stream = streams.enter_context(http.stream("GET", path, headers={"X-Real-IP": "198.51.100.7"}))
            assert stream.status_code == 200
        with httpx.Client(base_url=service.base_url, timeout=10) as other_connection:
            refused = other_connection.get(path, headers={"X-Real-IP": "198.51.100.7"})
            assert refused.status_code == 429
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"] == "/problems/rate-limited"
            assert int(refused.headers["retry-after"]) > 0
            # Another client (as the trusted proxy names it) has its own allowance.
            with other_connection.stream("GET", path, headers={"X-Real-IP": "203.0.113.9"}) as stream:
                assert stream.status_code == 200
    # Both streams closed: the client may open streams again.
    with service.client() as http, http.stream("GET", path, headers={"X-Real-IP": "198.51.100.7"}) as stream:
        assert stream.status_code == 200
    assert "198.51.100.7" not in service.log()


def test_a_worker_past_its_connection_cap_answers_503_with_retry_after(tmp_path: Path):
    env = {"VOTE_MAX_CONNECTIONS": "3", "VOTE_STREAMS_PER_CLIENT": "0"}
    with ServiceProcess(tmp_path, env=env) as service, ExitStack() as held:
        poll = service.create_poll()
        for _ in range(3):  # results streams hold their connections open
            http = held.enter_context(service.client())
            stream = held.enter_context(http.stream("GET", f"/api/v1/polls/{poll['id']}/stream"))
            assert stream.status_code == 200
        with service.client() as http:
            response = http.get("/healthz")
        assert response.status_code == 503
        assert response.json()["type"] == "/problems/service-unavailable"
        assert int(response.headers["retry-after"]) > 0


def test_a_vote_still_gets_its_receipt_through_the_bounded_protocol(service):
    poll = service.create_poll()
    vote = Voter().vote(poll["id"], poll["options"][0]["id"])
    with service.client() as http:
        response = http.post(
            f"/api/v1/polls/{poll['id']}/votes", json=vote, headers={"Idempotency-Key": f'"{vote["idempotency_key"]}"'}
        )
    assert response.status_code == 201, response.text
