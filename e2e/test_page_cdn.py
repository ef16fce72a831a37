"""The page with its assets on a CDN origin (build.py --base-url): it votes and works offline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect
from voter import open_poll

pytestmark = pytest.mark.e2e

CDN = "https://cdn.test"
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def serve_from(dist: Path) -> Callable[[Route], None]:
    """Answers for the CDN: the built files, with CORS as build.py's _headers file asks."""

    def handle(route: Route) -> None:
        path = (dist / route.request.url.removeprefix(f"{CDN}/")).resolve()
        if not path.is_relative_to(dist) or not path.is_file():
            route.fulfill(status=404)
            return
        route.fulfill(
            path=path,
            content_type=CONTENT_TYPES[path.suffix],
            headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=31536000, immutable"},
        )

    return handle


def test_page_with_assets_on_a_cdn_confirms_a_vote(page: Page, cdn_service) -> None:
    page.context.route(f"{CDN}/**", serve_from(cdn_service.dist_dir))
    poll = cdn_service.create_poll()
    voter = open_poll(page, cdn_service.poll_url(poll), poll)

    voter.vote("Red")

    expect(voter.status).to_have_text("Confirmed · receipt #1")


def test_page_with_assets_on_a_cdn_works_offline(page: Page, cdn_service) -> None:
    page.context.route(f"{CDN}/**", serve_from(cdn_service.dist_dir))
    poll = cdn_service.create_poll()
    voter = open_poll(page, cdn_service.poll_url(poll), poll)
    voter.wait_until_offline_ready()
    page.context.unroute(f"{CDN}/**")
    page.context.set_offline(True)

    page.reload()

    expect(voter.vote_button).to_have_css("min-height", "48px")
