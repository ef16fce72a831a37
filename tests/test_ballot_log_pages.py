"""The log's code in the browser build: off the poll page's critical path, precached by the
worker; and /verify, served like the poll page."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app import create_app
from app.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "log-pages-test-admin-token-0123"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, str(ROOT / "build.py"), "--out", str(out)], check=True, capture_output=True)
    return out


@pytest.fixture
async def client(tmp_path: Path, dist: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'votes.db'}",
        data_dir=tmp_path / "data",
        admin_token=TOKEN,
        dist_dir=dist,
    )
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


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
