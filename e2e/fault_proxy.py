"""One HTTP proxy between any browser and the service that fails on command: the network faults
of the zero-loss scenarios for every engine, whatever its driver can or cannot do.

A browser reaches the service through it as through any forward proxy (absolute-form request
lines, loopback included: see e2e/engines/drivers.py for each engine's setting). Requests pass
unless a rule picks a fault for them:

    proxy.next("/votes", Fault.DROP, Fault.PASS)   # the next two votes: dropped, then passed
    proxy.when("/votes", lambda request: ...)      # a fault per request, chosen by a function
    proxy.set_offline(True)                        # no connection gets through at all

The faults: DROP (the request never reaches the service), RESET_AFTER_COMMIT (the service answers,
the answer is lost), UNAVAILABLE (503 + Retry-After, the service untouched), STALL (held until
`release()`, then passed on), TAMPER (the receipt's signature altered on the way back).
"""

from __future__ import annotations

import base64
import contextlib
import enum
import http.client
import json
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

RETRY_AFTER_S = 1  # what UNAVAILABLE asks for unless told: short, to keep the scenarios tight
STALL_LIMIT_S = 60.0  # a stalled request is passed on after this even without release()
UPSTREAM_TIMEOUT_S = 30.0
CHUNK_BYTES = 64 * 1024
# Not forwarded: they concern one hop, not the request (RFC 9110, section 7.6.1).
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


class Fault(enum.Enum):
    PASS = "pass"
    DROP = "drop"
    RESET_AFTER_COMMIT = "reset after commit"
    UNAVAILABLE = "503 Retry-After"
    STALL = "stall"
    TAMPER = "tampered receipt"


@dataclass
class Seen:
    """One request as the proxy met it."""

    method: str
    path: str
    body: bytes
    arrived: float  # time.monotonic()
    fault: Fault = Fault.PASS
    status: int | None = None  # what the service answered, if it was asked
    answer: bytes = b""  # what the service answered, before any TAMPER


@dataclass
class _Rule:
    path_part: str
    choose: Callable[[Seen], Fault]


@dataclass
class FaultProxy:
    """A threaded forward proxy on 127.0.0.1; `start()` it, `stop()` it (or use `with`)."""

    port: int = 0  # 0: any free port
    offline: bool = False
    retry_after_s: int = RETRY_AFTER_S  # what UNAVAILABLE's Retry-After says
    # Called once the service has answered a RESET_AFTER_COMMIT request, before the answer is lost
    # (to kill the service there, say).
    on_lost_answer: Callable[[Seen], None] | None = None
    seen: list[Seen] = field(default_factory=list)
    _rules: list[_Rule] = field(default_factory=list)
    _released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: socketserver.ThreadingTCPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._server = _Server(("127.0.0.1", self.port), _Handler, proxy=self)
        self.port = self._server.server_address[1]
        # A short poll interval: stop() returns at once, not after up to half a second.
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._released.set()  # stalled requests must not hold their threads past the test
        if self._server is not None:
            self._server.shutdown()
            self._server.close_all()
            self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def set_offline(self, offline: bool) -> None:
        """Offline: open connections (event streams, keep-alive) reset, new ones refused."""
        self.offline = offline
        if offline and self._server is not None:
            self._server.close_all()

    def when(self, path_part: str, choose: Callable[[Seen], Fault]) -> None:
        """Requests whose path contains `path_part` meet the fault `choose` picks for each."""
        with self._lock:
            self._rules.append(_Rule(path_part, choose))

    def next(self, path_part: str, *faults: Fault) -> None:
        """The next requests whose path contains `path_part` meet `faults` in order, then pass."""
        queue = list(faults)
        self.when(path_part, lambda seen: queue.pop(0) if queue else Fault.PASS)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def release(self) -> None:
        """Lets every stalled request (and any later STALL) through."""
        self._released.set()

    def requests_to(self, path_part: str) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.seen if path_part in seen.path]

    def _fault_for(self, seen: Seen) -> Fault:
        with self._lock:
            self.seen.append(seen)
            rules = list(self._rules)
        for rule in rules:
            if rule.path_part in seen.path:
                return rule.choose(seen)
        return Fault.PASS


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True  # a restarted lab may want the same port back at once

    def __init__(self, address: tuple[str, int], handler: type, *, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        if self.proxy.offline:
            reset(request)  # as if the network were gone: nothing gets through, not even to the proxy
            return
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a connection that ends badly is what this proxy is for; `seen` says what happened

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        """Ends open connections (event streams, keep-alive): their threads end with them."""
        with self.connections_lock:
            open_now = list(self.connections)
        for connection in open_now:
            reset(connection)


def reset(connection: socket.socket) -> None:
    """Closes with a TCP RST (SO_LINGER 0): the peer sees a reset, not an orderly end."""
    try:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()
    except OSError:
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as browsers expect of a proxy
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test's own records (`seen`) say what happened; stderr would only add noise

    def do_CONNECT(self) -> None:
        self._answer(405, b"", "text/plain")  # plain HTTP only: the service under test speaks nothing else

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (OSError, ValueError, http.client.HTTPException):  # either end closed the connection
            self.close_connection = True

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # the connection is gone already
            super().finish()

    def _proxy(self) -> None:
        proxy = self.server.proxy
        target = urlsplit(self.path)
        if proxy.offline or not target.hostname:
            self._reset()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = target.path + (f"?{target.query}" if target.query else "")
        seen = Seen(self.command, path, body, time.monotonic())
        seen.fault = fault = proxy._fault_for(seen)
        if fault is Fault.DROP:
            self._reset()
            return
        if fault is Fault.UNAVAILABLE:
            problem = {"type": "/problems/service-unavailable", "title": "Service unavailable", "status": 503}
            self._answer(
                503, json.dumps(problem).encode(), "application/problem+json", {"Retry-After": proxy.retry_after_s}
            )
            return
        if fault is Fault.STALL:
            proxy._released.wait(STALL_LIMIT_S)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=UPSTREAM_TIMEOUT_S)
        try:
            upstream.request(self.command, path, body=body or None, headers=headers)
            response = upstream.getresponse()
        except OSError:
            upstream.close()
            # Nothing answers behind the proxy: the browser sees what it would see going to the
            # service directly, a failed connection (not a proxy's 502).
            self._reset()
            return
        try:
            seen.status = response.status
            if fault in (Fault.RESET_AFTER_COMMIT, Fault.TAMPER) or response.getheader("Content-Length"):
                self._relay_whole(response, seen, fault)
            else:
                self._relay_stream(response)
        finally:
            upstream.close()

    # Every method goes the same way.
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _proxy

    def _relay_whole(self, response: http.client.HTTPResponse, seen: Seen, fault: Fault) -> None:
        seen.answer = response.read()
        if fault is Fault.RESET_AFTER_COMMIT:
            if self.server.proxy.on_lost_answer is not None:
                self.server.proxy.on_lost_answer(seen)
            self._reset()  # the service has committed and answered; the browser never hears it
            return
        body = tamper_receipt(seen.answer) if fault is Fault.TAMPER else seen.answer
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _relay_stream(self, response: http.client.HTTPResponse) -> None:
        """An answer of unknown length (an event stream): re-chunked as it arrives."""
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while chunk := response.read1(CHUNK_BYTES):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _answer(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        self.wfile.write(body)

    def _reset(self) -> None:
        self.close_connection = True
        reset(self.connection)


def tamper_receipt(body: bytes) -> bytes:
    """The answer with its receipt's signature altered (its first byte flipped), else unchanged."""
    try:
        receipt = json.loads(body)
        raw = bytearray(base64.urlsafe_b64decode(receipt["signature"] + "=" * (-len(receipt["signature"]) % 4)))
    except (ValueError, KeyError, TypeError):
        return body
    raw[0] ^= 0x01
    receipt["signature"] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    return json.dumps(receipt).encode()
