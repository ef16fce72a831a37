"""The assets build.py wrote to dist/: the manifest templates link by, and the handlers that serve
hashed files (cached for a year), the service worker and the web app manifest in the page's
language (revalidated)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from app.core.i18n import N_, language_of, page_language, translations
from app.core.protocol import ID_PATTERN
from app.edge.deps import SettingsDep
from app.edge.http import get_or_head, none_match
from app.edge.security import CONTENT_SECURITY_POLICY

MANIFEST_FILE = "asset-manifest.json"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Directives that must also allow the asset origin when build.py --base-url points at a CDN.
CDN_DIRECTIVES = ("script-src", "style-src", "img-src", "connect-src")
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))  # preferred first


class AssetsNotBuilt(RuntimeError):
    """dist/ has no asset manifest: build.py has not run (or wrote elsewhere)."""


@dataclass(frozen=True)
class BuiltFile:
    path: Path
    content_type: str


@dataclass(frozen=True)
class Assets:
    dist_dir: Path
    manifest: dict[str, Any]

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """Logical name -> {"url", "integrity", ...}: what the templates use."""
        return self.manifest["assets"]

    @property
    def origin(self) -> str | None:
        """The asset origin when it differs from the service's (a CDN), else None."""
        parts = urlsplit(self.manifest.get("base_url", "/"))
        return f"{parts.scheme}://{parts.netloc}" if parts.netloc else None

    def static_file(self, name: str) -> BuiltFile | None:
        # Only files the manifest names are served: no path from the URL reaches the disk.
        for entry in self.links.values():
            if entry["path"] == f"static/{name}":
                return BuiltFile(self.dist_dir / entry["path"], entry["content_type"])
        return None

    def named_file(self, key: str) -> BuiltFile:
        entry = self.manifest[key]
        return BuiltFile(self.dist_dir / entry["path"], entry["content_type"])

    def content_security_policy(self) -> str:
        origin = self.origin
        if origin is None:
            return CONTENT_SECURITY_POLICY
        directives = []
        for directive in CONTENT_SECURITY_POLICY.split("; "):
            name = directive.split(" ", 1)[0]
            directives.append(f"{directive} {origin}" if name in CDN_DIRECTIVES else directive)
        return "; ".join(directives)


_loaded: dict[Path, tuple[int, Assets]] = {}


def load_assets(dist_dir: Path) -> Assets:
    """The current build's manifest, re-read when build.py rewrites it."""
    path = dist_dir / MANIFEST_FILE
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise AssetsNotBuilt(f"{path} is missing: run `python build.py` (or `make build`) first") from None
    cached = _loaded.get(dist_dir)
    if cached is None or cached[0] != mtime:
        cached = (mtime, Assets(dist_dir, json.loads(path.read_bytes())))
        _loaded[dist_dir] = cached
    return cached[1]


def _accepted_encodings(header: str) -> set[str]:
    accepted = set()
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        quality = params.strip().removeprefix("q=") if params.strip().startswith("q=") else "1"
        try:
            if float(quality) > 0:
                accepted.add(name.strip().lower())
        except ValueError:
            continue
    return accepted


def file_response(request: Request, built: BuiltFile, cache_control: str, **headers: str) -> Response[bytes]:
    """The file, or its precompressed copy when the client takes one, with a validator."""
    accepted = _accepted_encodings(request.headers.get("accept-encoding", ""))
    body_path, encoding = built.path, None
    for name, suffix in ENCODINGS:
        candidate = built.path.with_name(built.path.name + suffix)
        if name in accepted and candidate.is_file():
            body_path, encoding = candidate, name
            break
    try:
        body = body_path.read_bytes()
    except FileNotFoundError:
        raise NotFoundException() from None
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"cache-control": cache_control, "etag": etag, "vary": "accept-encoding", **headers}
    if encoding:
        headers["content-encoding"] = encoding
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type=built.content_type, headers=headers)


@get_or_head("/static/{name:str}", include_in_schema=False, sync_to_thread=False)
def static_asset(request: Request, name: FromPath[str], settings: SettingsDep) -> Response[bytes]:
    built = load_assets(settings.dist_dir).static_file(name)
    if built is None:
        raise NotFoundException()
    # CORS, so pages may load these with Subresource Integrity from any origin they are copied to.
    return file_response(request, built, IMMUTABLE, **{"access-control-allow-origin": "*"})


@get_or_head("/sw.js", include_in_schema=False, sync_to_thread=False)
def service_worker(request: Request, settings: SettingsDep) -> Response[bytes]:
    assets = load_assets(settings.dist_dir)
    # The worker's own CSP governs its fetches: it must reach the asset origin to precache.
    return file_response(
        request,
        assets.named_file("sw"),
        REVALIDATE,
        **{"content-security-policy": assets.content_security_policy()},
    )


# The web app manifest in the page's language: build.py writes it in English; an installed app's
# name and description come from the catalogues, with the language's `lang` and `dir`. Pages link
# it with their language in the address (?lang=), as a manifest is fetched without the cookie.
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


asset_handlers = [static_asset, service_worker, web_app_manifest, poll_web_app_manifest]
