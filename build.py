#!/usr/bin/env python3
"""Build the voter's page into dist/: bundled, minified, content-hashed assets, the service
worker with its precache list, the web app manifest and icons, precompressed copies, a
`_headers` file, and `asset-manifest.json` that the server's templates read.

    python build.py [--out dist] [--base-url https://cdn.example/]

The same sources always give the same bytes.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import itertools
import json
import re
import shutil
import struct
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import brotli
import jinja2
import rcssmin
import rjsmin
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

# The templates' language helpers come from this tree's app/, whatever else is on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from app.core import i18n
from app.edge.assets import APP_DESCRIPTION, APP_NAME

ROOT = Path(__file__).resolve().parent
DEFAULT_OUT = ROOT / "dist"
TEMPLATES = ROOT / "app" / "edge" / "templates"

PAGE_ENTRY = "frontend/page.js"
POW_WORKER = "frontend/pow-worker.js"  # a Web Worker of its own: off the critical path
LOG_MODULE_ENTRY = "frontend/log-verify.js"  # imported by the page only after a vote is confirmed
ADVICE_ENTRY = "frontend/advice.js"  # words for rare failures, imported by the page once it is drawn
AFTER_VOTE_ENTRY = "frontend/results-after-vote.js"  # imported by the page after Confirmed
RESULTS_ENTRY = "frontend/results.js"  # the live results, imported by the page once it is drawn
VERIFY_ENTRY = "frontend/verify.js"  # the /verify page's script
STYLESHEET = "frontend/style.css"
# The organiser's pages have their own script and styles, off the voter's critical path (the
# service worker precaches them with the rest, in the background, like every built asset).
ORGANISER_ENTRY = "frontend/organiser.js"
ORGANISER_STYLESHEET = "frontend/organiser.css"
SW_ENTRY = "sw/sw.js"
SW_MANIFEST_MODULE = "sw/manifest.js"  # replaced in the bundle by the generated precache list
PAGE_TEMPLATE = "poll.html"
# Translations: each language's catalogue goes into its own copy of each script that shows words
# (in place of MESSAGES_MODULE), so no language pays for another's on the critical path.
LOCALE_DIR = "app/locale"
MESSAGES_MODULE = "frontend/messages.js"
LOCALIZED_SCRIPTS = (
    "page.js",
    "advice.js",
    "results.js",
    "results-after-vote.js",
    "log-verify.js",
    "verify.js",
    "organiser.js",
)
# The one script that looks messages up at run time (K_() keys, stored in English with a vote): the
# others carry their words translated in place, and no catalogue.
LOOKUP_SCRIPTS = ("advice.js",)
PLURAL_EXPR_RE = re.compile(r"[n0-9\s%<>=!&|?:()]+")  # C's plural syntax, which is also JavaScript's

STATIC_DIR = "static"
MANIFEST_FILE = "asset-manifest.json"
SW_FILE = "sw.js"
WEBMANIFEST_FILE = "manifest.webmanifest"
HEADERS_FILE = "_headers"

HASH_CHARS = 10  # 40 bits of SHA-256: ample for a handful of files per release
BUDGET_BYTES = 14 * 1024  # the first round trip of a new TCP connection (10 segments of ~1.4 KB)
ICON_SIZES = (192, 512)
THEME_COLOR = "#0b57d0"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".webmanifest": "application/manifest+json",
}
IMMUTABLE = "public, max-age=31536000, immutable"

# A poll as big as a typical one, to measure the page's critical path.
SAMPLE_POLL = {
    "id": "budget-sample-poll",
    "question": "Which day should the neighbourhood meeting move to next month?",
    "options": [{"id": f"o{i}", "label": label} for i, label in enumerate(("Monday", "Wednesday", "Saturday"))],
    "closes_at": 1_764_600_000_000,
}
# What app/edge/pages.py gives the page about the close and the link preview, for SAMPLE_POLL.
SAMPLE_CLOSING = {
    "closes_at": 1_764_600_000_000,
    "closed": False,
    "iso": "2025-12-01T14:40:00Z",
    "text": "1 December 2025, 14:40 UTC",
}
SAMPLE_PREVIEW = {
    "url": "https://vote.example/polls/budget-sample-poll",
}
SAMPLE_RESULTS = {
    "poll_id": SAMPLE_POLL["id"],
    "total": 1234,
    "options": [
        {**option, "votes": votes} for option, votes in zip(SAMPLE_POLL["options"], (617, 411, 206), strict=True)
    ],
}
SAMPLE_KNOWN_AT = 1_764_000_000_000  # fixed, so the same sources give the same bytes


class BuildError(Exception):
    """An input is missing or broken, or the output is over budget; the message says which."""


@dataclass
class Asset:
    name: str  # logical name the templates use, e.g. "page.js"
    path: str  # path inside dist/, e.g. "static/page.0123456789.js"
    data: bytes

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[Path(self.path).suffix]


@dataclass
class Report:
    out_dir: Path
    files: dict[str, tuple[int, int | None, int | None]] = field(default_factory=dict)
    critical_path_bytes: int = 0  # the largest of the languages'
    critical_path_by_language: dict[str, int] = field(default_factory=dict)


# --- content naming ------------------------------------------------------------------------


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:HASH_CHARS]


def hashed_name(name: str, data: bytes) -> str:
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}.{content_hash(data)}.{suffix}" if dot else f"{name}.{content_hash(data)}"


def integrity(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def gzip_bytes(data: bytes) -> bytes:
    # mtime=0 keeps the header free of the build time, so builds are reproducible.
    return gzip.compress(data, compresslevel=9, mtime=0)


def brotli_bytes(data: bytes) -> bytes:
    return brotli.compress(data, quality=11)


# --- bundling ------------------------------------------------------------------------------
# The sources are hand-written ES modules that keep to a small subset: `import { a, b } from
# "./x.js";` and `export` before a top-level declaration. That subset is enough to join them
# into one script, which the service worker needs (module workers are not everywhere yet) and
# which saves the page a waterfall of requests on a slow network.

IMPORT_RE = re.compile(r'^import\s*\{([^}]*)\}\s*from\s*"(\.{1,2}/[^"]+)";[ \t]*$', re.M)
EXPORT_RE = re.compile(r"^export (?=(?:async\s+)?function\*?\s|const\s|let\s|class\s)", re.M)
DECLARATION_RE = re.compile(r"^(?:export )?(?:async\s+)?(?:function\*?|const|let|var|class)\s+([A-Za-z_$][\w$]*)", re.M)


@dataclass
class Module:
    path: Path
    body: str
    imports: list[tuple[Path, list[str]]]
    exports: set[str]
    declared: set[str]


def _where(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def parse_module(path: Path, source: str) -> Module:
    imports = []
    for match in IMPORT_RE.finditer(source):
        names = [n.strip() for n in match.group(1).split(",") if n.strip()]
        for name in names:
            if not re.fullmatch(r"[A-Za-z_$][\w$]*", name):
                raise BuildError(f"{_where(path)}: unsupported import {name!r} (no renaming in bundled modules)")
        imports.append(((path.parent / match.group(2)).resolve(), names))
    body = IMPORT_RE.sub("", source)
    for number, line in enumerate(body.splitlines(), 1):
        if re.match(r"\s*import[\s{*]", line) or re.match(r"export\s+(default|\{|\*)", line):
            raise BuildError(f"{_where(path)}:{number}: unsupported module syntax: {line.strip()}")
    exports = {m.group(1) for m in DECLARATION_RE.finditer(body) if m.group(0).startswith("export ")}
    declared = {m.group(1) for m in DECLARATION_RE.finditer(body)}
    return Module(path, EXPORT_RE.sub("", body), imports, exports, declared)


def bundle(entry: Path, replacements: dict[Path, str] | None = None, *, as_module: bool = False) -> str:
    """Joins `entry` and every module it imports into one script, dependencies first.

    `as_module`: an ES module that exports what `entry` exports, for a dynamic import()."""
    replacements = {p.resolve(): s for p, s in (replacements or {}).items()}
    modules: dict[Path, Module] = {}
    order: list[Module] = []

    def visit(path: Path, trail: tuple[Path, ...]) -> Module:
        if path in trail:
            raise BuildError("import cycle: " + " -> ".join(_where(p) for p in (*trail, path)))
        if path in modules:
            return modules[path]
        if path in replacements:
            source = replacements[path]
        elif path.is_file():
            source = path.read_text(encoding="utf-8")
        else:
            importer = f" (imported by {_where(trail[-1])})" if trail else ""
            raise BuildError(f"missing input: {_where(path)}{importer}")
        module = parse_module(path, source)
        for target, names in module.imports:
            dependency = visit(target, (*trail, path))
            for name in names:
                if name not in dependency.exports:
                    raise BuildError(f"{_where(path)}: imports {name!r}, which {_where(target)} does not export")
        modules[path] = module
        order.append(module)
        return module

    visit(entry.resolve(), ())
    seen: dict[str, Path] = {}
    for module in order:
        for name in module.declared:
            if name in seen:
                raise BuildError(
                    f"{_where(module.path)}: top-level name {name!r} is also declared in {_where(seen[name])}"
                )
            seen[name] = module.path
    parts = [f"// {_where(m.path)}\n{m.body.strip()}\n" for m in order]
    if as_module:  # module scope already keeps the names private
        exported = ", ".join(sorted(order[-1].exports))
        return '"use strict";\n' + "\n".join(parts) + f"export {{ {exported} }};\n"
    # One function scope keeps the bundle's names out of the global object.
    return '(() => {\n"use strict";\n' + "\n".join(parts) + "})();\n"


def minify_js(source: str) -> bytes:
    return rjsmin.jsmin(source).encode()


def minify_css(path: Path) -> bytes:
    if not path.is_file():
        raise BuildError(f"missing input: {_where(path)}")
    source = path.read_text(encoding="utf-8")
    stripped = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    if stripped.count("{") != stripped.count("}"):
        raise BuildError(f"{_where(path)}: unbalanced braces")
    return rcssmin.cssmin(source).encode()


# --- translations ----------------------------------------------------------------------------


def languages(source_root: Path) -> dict[str, Path]:
    """Each language with a catalogue, to its .po file (English, the messages' own, has none)."""
    found = {}
    for po in sorted((source_root / LOCALE_DIR).glob("*/LC_MESSAGES/messages.po")):
        found[po.parent.parent.name] = po
    return found


def load_catalog(po: Path) -> Catalog:
    try:
        with po.open("rb") as source:
            return read_po(source, locale=po.parent.parent.name)
    except Exception as error:  # Babel raises several kinds for a broken file
        raise BuildError(f"{_where(po)}: {error}") from error


def render_messages_module(catalog: Catalog, bundle_source: str, *, lookups: bool = True) -> str:
    """messages.js for one language and one bundle: only the messages that bundle contains, and
    none unless it looks messages up at run time."""
    expression = catalog.plural_expr
    if not PLURAL_EXPR_RE.fullmatch(expression):
        raise BuildError(f"{catalog.locale}: unexpected plural expression {expression!r}")
    messages: dict[str, str | list[str]] = {}
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        if not lookups or json.dumps(key, ensure_ascii=False) not in bundle_source:
            continue
        if isinstance(message.id, tuple):
            forms = list(message.string)
            if all(forms):
                messages[key] = forms
        elif message.string:
            messages[key] = message.string
    return (
        f"export const LANG = {json.dumps(str(catalog.locale).replace('_', '-'))};\n"
        f"export const MESSAGES = {json.dumps(messages, ensure_ascii=False, sort_keys=True)};\n"
        f"export function pluralIndex(n) {{\n  return Number({expression});\n}}\n"
    )


JS_STRING = r'"(?:[^"\\\n]|\\.)*"'
GETTEXT_CALL_RE = re.compile(rf"(?<![\w$.])(N?_)\(\s*({JS_STRING})")
NGETTEXT_CALL_RE = re.compile(rf"(?<![\w$.])ngettext\(\s*({JS_STRING})\s*,\s*({JS_STRING})")


def translate_calls(source: str, catalog: Catalog) -> str:
    """Puts each translation in place of the English literal it translates: `_("Vote")` becomes
    `_("Votar")`, and `ngettext("…", "…", n)` gets the language's plural forms. The bundle then
    carries each message once, in its language; what is left for MESSAGES is the messages marked
    with K_(), kept in English as keys and looked up at run time."""

    def lookup(literal: str) -> Message | None:
        try:
            return catalog.get(json.loads(literal))
        except ValueError:  # a JavaScript escape JSON lacks (\x41, \'): left as written, in English
            return None

    def single(match: re.Match[str]) -> str:
        message = lookup(match.group(2))
        if message is None or message.fuzzy or not message.string or isinstance(message.id, tuple):
            return match.group(0)
        return f"{match.group(1)}({json.dumps(message.string, ensure_ascii=False)}"

    def plural(match: re.Match[str]) -> str:
        message = lookup(match.group(1))
        if message is None or message.fuzzy or not isinstance(message.id, tuple) or not all(message.string):
            return match.group(0)
        return f"ngettext({json.dumps(list(message.string), ensure_ascii=False)}, 0"

    return NGETTEXT_CALL_RE.sub(plural, GETTEXT_CALL_RE.sub(single, source))


def localized_bundle(
    entry: Path, catalog: Catalog, source_root: Path, *, as_module: bool = False, lookups: bool = False
) -> str:
    english = bundle(entry, as_module=as_module)
    translated = translate_calls(english, catalog)
    messages = render_messages_module(catalog, translated, lookups=lookups)
    return translate_calls(bundle(entry, {source_root / MESSAGES_MODULE: messages}, as_module=as_module), catalog)


# --- icons -----------------------------------------------------------------------------------


def png(width: int, height: int, rows: list[bytes]) -> bytes:
    """An 8-bit RGB PNG from raw rows, with no timestamp, so it is byte-for-byte reproducible."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def icon(size: int) -> bytes:
    """A white tick on the theme colour, inside the central 60% so it survives maskable crops."""
    background = bytes.fromhex(THEME_COLOR[1:])
    white = b"\xff\xff\xff"
    points = [(0.30, 0.52), (0.44, 0.66), (0.71, 0.36)]
    segments = list(itertools.pairwise(points))
    half_width = 0.05

    def on_tick(x: float, y: float) -> bool:
        for (ax, ay), (bx, by) in segments:
            dx, dy = bx - ax, by - ay
            t = max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)))
            if (x - ax - t * dx) ** 2 + (y - ay - t * dy) ** 2 <= half_width**2:
                return True
        return False

    rows = []
    for j in range(size):
        y = (j + 0.5) / size
        if not 0.25 < y < 0.75:
            rows.append(background * size)
            continue
        rows.append(b"".join(white if on_tick((i + 0.5) / size, y) else background for i in range(size)))
    return png(size, size, rows)


# --- generated files ---------------------------------------------------------------------------


def asset_url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + "/" + path


def render_sw_manifest(version: str, precache: list[str], by_language: dict[str, list[str]] | None = None) -> str:
    """`PRECACHE`: kept at install. `BY_LANGUAGE`: each translated language's scripts, kept once a
    page in that language is (sw/caching.js), so a device fetches only the languages it uses."""
    return (
        f"export const VERSION = {json.dumps(version)};\nexport const PRECACHE = {json.dumps(precache)};\n"
        f"export const BY_LANGUAGE = {json.dumps(by_language or {}, sort_keys=True)};\n"
    )


def render_webmanifest(icons: list[tuple[int, str]]) -> bytes:
    manifest = {
        "name": APP_NAME,
        "short_name": APP_NAME,
        "description": APP_DESCRIPTION,
        "lang": i18n.DEFAULT_LANGUAGE,
        "dir": "ltr",
        "id": "/",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": THEME_COLOR,
        "icons": [
            {"src": url, "sizes": f"{size}x{size}", "type": "image/png", "purpose": purpose}
            for size, url in icons
            for purpose in ("any", "maskable")
        ],
    }
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def render_headers() -> str:
    # The format Cloudflare Pages and Netlify read: a path pattern, then indented headers.
    return (
        f"/{STATIC_DIR}/*\n"
        f"  Cache-Control: {IMMUTABLE}\n"
        "  Access-Control-Allow-Origin: *\n"
        "  X-Content-Type-Options: nosniff\n"
        f"/{SW_FILE}\n"
        "  Cache-Control: no-cache\n"
        f"/{WEBMANIFEST_FILE}\n"
        "  Cache-Control: no-cache\n"
        "/*.html\n"
        "  Cache-Control: no-cache\n"
        "/polls/*\n"
        "  Cache-Control: no-cache\n"
    )


def render_sample_page(assets: dict[str, dict[str, str]], templates: Path = TEMPLATES, lang: str = "en") -> bytes:
    if not (templates / PAGE_TEMPLATE).is_file():
        raise BuildError(f"missing input: {_where(templates / PAGE_TEMPLATE)}")
    # The options app/edge/pages.py gives the service's engine.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    i18n.configure(env)
    try:
        html = env.get_template(PAGE_TEMPLATE).render(
            lang=lang,
            poll=SAMPLE_POLL,
            results=SAMPLE_RESULTS,
            known_at=SAMPLE_KNOWN_AT,
            assets=assets,
            closing=SAMPLE_CLOSING,
            preview=SAMPLE_PREVIEW,
        )
    except jinja2.TemplateError as error:
        raise BuildError(f"{PAGE_TEMPLATE}: {error}") from error
    return html.encode()


# --- the build -----------------------------------------------------------------------------------


def _prepare_out_dir(out_dir: Path) -> None:
    if out_dir.exists():
        # Only ever wipe a directory this script made.
        if any(out_dir.iterdir()) and not (out_dir / MANIFEST_FILE).is_file():
            raise BuildError(f"{out_dir} is not empty and holds no {MANIFEST_FILE}; refusing to overwrite it")
        shutil.rmtree(out_dir)
    (out_dir / STATIC_DIR).mkdir(parents=True)


def build(
    out_dir: Path = DEFAULT_OUT,
    base_url: str = "/",
    *,
    source_root: Path = ROOT,
    budget: int = BUDGET_BYTES,
) -> Report:
    if not (base_url.startswith("/") or re.match(r"https?://[^/]+", base_url)):
        raise BuildError(f"--base-url must be a path or an http(s) URL, got {base_url!r}")

    page_js = minify_js(bundle(source_root / PAGE_ENTRY))
    style_css = minify_css(source_root / STYLESHEET)
    pow_worker_js = minify_js(bundle(source_root / POW_WORKER))
    # Off the critical path: the log check is imported after Confirmed; /verify is another page.
    log_js = minify_js(bundle(source_root / LOG_MODULE_ENTRY, as_module=True))
    advice_js = minify_js(bundle(source_root / ADVICE_ENTRY, as_module=True))
    after_vote_js = minify_js(bundle(source_root / AFTER_VOTE_ENTRY, as_module=True))
    results_js = minify_js(bundle(source_root / RESULTS_ENTRY, as_module=True))
    verify_js = minify_js(bundle(source_root / VERIFY_ENTRY))
    assets = [
        Asset("page.js", "", page_js),
        Asset("pow-worker.js", "", pow_worker_js),
        Asset("style.css", "", style_css),
        Asset("log-verify.js", "", log_js),
        Asset("advice.js", "", advice_js),
        Asset("results-after-vote.js", "", after_vote_js),
        Asset("results.js", "", results_js),
        Asset("verify.js", "", verify_js),
    ]
    assets += [Asset(f"icon-{size}.png", "", icon(size)) for size in ICON_SIZES]
    assets += [
        Asset("organiser.js", "", minify_js(bundle(source_root / ORGANISER_ENTRY))),
        Asset("organiser.css", "", minify_css(source_root / ORGANISER_STYLESHEET)),
    ]
    entries = {
        "page.js": (PAGE_ENTRY, False),
        "advice.js": (ADVICE_ENTRY, True),
        "results-after-vote.js": (AFTER_VOTE_ENTRY, True),
        "results.js": (RESULTS_ENTRY, True),
        "log-verify.js": (LOG_MODULE_ENTRY, True),
        "verify.js": (VERIFY_ENTRY, False),
        "organiser.js": (ORGANISER_ENTRY, False),
    }
    catalogs = {lang: load_catalog(po) for lang, po in languages(source_root).items()}
    for lang, catalog in catalogs.items():
        for name in LOCALIZED_SCRIPTS:
            entry, as_module = entries[name]
            source = localized_bundle(
                source_root / entry, catalog, source_root, as_module=as_module, lookups=name in LOOKUP_SCRIPTS
            )
            assets.append(Asset(f"{name}@{lang}", "", minify_js(source)))
    for asset in assets:
        # "page.js@ar" is written as static/page.ar.<hash>.js
        name, _, lang = asset.name.partition("@")
        file_name = name.replace(".js", f".{lang}.js") if lang else name
        asset.path = f"{STATIC_DIR}/{hashed_name(file_name, asset.data)}"
    urls = {a.name: asset_url(base_url, a.path) for a in assets}

    webmanifest = render_webmanifest([(size, urls[f"icon-{size}.png"]) for size in ICON_SIZES])
    # English (the messages' own language) and everything without words are kept at install.
    precache = sorted(urls[a.name] for a in assets if "@" not in a.name)
    by_language: dict[str, list[str]] = {}
    for a in assets:
        if "@" in a.name:
            by_language.setdefault(a.name.partition("@")[2], []).append(urls[a.name])
    # The worker's version names everything it caches, so any change to any asset renews it.
    version = content_hash(b"\n".join([*(a.data for a in assets), webmanifest]))
    sw_source = bundle(
        source_root / SW_ENTRY,
        {source_root / SW_MANIFEST_MODULE: render_sw_manifest(version, precache, by_language)},
    )
    sw_js = minify_js(sw_source)

    manifest_assets = {
        a.name: {"path": a.path, "url": urls[a.name], "integrity": integrity(a.data), "content_type": a.content_type}
        for a in assets
    }
    by_name = {a.name: a.data for a in assets}
    by_language = {}
    for lang in ["en", *catalogs]:
        page_html = render_sample_page(manifest_assets, source_root / "app" / "edge" / "templates", lang)
        script = by_name.get(f"page.js@{lang}", page_js)
        by_language[lang] = sum(len(gzip_bytes(data)) for data in (page_html, script, style_css))
    critical = max(by_language.values())

    files = {a.path: a.data for a in assets}
    files[SW_FILE] = sw_js
    files[WEBMANIFEST_FILE] = webmanifest
    manifest = {
        "version": version,
        "base_url": base_url,
        "assets": manifest_assets,
        "sw": {"path": SW_FILE, "content_type": CONTENT_TYPES[".js"]},
        "webmanifest": {"path": WEBMANIFEST_FILE, "content_type": CONTENT_TYPES[".webmanifest"]},
        "critical_path_bytes": critical,
        "critical_path_bytes_by_language": by_language,
    }
    files[MANIFEST_FILE] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    files[HEADERS_FILE] = render_headers().encode()

    for lang, size in by_language.items():
        if size > budget:
            raise BuildError(
                f"critical path (HTML, CSS and JS, gzip) in {lang!r} is {size} B, over the budget of {budget} B"
            )

    _prepare_out_dir(out_dir)
    report = Report(out_dir, critical_path_bytes=critical, critical_path_by_language=by_language)
    for path, data in sorted(files.items()):
        (out_dir / path).write_bytes(data)
        gz = br = None
        # Every served file gets both copies, PNGs too (they gain little): a server or CDN can
        # then pick by Accept-Encoding alone. The manifest and _headers are not served.
        if path not in (MANIFEST_FILE, HEADERS_FILE):
            gz, br = gzip_bytes(data), brotli_bytes(data)
            (out_dir / f"{path}.gz").write_bytes(gz)
            (out_dir / f"{path}.br").write_bytes(br)
        report.files[path] = (len(data), None if gz is None else len(gz), None if br is None else len(br))
    return report


def print_report(report: Report, budget: int = BUDGET_BYTES) -> None:
    print(f"wrote {report.out_dir}")
    print(f"  {'file':<40} {'raw':>8} {'gzip':>8} {'brotli':>8}")
    for path, (raw, gz, br) in report.files.items():
        print(f"  {path:<40} {raw:>8} {gz if gz is not None else '-':>8} {br if br is not None else '-':>8}")
    for lang, size in report.critical_path_by_language.items():
        print(f"  critical path in {lang}: {size} B")
    print(f"critical path (HTML + CSS + JS, gzip): {report.critical_path_bytes} B of {budget} B budget")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: dist)")
    parser.add_argument("--base-url", default="/", help="where the assets are served from, e.g. a CDN origin")
    args = parser.parse_args(argv)
    try:
        report = build(args.out, args.base_url)
    except BuildError as error:
        print(f"build.py: error: {error}", file=sys.stderr)
        return 1
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
