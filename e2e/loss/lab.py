"""What the loss scenarios share: a service of their own, browser profiles ("devices") that
record a Playwright trace, network faults, and the final count that proves zero loss."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from playwright.sync_api import Browser, BrowserContext, BrowserType, Page, Request, Route
from voter import VoterPage, open_poll

from tests.service_process import ServiceProcess

from .browser_js import DISPATCH_ONLINE, SETTLED_VOTES, STORED_VOTES

ROOT = Path(__file__).resolve().parents[2]
VOTES = "**/api/v1/polls/*/votes"  # one vote
# Every request that carries votes: one vote, or a backlog through POST /api/v1/votes/batch.
SENDS = re.compile(r"/api/v1/(polls/[^/]+/votes|votes/batch)$")
SETTLE_TIMEOUT_MS = 60_000  # every scenario's last retry comes well within this


def _constant_ms(source: str, name: str) -> int:
    match = re.search(rf"const {name} = (\d+);", (ROOT / source).read_text())
    assert match, f"{source} no longer defines {name} as a plain number"
    return int(match.group(1))


# The delivery policy under test, read from the product so the bounds follow it.
BASE_DELAY_MS = _constant_ms("frontend/backoff.js", "BASE_DELAY_MS")  # ceiling after the 1st failure
MIN_WAKE_MS = _constant_ms("frontend/page.js", "MIN_WAKE_MS")  # an open page nudges no sooner than this


def backoff_ceiling_ms(retries: int) -> int:
    """frontend/backoff.js: full jitter below BASE_DELAY_MS * 2^(retries-1) (far below its 5 min cap here)."""
    return BASE_DELAY_MS * 2 ** max(0, retries - 1)


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def votes_in(request: Request) -> list[dict]:
    """The votes a SENDS request carries, in order."""
    body = json.loads(request.post_data or "{}")
    return body.get("votes", [body])


def receipts_in(request: Request, body: bytes) -> dict[str, dict]:
    """The receipts a SENDS request's answer gives, by vote id."""
    answer = json.loads(body)
    results = answer.get("results", [{"receipt": answer}])
    return {
        vote["vote_id"]: result["receipt"]
        for vote, result in zip(votes_in(request), results, strict=True)
        if "receipt" in result
    }


# --- network faults, as context.route handlers (they see the service worker's requests) ---


def drop(route: Route) -> None:
    """The request never reaches the service."""
    route.abort("connectionreset")


def lose_response(route: Route) -> bytes:
    """The service commits the vote, but its answer never arrives. Returns the lost body."""
    response = route.fetch()
    body = response.body()
    route.abort("connectionreset")
    return body


# --- browsers ---


class Device:
    """One browser profile: its context, with its IndexedDB outbox and its service worker."""

    def __init__(self, name: str, context: BrowserContext, lab: Lab) -> None:
        self.name = name
        self.context = context
        self.lab = lab

    def open(self, poll: dict, page: Page | None = None) -> VoterPage:
        """The poll page in `page`, or in a new tab."""
        return open_poll(page or self.context.new_page(), self.lab.service.poll_url(poll), poll)

    def open_ready(self, poll: dict, page: Page | None = None) -> VoterPage:
        """The poll page, once the worker controls it and keeps an offline copy of it."""
        voter = self.open(poll, page)
        voter.wait_until_offline_ready()
        return voter

    def page_on_origin(self) -> Page:
        for page in self.context.pages:
            if page.url.startswith(self.lab.service.base_url):
                return page
        page = self.context.new_page()
        page.goto(f"{self.lab.service.base_url}/healthz")
        return page

    def stored_votes(self) -> dict:
        return self.page_on_origin().evaluate(STORED_VOTES)

    def settled_votes(self, receipts: int, timeout_ms: int = SETTLE_TIMEOUT_MS) -> dict:
        """Waits until no vote on this device waits to be sent and `receipts` are confirmed."""
        return self.page_on_origin().evaluate(SETTLED_VOTES, [receipts, timeout_ms])

    def nudge_as_if_reconnected(self) -> None:
        for page in self.context.pages:
            if page.url.startswith(self.lab.service.base_url):
                page.evaluate(DISPATCH_ONLINE)


class Throttle:
    """Network conditions through CDP on a page and on the origin's service worker.

    Throttling the page's session does not reach the worker, so the worker's target gets its
    own session, attached from the browser session (flatten=false: Playwright's CDPSession
    cannot address a child session, so commands go through Target.sendMessageToTarget)."""

    def __init__(self, browser: Browser, page: Page, worker_url: str) -> None:
        self.browser_session = browser.new_browser_cdp_session()
        self.page = page
        self.page_session = page.context.new_cdp_session(page)
        self.replies: dict[int, dict] = {}
        self.browser_session.on("Target.receivedMessageFromTarget", self._on_message)
        workers = [
            target
            for target in self.browser_session.send("Target.getTargets")["targetInfos"]
            if target["type"] == "service_worker" and target["url"] == worker_url
        ]
        assert len(workers) == 1, f"expected one service worker at {worker_url}, found {workers}"
        self.worker_session = self.browser_session.send(
            "Target.attachToTarget", {"targetId": workers[0]["targetId"], "flatten": False}
        )["sessionId"]
        self.next_id = 0
        self.page_session.send("Network.enable")
        self._send_to_worker("Network.enable", {})

    def set(self, latency_ms: int, bytes_per_second: int) -> None:
        conditions = {
            "offline": False,
            "latency": latency_ms,
            "downloadThroughput": bytes_per_second,
            "uploadThroughput": bytes_per_second,
        }
        self.page_session.send("Network.emulateNetworkConditions", conditions)
        self._send_to_worker("Network.emulateNetworkConditions", conditions)

    def reset(self) -> None:
        """No throttling. Call before context.set_offline: the first CDP session to set
        conditions on a target wins over it."""
        self.set(0, -1)

    def detach(self) -> None:
        self.browser_session.send("Target.detachFromTarget", {"sessionId": self.worker_session})
        self.page_session.detach()
        self.browser_session.detach()

    def _on_message(self, event: dict) -> None:
        message = json.loads(event["message"])
        if "id" in message:
            self.replies[message["id"]] = message

    def _send_to_worker(self, method: str, params: dict) -> dict:
        self.next_id += 1
        command = {"id": self.next_id, "method": method, "params": params}
        self.browser_session.send(
            "Target.sendMessageToTarget", {"sessionId": self.worker_session, "message": json.dumps(command)}
        )
        # Replies arrive as events, which Playwright delivers only during its own calls.
        wait_for(self.page, lambda: self.next_id in self.replies, f"the worker's reply to {method}")
        reply = self.replies.pop(self.next_id)
        assert "error" not in reply, f"{method} on the service worker: {reply['error']}"
        return reply["result"]


def wait_for(page: Page, condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """For conditions that only Python sees (a route handler's record): lets Playwright deliver
    its events in short waits until `condition()` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        page.wait_for_timeout(50)


# --- the count ---


@dataclass
class Tally:
    cast: int = 0
    counted: int = 0
    duplicates: int = 0
    lost: int = 0

    def add(self, other: Tally) -> None:
        self.cast += other.cast
        self.counted += other.counted
        self.duplicates += other.duplicates
        self.lost += other.lost

    def line(self) -> str:
        return f"votes cast {self.cast}, counted {self.counted}, duplicates {self.duplicates}, lost {self.lost}"


@dataclass
class Lab:
    """One scenario's world: its own service, the browser, and the devices it opened."""

    service: ServiceProcess
    browser: Browser
    browser_type: BrowserType
    launch_args: dict
    workdir: Path
    traces: Path  # where closed devices' traces go; conftest keeps them only when the test fails
    ledger: Tally
    polls: list[dict] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    opened: int = 0

    def create_poll(self, question: str = "Which colour?", options: tuple[str, ...] = ("Red", "Blue")) -> dict:
        """A poll on the lab's service, counted by `prove_zero_loss`."""
        poll = self.service.create_poll(question, options)
        self.polls.append(poll)
        return poll

    def results(self, poll: dict) -> dict:
        return self.service.results(poll["id"])

    def new_device(self, *, init_script: str | None = None) -> Device:
        context = self.browser.new_context()
        if init_script:
            context.add_init_script(init_script)
        return self._track(context)

    def launch_device(self, profile: Path) -> Device:
        """A browser of its own on a persistent profile, to close and launch again."""
        return self._track(self.browser_type.launch_persistent_context(profile, **self.launch_args))

    def close_device(self, device: Device, *, keep_trace: bool = True) -> None:
        """Closes the browser as a user would. Its trace is written first: whether the test
        fails is not known yet."""
        self.devices.remove(device)
        try:
            if keep_trace:
                self.traces.mkdir(parents=True, exist_ok=True)
                device.context.tracing.stop(path=self.traces / f"trace-{device.name}.zip")
            else:
                device.context.tracing.stop()
        finally:
            device.context.close()

    def close_all(self, *, keep_traces: bool) -> None:
        for device in list(self.devices):
            self.close_device(device, keep_trace=keep_traces)

    def prove_zero_loss(self, devices: list[Device], expected_cast: int) -> Tally:
        """Every vote the devices hold is confirmed, with a receipt that verifies against
        GET /api/v1/keys and matches the stored ballot, and is counted exactly once."""
        stored = [device.settled_votes(0) for device in devices]
        receipts = [r for s in stored for r in s["receipts"]]
        unconfirmed = [v for s in stored for v in s["outbox"]]
        cast_ids = {r["voteId"] for r in receipts} | {v["id"] for v in unconfirmed}
        rows = self._server_votes()
        counted = sum(self.results(poll)["total"] for poll in self.polls)
        found = cast_ids & set(rows)
        tally = Tally(cast=len(cast_ids), counted=counted, duplicates=counted - len(found), lost=len(cast_ids - found))
        self.ledger.add(tally)

        assert not unconfirmed, f"votes not confirmed: {[(v['status'], v['lastError']) for v in unconfirmed]}"
        assert tally.cast == expected_cast, f"the devices hold {tally.cast} votes, the test cast {expected_cast}"
        assert tally.lost == 0, f"lost votes: {sorted(cast_ids - found)}"
        assert tally.duplicates == 0, f"{counted} counted for {len(found)} votes"
        assert counted == len(rows), f"the results say {counted}, the votes table holds {len(rows)}"
        self._verify_receipts(receipts, rows)
        return tally

    def _server_votes(self) -> dict[str, sqlite3.Row]:
        """The votes table for this lab's polls, read straight from the service's SQLite file."""
        database = self.service.env["VOTE_DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")
        placeholders = ",".join("?" * len(self.polls))
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
            connection.row_factory = sqlite3.Row
            found = connection.execute(
                f"SELECT * FROM votes WHERE poll_id IN ({placeholders})",
                [poll["id"] for poll in self.polls],
            ).fetchall()
        connection.close()
        rows: dict[str, sqlite3.Row] = {}
        for row in found:
            assert row["vote_id"] not in rows, f"vote {row['vote_id']} is stored twice"
            rows[row["vote_id"]] = row
        return rows

    def _verify_receipts(self, receipts: list[dict], rows: dict[str, sqlite3.Row]) -> None:
        keys = {key["kid"]: key for key in httpx.get(f"{self.service.base_url}/api/v1/keys").json()["keys"]}
        for record in receipts:
            receipt = record["receipt"]
            key = keys.get(receipt["kid"])
            assert key is not None, f"receipt key {receipt['kid']} is not in GET /api/v1/keys"
            assert key["alg"] == "Ed25519"
            payload_bytes = b64url_decode(receipt["payload"])
            try:
                VerifyKey(b64url_decode(key["public_key"])).verify(payload_bytes, b64url_decode(receipt["signature"]))
            except BadSignatureError:
                raise AssertionError(f"the receipt of vote {record['voteId']} does not verify") from None
            payload = json.loads(payload_bytes)
            row = rows[record["voteId"]]
            assert (payload["vote_id"], payload["poll_id"], payload["idempotency_key"]) == (
                record["voteId"],
                record["pollId"],
                record["idempotencyKey"],
            )
            assert payload["seq"] == record["seq"] == row["seq"]
            signed = "\n".join(
                [
                    "vote/v1",
                    row["poll_id"],
                    row["option_id"],
                    row["vote_id"],
                    row["idempotency_key"],
                    str(row["created_at"]),
                ]
            ).encode()
            assert payload["ballot_hash"] == b64url_encode(hashlib.sha256(signed + row["signature"]).digest())
            assert json.loads(row["receipt"]) == receipt, "the device keeps other receipt bytes than the service sent"

    def _track(self, context: BrowserContext) -> Device:
        context.tracing.start(screenshots=True, snapshots=True)
        self.opened += 1
        device = Device(f"device-{self.opened}", context, self)
        self.devices.append(device)
        return device
