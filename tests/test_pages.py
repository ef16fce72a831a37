"""The poll page and the built assets, served by the app in-process."""

from __future__ import annotations

import base64
import gzip
import hashlib
import html
import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import brotli
import httpx
import pytest
from litestar.testing import AsyncTestClient

from app import create_app
from app.core.settings import Settings
from tests.helpers import Voter, close_poll, now_ms, send_vote

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "pages-test-admin-token-0123"


def _build(out: Path, *args: str) -> Path:
    subprocess.run([sys.executable, str(ROOT / "build.py"), "--out", str(out), *args], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist/ as `make build` writes it."""
    return _build(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def cdn_dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dist/ built with its assets on a CDN origin."""
    return _build(tmp_path_factory.mktemp("cdn-dist"), "--base-url", "https://cdn.example/")


def _settings(tmp_path: Path, dist_dir: Path) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'votes.db'}",
        data_dir=tmp_path / "data",
        admin_token=TOKEN,
        dist_dir=dist_dir,
    )


@pytest.fixture
async def client(tmp_path: Path, dist: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The service in-process, serving the assets in `dist`."""
    async with AsyncTestClient(app=create_app(_settings(tmp_path, dist))) as test_client:
        yield test_client


async def _create_poll(client: httpx.AsyncClient) -> dict:
    response = await client.post(
        "/api/v1/polls",
        json={"question": "Tea or coffee?", "options": ["Tea", "Coffee"], "eligibility": "anyone"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _static_url(client: httpx.AsyncClient, pattern: str) -> str:
    page = (await client.get(f"/polls/{(await _create_poll(client))['id']}")).text
    match = re.search(pattern, page)
    assert match, page
    return match.group(1)


async def test_poll_page_shows_the_question_as_its_only_h1_and_a_radio_per_option(client: httpx.AsyncClient) -> None:
    poll = await _create_poll(client)

    page = (await client.get(f"/polls/{poll['id']}")).text

    assert re.findall(r"<h1[^>]*>(.*?)</h1>", page) == ["Tea or coffee?"]
    assert '<fieldset role="radiogroup" aria-labelledby="question">' in page
    assert len(re.findall(r'<input type="radio"[^>]*name="option"', page)) == 2
    assert '<button type="submit">Vote</button>' in page


async def test_poll_page_says_when_the_poll_closes(client: httpx.AsyncClient) -> None:
    closes_at = (now_ms() // 60_000 + 30 * 24 * 60) * 60_000  # in 30 days, on a whole minute
    utc = time.gmtime(closes_at / 1000)
    response = await client.post(
        "/api/v1/polls",
        json={"question": "Tea or coffee?", "options": ["Tea", "Coffee"], "closes_at": closes_at},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    page = (await client.get(f"/polls/{response.json()['id']}")).text

    iso = time.strftime("%Y-%m-%dT%H:%M:00Z", utc)
    assert f'data-closes-at="{closes_at}">Voting closes on <time datetime="{iso}">' in page
    assert f"{time.strftime('%B', utc)} {utc.tm_mday}, {time.strftime('%Y, %H:%M', utc)} UTC</time>" in page


async def test_closed_poll_page_says_closed_and_disables_the_form(client: httpx.AsyncClient) -> None:
    poll = await _create_poll(client)
    await close_poll(client, poll["id"])

    page = (await client.get(f"/polls/{poll['id']}")).text

    assert "This poll is closed: it closed on <time" in page
    assert '<fieldset role="radiogroup" aria-labelledby="question" disabled>' in page
    assert '<button type="submit" disabled>Vote</button>' in page


async def test_poll_page_has_link_preview_tags_with_the_question(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/polls",
        json={"question": 'Fish & "chips"?', "options": ["Yes", "No"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    poll = response.json()

    page = (await client.get(f"/polls/{poll['id']}")).text

    assert '<meta property="og:title" content="Fish &amp; &#34;chips&#34;?">' in page
    assert f'<meta property="og:url" content="{poll["url"]}">' in page
    assert '<meta property="og:description" content="A poll with 2 options.' in page


async def test_poll_page_is_gzipped_on_the_wire(client: httpx.AsyncClient) -> None:
    poll = await _create_poll(client)

    async with client.stream("GET", f"/polls/{poll['id']}", headers={"accept-encoding": "gzip"}) as response:
        sent = b"".join([chunk async for chunk in response.aiter_raw()])

    assert response.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in response.headers["vary"].lower()
    assert b"Tea or coffee?" in gzip.decompress(sent)
    assert len(sent) < len(gzip.decompress(sent)) / 2


async def test_api_answers_are_not_compressed_by_the_page_middleware(client: httpx.AsyncClient) -> None:
    poll = await _create_poll(client)

    response = await client.get(f"/api/v1/polls/{poll['id']}", headers={"accept-encoding": "gzip"})

    assert "content-encoding" not in response.headers


async def test_vote_form_posted_without_script_gets_words_not_json(client: httpx.AsyncClient) -> None:
    poll = await _create_poll(client)

    response = await client.post(
        f"/polls/{poll['id']}", data={"option": "tea"}, headers={"accept": "text/html,*/*;q=0.8"}
    )

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Your vote was not sent</h1>" in response.text
    assert "needs JavaScript" in response.text
    assert f'href="/polls/{poll["id"]}"' in response.text
    results = (await client.get(f"/api/v1/polls/{poll['id']}/results")).json()
    assert results["total"] == 0


@pytest.mark.parametrize(
    ("method", "path", "status"), [("POST", "/polls/{id}/results", 405), ("GET", "/no-such-page", 404)]
)
async def test_a_browser_gets_errors_as_a_page_of_words(client: httpx.AsyncClient, method, path, status) -> None:
    poll = await _create_poll(client)
    url = path.replace("{id}", poll["id"])

    page = await client.request(method, url, headers={"accept": "text/html,application/xhtml+xml"})
    api = await client.request(method, url, headers={"accept": "application/json"})

    assert (page.status_code, api.status_code) == (status, status)
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>" in page.text
    assert "{" not in page.text.split("<main>")[1]
    assert api.headers["content-type"] == "application/problem+json"


async def test_api_errors_stay_json_for_a_browser(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/polls/no-such-poll", headers={"accept": "text/html,*/*"})

    assert response.headers["content-type"] == "application/problem+json"


async def test_device_votes_say_nothing_until_the_script_has_looked(client: httpx.AsyncClient) -> None:
    poll = await _create_poll(client)

    page = (await client.get(f"/polls/{poll['id']}")).text

    assert '<p id="no-votes" class="meta" hidden>None yet.</p>' in page


async def test_poll_page_is_revalidated_on_every_visit(client: httpx.AsyncClient) -> None:
    poll = await _create_poll(client)

    response = await client.get(f"/polls/{poll['id']}")

    assert response.headers["cache-control"] == "no-cache"


async def test_poll_page_escapes_the_question(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/polls",
        json={"question": "<script>alert(1)</script>", "options": ["A", "B"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    page = (await client.get(f"/polls/{response.json()['id']}")).text

    assert "<script>alert(1)</script>" not in page


async def test_poll_page_links_scripts_with_subresource_integrity(client: httpx.AsyncClient, dist: Path) -> None:
    script = await _static_url(client, r'<script type="module" src="(/static/page\.[0-9a-f]+\.js)"')
    page = (await client.get(f"/polls/{(await _create_poll(client))['id']}")).text
    digest = base64.b64encode(hashlib.sha384((dist / script.lstrip("/")).read_bytes()).digest()).decode()

    assert f'integrity="sha384-{digest}"' in page


async def test_unknown_poll_page_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/polls/no-such-poll")

    assert response.status_code == 404
    assert "Poll not found" in response.text


async def test_hashed_asset_is_cached_for_a_year(client: httpx.AsyncClient) -> None:
    url = await _static_url(client, r'href="(/static/style\.[0-9a-f]+\.css)"')

    response = await client.get(url)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["content-type"].startswith("text/css")


async def test_hashed_asset_is_served_precompressed_with_brotli(client: httpx.AsyncClient, dist: Path) -> None:
    url = await _static_url(client, r'src="(/static/page\.[0-9a-f]+\.js)"')

    # A raw stream: httpx would otherwise decode the body and hide what was sent.
    async with client.stream("GET", url, headers={"accept-encoding": "br"}) as response:
        sent = b"".join([chunk async for chunk in response.aiter_raw()])

    assert response.headers["content-encoding"] == "br"
    assert brotli.decompress(sent) == (dist / url.lstrip("/")).read_bytes()


async def test_static_path_outside_the_manifest_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/static/asset-manifest.json")

    assert response.status_code == 404


async def test_service_worker_is_served_at_the_root_and_revalidated(client: httpx.AsyncClient) -> None:
    response = await client.get("/sw.js")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["content-type"].startswith("text/javascript")


async def test_service_worker_unchanged_answers_not_modified(client: httpx.AsyncClient) -> None:
    etag = (await client.get("/sw.js")).headers["etag"]

    response = await client.get("/sw.js", headers={"if-none-match": etag})

    assert response.status_code == 304


async def test_service_worker_revalidation_follows_the_if_none_match_list(client: httpx.AsyncClient) -> None:
    etag = (await client.get("/sw.js")).headers["etag"]

    assert (await client.get("/sw.js", headers={"if-none-match": f'"old", W/{etag}'})).status_code == 304
    assert (await client.get("/sw.js", headers={"if-none-match": "*"})).status_code == 304
    # The tag within other text is not the tag: a full answer, not a stale copy kept.
    assert (await client.get("/sw.js", headers={"if-none-match": f"{etag}x"})).status_code == 200


async def test_web_app_manifest_is_served_with_its_media_type(client: httpx.AsyncClient) -> None:
    response = await client.get("/manifest.webmanifest")

    assert response.headers["content-type"].startswith("application/manifest+json")
    assert response.json()["display"] == "standalone"


async def test_poll_page_links_a_web_app_manifest_that_starts_at_the_poll(client: httpx.AsyncClient) -> None:
    poll = await _create_poll(client)
    page = (await client.get(f"/polls/{poll['id']}")).text
    manifest_url = re.search(r'<link rel="manifest" href="([^"]+)"', page).group(1)

    manifest = (await client.get(manifest_url)).json()

    assert manifest["start_url"] == f"/polls/{poll['id']}"


async def test_cdn_build_lets_the_page_load_assets_from_the_cdn(tmp_path: Path, cdn_dist: Path) -> None:
    async with AsyncTestClient(app=create_app(_settings(tmp_path, cdn_dist))) as cdn_client:
        poll = await _create_poll(cdn_client)
        response = await cdn_client.get(f"/polls/{poll['id']}")

    assert 'src="https://cdn.example/static/page.' in response.text
    assert "script-src 'self' https://cdn.example;" in response.headers["content-security-policy"]


async def test_cdn_build_keeps_votes_on_the_service(tmp_path: Path, cdn_dist: Path) -> None:
    async with AsyncTestClient(app=create_app(_settings(tmp_path, cdn_dist))) as cdn_client:
        response = await cdn_client.get("/sw.js")

    assert "connect-src 'self' https://cdn.example;" in response.headers["content-security-policy"]


async def test_page_without_a_build_says_how_to_build(tmp_path: Path) -> None:
    async with AsyncTestClient(app=create_app(_settings(tmp_path, tmp_path / "missing"))) as bare_client:
        poll = await _create_poll(bare_client)
        response = await bare_client.get(f"/polls/{poll['id']}")

    assert response.status_code == 503
    assert "build.py" in response.text


async def test_results_page_shows_each_option_with_its_count_and_share_as_text(client: httpx.AsyncClient) -> None:
    poll = await _create_poll(client)
    tea = poll["options"][0]["id"]
    for _ in range(3):
        assert (await send_vote(client, Voter().vote(poll["id"], tea))).status_code == 201

    page = (await client.get(f"/polls/{poll['id']}/results")).text

    row = re.search(r'<tr data-option-id="' + tea + r'">(.*?)</tr>', page, re.S)
    assert row, page
    assert re.search(r">Tea</span>.*<td data-votes>3</td>\s*<td data-share>100%</td>", row.group(1), re.S)
    assert "3 votes in total." in page


async def test_poll_page_shows_the_results_too(client: httpx.AsyncClient) -> None:
    poll = await _create_poll(client)

    page = (await client.get(f"/polls/{poll['id']}")).text

    assert '<h2 id="results-title">Results</h2>' in page
    assert "0 votes in total." in page


async def test_results_page_of_an_unknown_poll_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/polls/no-such-poll/results")

    assert response.status_code == 404


async def test_results_page_embeds_its_counts_safely_in_an_attribute(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/polls",
        json={"question": "Quotes?", "options": ['It\'s "odd" <b>', "B"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    poll = response.json()

    page = (await client.get(f"/polls/{poll['id']}/results")).text

    embedded = re.search(r"data-results='([^']*)'", page)
    assert embedded, page
    assert json.loads(html.unescape(embedded.group(1)))["options"][0]["label"] == 'It\'s "odd" <b>'
