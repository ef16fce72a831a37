"""The page's language: which one a request gets (`?lang=`, the device's remembered choice, then
Accept-Language), its catalogue (app/locale/<lang>/LC_MESSAGES/messages.po, read with Babel),
and what the Jinja2 templates call to translate, format numbers and dates, and switch language.

The API answers in English: only pages go through here (docs/translating.md)."""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
from babel import Locale
from babel.dates import format_skeleton, get_datetime_format
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent
from babel.support import NullTranslations, Translations
from litestar.types import Message, Scope

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"  # app/locale
DOMAIN = "messages"
DEFAULT_LANGUAGE = "en"  # the language of the msgids: it needs no catalogue

# Every language the pages speak, by BCP 47 code, with its name in itself. Adding one is this line
# and app/locale/<code>/LC_MESSAGES/messages.po (docs/translating.md).
LANGUAGES: dict[str, str] = {
    "en": "English",
    "es": "Español",
    "fr": "Français",
    "de": "Deutsch",
    "ar": "العربية",
}

COOKIE = "lang"  # the device's remembered choice: a language code, nothing personal
COOKIE_MAX_AGE_S = 365 * 24 * 3600  # a year; a choice made again renews it
QUERY = "lang"  # ?lang=xx, for a shared link in a given language
_SCOPE_KEY = "vote_language"


def N_(message: str) -> str:
    """Marks a message for extraction where it is defined; it is translated where it is shown."""
    return message


@dataclass(frozen=True)
class PageLanguage:
    code: str
    name: str
    dir: str  # "ltr" or "rtl", for <html dir>


@functools.cache
def page_language(code: str) -> PageLanguage:
    locale = Locale.parse(code)
    direction = "rtl" if locale.character_order == "right-to-left" else "ltr"
    return PageLanguage(code, LANGUAGES[code], direction)


@functools.cache
def translations(code: str, locale_dir: Path = LOCALE_DIR) -> NullTranslations:
    """The language's catalogue, compiled in memory from its .po file (the source of truth)."""
    if code == DEFAULT_LANGUAGE:
        return NullTranslations()
    path = locale_dir / code / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=code)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


# --- choosing ------------------------------------------------------------------------------------


def supported(code: str | None) -> str | None:
    """The supported language `code` names (exactly, or by its primary subtag), else None."""
    if not code:
        return None
    code = code.strip().lower().replace("_", "-")
    if code in LANGUAGES:
        return code
    primary = code.split("-", 1)[0]
    return primary if primary in LANGUAGES else None


def from_accept_language(header: str) -> str | None:
    """The most preferred supported language of an Accept-Language header (RFC 9110 12.5.4)."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[:32]):  # a bounded number of ranges
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, tag))
    for _, _, tag in sorted(ranked):
        code = supported(tag)
        if code:
            return code
    return None


def choose(query: str | None, cookie: str | None, accept_language: str) -> str:
    """A shared link's ?lang= first, then the device's remembered choice, then the browser's."""
    return supported(query) or supported(cookie) or from_accept_language(accept_language) or DEFAULT_LANGUAGE


def language_of(request: Any) -> str:
    """The language of the page `request` gets; worked out once per request."""
    scope = request.scope
    if _SCOPE_KEY not in scope:
        scope[_SCOPE_KEY] = choose(
            request.query_params.get(QUERY),
            request.cookies.get(COOKIE),
            request.headers.get("accept-language", ""),
        )
    return scope[_SCOPE_KEY]


# --- templates ----------------------------------------------------------------------------------


def _context_language(context: jinja2.runtime.Context) -> str:
    # build.py renders without a request and names the language itself.
    if context.get("lang"):
        return context["lang"]
    request = context.get("request")
    return language_of(request) if request is not None else DEFAULT_LANGUAGE


@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, message: str) -> str:
    return translations(_context_language(context)).gettext(message)


@jinja2.pass_context
def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    return translations(_context_language(context)).ngettext(singular, plural, n)


@jinja2.pass_context
def _current_language(context: jinja2.runtime.Context) -> PageLanguage:
    return page_language(_context_language(context))


@jinja2.pass_context
def _language_choices(context: jinja2.runtime.Context) -> list[PageLanguage]:
    return [page_language(code) for code in LANGUAGES]


@jinja2.pass_context
def _localized(context: jinja2.runtime.Context, name: str) -> dict[str, str]:
    """A built asset in the page's language (build.py bundles the catalogue into each script)."""
    assets = context["assets"]
    return assets.get(f"{name}@{_context_language(context)}", assets[name])


@jinja2.pass_context
def _number(context: jinja2.runtime.Context, value: int) -> str:
    return format_decimal(value, locale=_context_language(context))


@jinja2.pass_context
def _percent(context: jinja2.runtime.Context, part: int, whole: int) -> str:
    # Whole percents, halves rounded up, as Intl rounds them on the page.
    share = (part * 200 + whole) // (2 * whole) if whole else 0
    return format_percent(share / 100, locale=_context_language(context))


@jinja2.pass_context
def _moment(context: jinja2.runtime.Context, epoch_ms: int) -> str:
    """A time in UTC, in the page's language; the page's script rewrites it in the voter's zone."""
    lang = _context_language(context)
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    day = format_skeleton("yMMMMd", moment, tzinfo=UTC, locale=lang)
    clock = format_skeleton("Hm", moment, tzinfo=UTC, locale=lang) + " UTC"
    # The language's own way of joining a date and a time ("{1}, {0}" in English).
    return get_datetime_format("long", locale=lang).replace("'", "").replace("{0}", clock).replace("{1}", day)


def configure(environment: jinja2.Environment) -> None:
    """Installs the i18n extension and the page-language helpers the templates use."""
    environment.add_extension("jinja2.ext.i18n")
    # Newstyle: `_("… %(name)s", name=x)` formats and escapes the way {% trans %} does.
    environment.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    environment.globals.update(
        page_language=_current_language,
        language_choices=_language_choices,
        localized=_localized,
    )
    environment.filters.update(number=_number, moment=_moment)
    environment.globals["percent"] = _percent


# --- responses ----------------------------------------------------------------------------------

_VARY = (b"vary", b"accept-language, cookie")


async def remember_language(message: Message, scope: Scope) -> None:
    """On a page asked for with ?lang=, the device keeps the choice (a cookie); every page says
    its language and that it varies with the choice."""
    if message["type"] != "http.response.start" or _SCOPE_KEY not in scope:
        return
    headers = list(message.get("headers", ()))
    headers.append((b"content-language", scope[_SCOPE_KEY].encode()))
    headers.append(_VARY)
    query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(QUERY, [None])[0]
    chosen = supported(query)
    if chosen:
        cookie = f"{COOKIE}={chosen}; Path=/; Max-Age={COOKIE_MAX_AGE_S}; SameSite=Lax"
        if scope.get("scheme") == "https":
            cookie += "; Secure"
        headers.append((b"set-cookie", cookie.encode()))
    message["headers"] = headers
