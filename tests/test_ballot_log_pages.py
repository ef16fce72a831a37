"""The log's code in the browser build: off the poll page's critical path, precached by the
worker; and /verify, served like the poll page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from tests import served_pages
from tests.helpers import ADMIN_TOKEN as TOKEN

# The fixtures: one build for this module, and the service on it.
dist = served_pages.dist
client = served_pages.client


def test_the_log_check_is_a_module_the_worker_precaches(dist: Path):
    manifest = json.loads((dist / "asset-manifest.json").read_text())
    module = (dist / manifest["assets"]["log-verify.js"]["path"]).read_text()
    assert re.search(r"export\s*\{[^}]*\bwatchInLog\b", module)
    sw = (dist / "sw.js").read_text()
    for name in ("log-verify.js", "verify.js"):
        assert manifest["assets"][name]["url"] in sw


async def test_the_poll_page_names_the_log_module_without_loading_it(client: httpx.AsyncClient, dist: Path):
    poll = await client.post(
        "/api/v1/polls", json={"question": "Q?", "options": ["A", "B"]}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    page = (await client.get(f"/polls/{poll.json()['id']}")).text
    url = json.loads((dist / "asset-manifest.json").read_text())["assets"]["log-verify.js"]["url"]
    assert f'data-log-module="{url}"' in page
    assert f'src="{url}"' not in page  # imported after Confirmed, not on the first load


async def test_verify_page_is_served_with_its_script_and_policy(client: httpx.AsyncClient, dist: Path):
    response = await client.get("/verify")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    assert "script-src" in response.headers["content-security-policy"]
    url = json.loads((dist / "asset-manifest.json").read_text())["assets"]["verify.js"]["url"]
    assert f'src="{url}"' in response.text
    assert "Tracker code" in response.text
    head = await client.head("/verify")
    assert (head.status_code, head.content) == (200, b"")
