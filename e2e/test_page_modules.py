"""The page's own modules, run in Chromium against the protocol's test vectors.

The sources are served as they are (no build) from a routed https origin: Web Crypto needs a
secure context, and the route answers without any network.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "https://modules.test"
VECTORS = json.loads((ROOT / "tests" / "vectors" / "vote-v1.json").read_text())
# PKCS #8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410), so Web Crypto can import the vector's key.
PKCS8_ED25519_PREFIX = "302e020100300506032b657004220420"

VOTE = """(v) => ({
  id: v.vote.vote_id, idempotencyKey: v.vote.idempotency_key, pollId: v.vote.poll_id,
  optionId: v.vote.option_id, createdAt: v.vote.created_at, publicKey: v.vote.public_key,
  signature: v.vote.signature,
})"""


def _serve_sources(route: Route) -> None:
    path = route.request.url.removeprefix(ORIGIN).split("?")[0]
    if path == "/":
        route.fulfill(body="<!doctype html><title>modules</title>", content_type="text/html")
        return
    source = (ROOT / path.lstrip("/")).resolve()
    if source.suffix != ".js" or not source.is_relative_to(ROOT) or not source.is_file():
        route.fulfill(status=404)
        return
    route.fulfill(path=source, content_type="text/javascript")


@pytest.fixture
def modules(page: Page) -> Page:
    """A page on a secure origin that can `import()` the files in frontend/."""
    page.route(f"{ORIGIN}/**", _serve_sources)
    page.goto(f"{ORIGIN}/")
    return page


def run(page: Page, body: str) -> object:
    """Runs `body` in an async function with `vectors`, `toVote(vectors)` and `load(name)` in scope."""
    script = f"""async (vectors) => {{
      const toVote = {VOTE};
      const load = (name) => import(`/frontend/${{name}}.js`);
      {body}
    }}"""
    return page.evaluate(script, VECTORS)


def test_signing_bytes_match_the_vector(modules: Page) -> None:
    result = run(
        modules, "const p = await load('protocol');return new TextDecoder().decode(p.signingBytes(toVote(vectors)));"
    )

    assert result == VECTORS["signing_bytes"]


def test_signature_matches_the_vector(modules: Page) -> None:
    result = run(
        modules,
        f"""
        const p = await load('protocol');
        const b64 = await load('b64');
        const seed = b64.b64urlDecode(vectors.voter.seed);
        const pkcs8 = new Uint8Array([...'{PKCS8_ED25519_PREFIX}'.match(/../g).map((h) => parseInt(h, 16)), ...seed]);
        const key = await crypto.subtle.importKey('pkcs8', pkcs8, {{ name: 'Ed25519' }}, false, ['sign']);
        return p.signVote(toVote(vectors), key);
        """,
    )

    assert result == VECTORS["vote"]["signature"]


def test_ballot_hash_matches_the_vector(modules: Page) -> None:
    result = run(modules, "const p = await load('protocol'); return p.ballotHash(toVote(vectors));")

    assert result == VECTORS["ballot_hash"]


def test_receipt_from_the_vector_verifies(modules: Page) -> None:
    result = run(
        modules,
        """
        const p = await load('protocol');
        const b64 = await load('b64');
        const keyFor = async (kid) => (kid === vectors.server.kid ? b64.b64urlDecode(vectors.server.public_key) : null);
        return p.verifyReceipt(vectors.receipt, toVote(vectors), keyFor);
        """,
    )

    assert result == VECTORS["receipt_payload"]


def test_receipt_for_another_vote_is_rejected(modules: Page) -> None:
    result = run(
        modules,
        """
        const p = await load('protocol');
        const b64 = await load('b64');
        const keyFor = async () => b64.b64urlDecode(vectors.server.public_key);
        const other = { ...toVote(vectors), id: '00000000-0000-4000-8000-000000000000' };
        try { await p.verifyReceipt(vectors.receipt, other, keyFor); return 'accepted'; }
        catch (error) { return error instanceof p.ReceiptError ? error.message : String(error); }
        """,
    )

    assert result == "vote_id mismatch"


def test_receipt_signed_by_an_unknown_key_is_rejected(modules: Page) -> None:
    result = run(
        modules,
        """
        const p = await load('protocol');
        try { await p.verifyReceipt(vectors.receipt, toVote(vectors), async () => null); return 'accepted'; }
        catch (error) { return error.message; }
        """,
    )

    assert result == "unknown signing key"


def test_backoff_stays_within_the_full_jitter_window(modules: Page) -> None:
    windows = run(
        modules,
        """
        const b = await load('backoff');
        return [1, 2, 3, 30].map((retries) => b.backoffDelay(retries, () => 0.999999));
        """,
    )

    assert windows == [999, 1999, 3999, 299999]


def test_retry_after_outlasts_a_shorter_backoff(modules: Page) -> None:
    result = run(
        modules, "const b = await load('backoff');return b.nextAttemptAt(1, b.retryAfterMs('120'), 1000, () => 0);"
    )

    assert result == 1000 + 120_000


def test_retry_after_accepts_an_http_date(modules: Page) -> None:
    result = run(
        modules,
        "const b = await load('backoff');"
        "return b.retryAfterMs('Wed, 21 Oct 2015 07:28:30 GMT', Date.UTC(2015, 9, 21, 7, 28, 0));",
    )

    assert result == 30_000


@pytest.mark.parametrize(
    ("status", "problem", "retryable"),
    [
        (408, "", True),
        (429, "/problems/rate-limited", True),
        (503, "/problems/service-unavailable", True),
        (409, "/problems/request-in-flight", True),
        (409, "/problems/already-voted", False),
        (410, "/problems/poll-closed", False),
        (422, "/problems/invalid-signature", False),
    ],
)
def test_retryable_answers_follow_the_protocol(modules: Page, status: int, problem: str, retryable: bool) -> None:
    result = run(modules, f"const b = await load('backoff'); return b.isRetryable({status}, {json.dumps(problem)});")

    assert result is retryable


def test_backoff_takes_its_own_base_cap_and_floor(modules: Page) -> None:
    windows = run(
        modules,
        """
        const b = await load('backoff');
        const options = { base: 4000, cap: 30000, floor: 2000 };
        const bounds = (retries) => [0, 0.999999].map((r) => b.backoffDelay(retries, () => r, options));
        return [1, 2, 3, 4, 9].flatMap(bounds);
        """,
    )

    assert windows == [2000, 3999, 2000, 7999, 2000, 15999, 2000, 29999, 2000, 29999]


# The results feed against stand-ins: an EventSource the test fails by hand, a fetch that gives
# the answers queued in `answers`, and timers that run only when the test fires them, so the
# feed's schedule is read, not waited for. `heard` lists what the feed told its listener.
FEED_LAB = """
  const sources = [];
  class FakeSource extends EventTarget {
    static CLOSED = 2;
    constructor(url) { super(); this.url = url; this.readyState = 0; sources.push(this); }
    close() { this.readyState = FakeSource.CLOSED; }
  }
  const timers = new Map();
  let nextTimer = 1;
  const setTimer = (fn, ms) => { timers.set(nextTimer, { fn, ms }); return nextTimer++; };
  const pending = () => [...timers.values()].map((t) => t.ms);
  // Runs the timer of `ms` that was set first, as its time would have come.
  const fire = async (ms) => {
    const [id, timer] = [...timers].find(([, t]) => t.ms === ms);
    timers.delete(id);
    await timer.fn();
  };
  const answers = [];
  const requests = [];
  const fakeFetch = async (url, init) => {
    requests.push([url, init.headers['If-None-Match'] ?? null]);
    const answer = answers.shift();
    if (answer === 'network error') throw new TypeError('Failed to fetch');
    return answer;
  };
  const heard = [];
  const listener = {
    results: (r) => heard.push(`results ${r.total}`),
    opened: () => heard.push('opened'),
    unchanged: () => heard.push('unchanged'),
    failed: () => heard.push('failed'),
    offline: () => heard.push('offline'),
  };
  const results = (total) => new Response(JSON.stringify({ poll_id: 'p', total, options: [] }),
    { headers: { ETag: `"${total}"` } });
  const real = { EventSource: self.EventSource, fetch: self.fetch, setTimeout: self.setTimeout,
    clearTimeout: self.clearTimeout, random: Math.random };
  Object.assign(self, { EventSource: FakeSource, fetch: fakeFetch, setTimeout: setTimer,
    clearTimeout: (id) => timers.delete(id) });
  const { resultsFeed } = await load('results-feed');
"""


def run_feed(page: Page, body: str) -> object:
    """`run`, with FEED_LAB's stand-ins in place of the browser's for the length of `body`."""
    return run(
        page,
        f"""{FEED_LAB}
        try {{ {body} }}
        finally {{ Object.assign(self, real); Math.random = real.random; }}""",
    )


def test_results_feed_polls_after_repeated_stream_failures_and_retries_the_stream(modules: Page) -> None:
    seen = run_feed(
        modules,
        """
        const feed = resultsFeed('p', listener);
        feed.connect();
        sources[0].dispatchEvent(new Event('open'));
        for (let i = 0; i < 3; i++) sources[0].dispatchEvent(new Event('error'));
        const fellBack = { closed: sources[0].readyState === FakeSource.CLOSED, pending: pending() };
        answers.push(results(1), new Response(null, { status: 304 }));
        await fire(0);
        await fire(2000);
        await fire(60000); // the stream's retry
        sources[1].dispatchEvent(new MessageEvent('results', { data: JSON.stringify({ poll_id: 'p', total: 2 }) }));
        return { fellBack, requests, heard, streams: sources.map((s) => s.url), pending: pending() };
        """,
    )

    assert seen == {
        "fellBack": {"closed": True, "pending": [0, 60_000]},
        "requests": [["/api/v1/polls/p/results", None], ["/api/v1/polls/p/results", '"1"']],
        "heard": ["opened", "failed", "failed", "failed", "results 1", "unchanged", "results 2"],
        "streams": ["/api/v1/polls/p/stream", "/api/v1/polls/p/stream"],
        "pending": [],  # a stream that delivers ends the polling
    }


def test_results_feed_polls_at_once_when_the_stream_is_closed(modules: Page) -> None:
    seen = run_feed(
        modules,
        """
        resultsFeed('p', listener).connect();
        sources[0].readyState = FakeSource.CLOSED; // a final answer, such as a 404
        sources[0].dispatchEvent(new Event('error'));
        return { heard, pending: pending() };
        """,
    )

    assert seen == {"heard": ["failed"], "pending": [0, 60_000]}


def test_results_polling_backs_off_with_full_jitter_honours_retry_after_and_stops_on_404(modules: Page) -> None:
    delays = run_feed(
        modules,
        """
        delete self.EventSource;
        Math.random = () => 0.5;
        const unavailable = (headers = {}) => new Response(null, { status: 503, headers });
        answers.push(
          'network error', unavailable(), unavailable(), unavailable(), unavailable(),
          unavailable({ 'Retry-After': '120' }), results(3), new Response(null, { status: 404 }),
        );
        resultsFeed('p', listener).connect();
        const delays = pending();
        for (let polls = 0; timers.size && polls < 10; polls++) {
          await fire(delays.at(-1));
          delays.push(...pending());
        }
        return delays;
        """,
    )

    # Halfway between 2 s and 4, 8, 16 and 30 s after 1 to 5 errors in a row; Retry-After outlasts
    # the jitter; a 200 brings back the 2 s; a 404 ends the polling.
    assert delays == [0, 3000, 5000, 9000, 16_000, 16_000, 120_000, 2000]


def test_results_feed_closes_offline_reopens_online_and_pauses_polling_while_hidden(modules: Page) -> None:
    seen = run_feed(
        modules,
        """
        const feed = resultsFeed('p', listener);
        feed.connect();
        dispatchEvent(new Event('offline'));
        const offline = { closed: sources[0].readyState === FakeSource.CLOSED, heard: [...heard] };
        dispatchEvent(new Event('online'));
        const online = { streams: sources.length, open: sources[1].readyState !== FakeSource.CLOSED };
        sources[1].readyState = FakeSource.CLOSED;
        sources[1].dispatchEvent(new Event('error'));
        let visibility = 'visible';
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => visibility });
        const show = (state) => {
          visibility = state;
          document.dispatchEvent(new Event('visibilitychange'));
          return pending();
        };
        const hiddenWaiting = show('hidden');
        const visible = show('visible');
        let answer;
        answers.push(new Promise((resolve) => { answer = resolve; }));
        const polled = fire(0);
        show('hidden');
        answer(results(1));
        await polled;
        const hiddenAfterPoll = pending();
        delete document.visibilityState;
        return { offline, online, hiddenWaiting, visible, hiddenAfterPoll };
        """,
    )

    assert seen == {
        "offline": {"closed": True, "heard": ["offline"]},
        "online": {"streams": 2, "open": True},
        "hiddenWaiting": [60_000],  # only the stream's retry
        "visible": [60_000, 0],
        "hiddenAfterPoll": [60_000],  # a poll that ends while the page is hidden sets no next one
    }
