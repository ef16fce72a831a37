"""The web app manifest in the page's language: build.py writes it in English; an installed app's
name and description come from the catalogues, with the language's `lang` and `dir`. Pages link
it with their language in the address (?lang=), as a manifest is fetched without the cookie."""

from __future__ import annotations

import json
import re

from litestar import Request, Response
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from app.core.i18n import N_, language_of, page_language, translations
from app.core.protocol import ID_PATTERN
from app.edge.assets import REVALIDATE, BuiltFile, load_assets
from app.edge.deps import SettingsDep
from app.edge.http import get_or_head

APP_NAME = N_("Vote")
APP_DESCRIPTION = N_("Vote on this device, online or not. Every vote is kept until the server confirms it.")


def manifest_response(request: Request, built: BuiltFile, start_url: str | None = None) -> Response[bytes]:
    """build.py's manifest in the request's language; starting at `start_url` when given."""
    lang = language_of(request)
    words = translations(lang)
    manifest = json.loads(built.path.read_bytes())
    name = words.gettext(APP_NAME)
    manifest.update(name=name, short_name=name, description=words.gettext(APP_DESCRIPTION))
    manifest.update(lang=lang, dir=page_language(lang).dir)
    if start_url is not None:
        manifest["id"] = manifest["start_url"] = start_url
    body = json.dumps(manifest, ensure_ascii=False, sort_keys=True).encode()
    return Response(body, media_type=built.content_type, headers={"cache-control": REVALIDATE})


@get_or_head("/manifest.webmanifest", include_in_schema=False, sync_to_thread=False)
def web_app_manifest(request: Request, settings: SettingsDep) -> Response[bytes]:
    return manifest_response(request, load_assets(settings.dist_dir).named_file("webmanifest"))


@get_or_head("/polls/{poll_id:str}/manifest.webmanifest", include_in_schema=False, sync_to_thread=False)
def poll_web_app_manifest(request: Request, poll_id: FromPath[str], settings: SettingsDep) -> Response[bytes]:
    """The manifest made to start at this poll: an installed app opens the poll."""
    if not re.fullmatch(ID_PATTERN, poll_id):
        raise NotFoundException()
    built = load_assets(settings.dist_dir).named_file("webmanifest")
    return manifest_response(request, built, start_url=f"/polls/{poll_id}")


manifest_handlers = [web_app_manifest, poll_web_app_manifest]
