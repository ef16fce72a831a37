"""The fault proxy (e2e/fault_proxy.py) does to a client what each fault says, and only that."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from fault_proxy import RETRY_AFTER_S, Fault, FaultProxy

SIGNATURE = base64.urlsafe_b64encode(b"\x00signed").rstrip(b"=").decode()


class Upstream(ThreadingHTTPServer):
    """A service that commits every POST it receives and answers with a signed receipt."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _UpstreamHandler)
        self.committed: list[bytes] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _UpstreamHandler(BaseHTTPRequestHandler):
    server: Upstream

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.server.committed.append(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps({"seq": len(self.server.committed), "signature": SIGNATURE}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # an event stream: no Content-Length, ends when the server closes it
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(b"data: one\n\n")
        self.wfile.flush()
        self.wfile.write(b"data: two\n\n")
        self.close_connection = True


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with FaultProxy() as running:
        yield running


@pytest.fixture
def client(proxy: FaultProxy) -> Iterator[httpx.Client]:
    with httpx.Client(proxy=proxy.url, timeout=10) as http:
        yield http


def test_request_passes_through_to_the_service_and_back(upstream: Upstream, client: httpx.Client) -> None:
    response = client.post(f"{upstream.url}/api/v1/polls/p/votes", content=b"vote")

    assert response.status_code == 201
    assert response.json()["signature"] == SIGNATURE
    assert upstream.committed == [b"vote"]


def test_dropped_request_never_reaches_the_service(upstream: Upstream, proxy: FaultProxy, client: httpx.Client) -> None:
    proxy.next("/votes", Fault.DROP)

    with pytest.raises(httpx.TransportError):
        client.post(f"{upstream.url}/api/v1/polls/p/votes", content=b"vote")

    assert upstream.committed == []
    assert [seen.fault for seen in proxy.requests_to("/votes")] == [Fault.DROP]


def test_reset_after_commit_loses_the_answer_of_a_committed_request(
    upstream: Upstream, proxy: FaultProxy, client: httpx.Client
) -> None:
    proxy.next("/votes", Fault.RESET_AFTER_COMMIT)

    with pytest.raises(httpx.TransportError):
        client.post(f"{upstream.url}/api/v1/polls/p/votes", content=b"vote")

    assert upstream.committed == [b"vote"]
    (seen,) = proxy.requests_to("/votes")
    assert (seen.status, json.loads(seen.answer)["seq"]) == (201, 1)


def test_unavailable_answers_503_with_retry_after_without_the_service(
    upstream: Upstream, proxy: FaultProxy, client: httpx.Client
) -> None:
    proxy.next("/votes", Fault.UNAVAILABLE)

    response = client.post(f"{upstream.url}/api/v1/polls/p/votes", content=b"vote")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert response.headers["Content-Type"] == "application/problem+json"
    assert upstream.committed == []


def test_faults_apply_in_order_then_requests_pass(upstream: Upstream, proxy: FaultProxy, client: httpx.Client) -> None:
    proxy.next("/votes", Fault.UNAVAILABLE, Fault.UNAVAILABLE)

    statuses = [client.post(f"{upstream.url}/api/v1/polls/p/votes", content=b"v").status_code for _ in range(3)]

    assert statuses == [503, 503, 201]
    assert len(upstream.committed) == 1


def test_stalled_request_reaches_the_service_only_once_released(
    upstream: Upstream, proxy: FaultProxy, client: httpx.Client
) -> None:
    proxy.next("/votes", Fault.STALL)
    answers: list[int] = []
    sender = threading.Thread(
        target=lambda: answers.append(client.post(f"{upstream.url}/api/v1/polls/p/votes", content=b"v").status_code)
    )
    sender.start()
    wait_until(lambda: len(proxy.requests_to("/votes")) == 1)

    assert upstream.committed == [], "a stalled request is held at the proxy"
    proxy.release()
    sender.join(10)

    assert answers == [201]
    assert upstream.committed == [b"v"]


def test_tampered_receipt_carries_another_signature(
    upstream: Upstream, proxy: FaultProxy, client: httpx.Client
) -> None:
    proxy.next("/votes", Fault.TAMPER)

    response = client.post(f"{upstream.url}/api/v1/polls/p/votes", content=b"vote")

    assert response.status_code == 201
    assert response.json()["seq"] == 1
    assert response.json()["signature"] != SIGNATURE
    assert upstream.committed == [b"vote"]


def test_offline_refuses_every_request(upstream: Upstream, proxy: FaultProxy, client: httpx.Client) -> None:
    proxy.set_offline(True)

    with pytest.raises(httpx.TransportError):
        client.post(f"{upstream.url}/api/v1/polls/p/votes", content=b"vote")
    proxy.set_offline(False)
    response = client.post(f"{upstream.url}/api/v1/polls/p/votes", content=b"vote")

    assert response.status_code == 201
    assert upstream.committed == [b"vote"]


def test_service_down_behind_the_proxy_is_a_failed_connection(proxy: FaultProxy, client: httpx.Client) -> None:
    with FaultProxy() as nothing_behind:  # a port that was free a moment ago: nothing listens there
        gone = nothing_behind.url

    with pytest.raises(httpx.TransportError):
        client.post(f"{gone}/api/v1/polls/p/votes", content=b"vote")


def test_event_stream_of_unknown_length_is_relayed_as_it_comes(upstream: Upstream, client: httpx.Client) -> None:
    with client.stream("GET", f"{upstream.url}/api/v1/polls/p/stream") as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        assert b"".join(response.iter_bytes()) == b"data: one\n\ndata: two\n\n"


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    done = threading.Event()  # never set: its wait() is a pause between two looks
    for _ in range(int(timeout_s / 0.01)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("timed out")
