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
