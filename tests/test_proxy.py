"""deploy/nginx.conf, run by Debian's nginx in front of a real service process (docs/deploy.md).

The file is used as shipped; only the listening port, the service's port and the log directory
are replaced, each of which must occur exactly once (so the test cannot drift from the file).
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from tests.helpers import Voter
from tests.service_process import ROOT, ServiceProcess, free_port, stop_process
from tests.sse import open_stream
from tests.test_edge_limits import read_until_closed

NGINX = Path("/usr/sbin/nginx")
CONFIG = ROOT / "deploy" / "nginx.conf"
STARTUP_TIMEOUT_S = 15.0
READ_BOUND_S = 30.0  # nginx's own deadlines are 10 s: a missing one fails instead of hanging
STREAMS_PER_CLIENT = 8  # deploy/nginx.conf's `limit_conn vote_streams`

MAIN_CONFIG = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log crit;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/vote.conf;
}}
"""


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"deploy/nginx.conf should contain {old!r} exactly once"
    return text.replace(old, new)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    # As docs/deploy.md says to run it behind this proxy.
    env = {"VOTE_CLIENT_ADDRESS_HEADER": "X-Real-IP"}
    with ServiceProcess(tmp_path_factory.mktemp("service"), env=env) as process:
        yield process


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, service: ServiceProcess) -> Iterator[str]:
    if not NGINX.exists():
        pytest.fail("Debian's nginx is missing: `make proxy` installs it (make test and make unit do)")
    directory = tmp_path_factory.mktemp("nginx")
    port = free_port()
    config = CONFIG.read_text()
    config = replace_once(config, "listen 80;", f"listen 127.0.0.1:{port};")
    config = replace_once(config, "server 127.0.0.1:8000;", f"server 127.0.0.1:{service.port};")
    config = replace_once(config, "/var/log/nginx/", f"{directory}/")
    (directory / "vote.conf").write_text(config)
    (directory / "nginx.conf").write_text(MAIN_CONFIG.format(dir=directory))
    process = subprocess.Popen(
        [str(NGINX), "-e", str(directory / "startup.log"), "-p", str(directory), "-c", str(directory / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_listening(process, port, directory)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


def wait_until_listening(process: subprocess.Popen[bytes], port: int, directory: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with {process.returncode}: {(directory / 'startup.log').read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)  # another process: there is no event to await across it
    raise RuntimeError(f"nginx did not listen within {STARTUP_TIMEOUT_S} s")


def raw_exchange(base_url: str, request: bytes) -> bytes:
    """Sends `request` (perhaps unfinished) and returns what comes back until nginx closes."""
    port = int(base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(READ_BOUND_S)
        sock.sendall(request)
        return read_until_closed(sock)


def test_slow_heads_and_bodies_are_cut_off_by_the_proxy(proxy):
    slow_head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
    slow_body = (
        b"POST /api/v1/polls/x/votes HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 200\r\nIdempotency-Key: "k"\r\n\r\n{"vote'
    )
    with ThreadPoolExecutor(2) as pool:  # both wait out nginx's 10 s at once
        answers = list(pool.map(lambda request: raw_exchange(proxy, request), (slow_head, slow_body)))
    for answer in answers:  # closed, with a 408 or with nothing at all, and never passed on
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:300]


def test_oversized_heads_are_refused_by_the_proxy(proxy):
    answer = raw_exchange(proxy, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]


def test_votes_pass_and_streams_arrive_unbuffered_through_the_proxy(proxy, service):
    poll = service.create_poll()
    vote = Voter().vote(poll["id"], poll["options"][0]["id"])

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=proxy, timeout=10) as http, open_stream(http, poll["id"]) as stream:
            assert (await stream.next_results()).json()["total"] == 0
            async with httpx.AsyncClient(base_url=proxy, timeout=10) as voter:
                response = await voter.post(
                    f"/api/v1/polls/{poll['id']}/votes",
                    json=vote,
                    headers={"Idempotency-Key": f'"{vote["idempotency_key"]}"'},
                )
            assert response.status_code == 201, response.text
            assert json.loads(response.content)["payload"]
            # The stream is still open: the event can only have come through unbuffered.
            assert (await stream.results_until(1))[-1].json()["total"] == 1

    asyncio.run(scenario())


def test_the_proxy_caps_streams_per_client(proxy, service):
    poll = service.create_poll()

    async def scenario() -> None:
        async with AsyncExitStack() as held:
            for _ in range(STREAMS_PER_CLIENT):
                http = await held.enter_async_context(httpx.AsyncClient(base_url=proxy, timeout=10))
                await held.enter_async_context(open_stream(http, poll["id"]))
            async with httpx.AsyncClient(base_url=proxy, timeout=10) as http:
                response = await http.get(f"/api/v1/polls/{poll['id']}/stream")
            assert response.status_code == 429

    asyncio.run(scenario())
