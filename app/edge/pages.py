"""The voter's pages, rendered on the server, plus the built assets they link."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import msgspec
from litestar import MediaType, Response
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig

from app.core.protocol import ID_PATTERN
from app.edge.assets import AssetsNotBuilt, asset_handlers, load_assets
from app.edge.deps import DatabaseDep, SettingsDep
from app.edge.http import get_or_head
from app.polls.results import load_results
from app.polls.store import load_poll

TEMPLATES_DIR = Path(__file__).parent / "templates"

# A page is rebuilt from the database on every visit; the service worker keeps the offline copy.
PAGE_CACHE_CONTROL = "no-cache"


async def _render(template: str, poll_id: str, db: DatabaseDep, settings: SettingsDep) -> Template | Response[str]:
    try:
        assets = load_assets(settings.dist_dir)
    except AssetsNotBuilt as error:
        return Response(f"The page's assets are not built. {error}", status_code=503, media_type=MediaType.TEXT)
    headers = {"cache-control": PAGE_CACHE_CONTROL, "content-security-policy": assets.content_security_policy()}
    poll = await load_poll(db, poll_id) if re.fullmatch(ID_PATTERN, poll_id) else None
    results = await load_results(db, poll_id) if poll is not None else None
    if poll is None or results is None:
        return Template("not_found.html", context={"assets": assets.links}, status_code=404, headers=headers)
    context = {
        "poll": poll,
        "results": msgspec.to_builtins(results),
        # When these counts were current: the page shows their age once it is offline.
        "known_at": int(time.time() * 1000),
        "assets": assets.links,
    }
    return Template(template, context=context, headers=headers)


@get_or_head("/polls/{poll_id:str}", include_in_schema=False)
async def poll_page(poll_id: FromPath[str], db: DatabaseDep, settings: SettingsDep) -> Template | Response[str]:
    """The voter's page: the question, the vote form, this device's votes and the live results."""
    return await _render("poll.html", poll_id, db, settings)


@get_or_head("/polls/{poll_id:str}/results", include_in_schema=False)
async def results_page(poll_id: FromPath[str], db: DatabaseDep, settings: SettingsDep) -> Template | Response[str]:
    """The live results alone, e.g. for a projector or an organiser's screen."""
    return await _render("results.html", poll_id, db, settings)


@get_or_head("/polls/{poll_id:str}/manifest.webmanifest", include_in_schema=False, sync_to_thread=False)
def poll_web_app_manifest(poll_id: FromPath[str], settings: SettingsDep) -> Response[bytes]:
    """build.py's web app manifest, made to start at this poll: an installed app opens the poll."""
    if not re.fullmatch(ID_PATTERN, poll_id):
        raise NotFoundException()
    built = load_assets(settings.dist_dir).named_file("webmanifest")
    manifest = json.loads(built.path.read_bytes())
    manifest["id"] = manifest["start_url"] = f"/polls/{poll_id}"
    return Response(
        json.dumps(manifest, sort_keys=True).encode(),
        media_type=built.content_type,
        headers={"cache-control": PAGE_CACHE_CONTROL},
    )


def template_config() -> TemplateConfig:
    return TemplateConfig(directory=TEMPLATES_DIR, engine=JinjaTemplateEngine, engine_callback=_configure_templates)


def _configure_templates(engine: JinjaTemplateEngine) -> None:
    """Block tags leave no blank lines, which keeps the page small. build.py renders the page with
    the same options to measure it."""
    engine.engine.trim_blocks = True
    engine.engine.lstrip_blocks = True


page_handlers: list = [poll_page, results_page, poll_web_app_manifest, *asset_handlers]
