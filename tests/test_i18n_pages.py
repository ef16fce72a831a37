"""The page's language: chosen by ?lang=, then the device's remembered choice, then
Accept-Language; said in <html lang dir>, in the words, in the script it loads; the API stays English."""

from __future__ import annotations

import html
import re

import httpx
import jinja2
import pytest

from app.core.i18n import DEFAULT_LANGUAGE, LANGUAGES, choose, configure, from_accept_language, translations
from app.edge.assets import APP_DESCRIPTION, APP_NAME
from app.organiser import form as form_module
from app.polls.validation import MAX_LABEL_CHARS, MAX_OPTIONS, MAX_QUESTION_CHARS
from tests import served_pages
from tests.helpers import ADMIN_TOKEN, create_poll

# The fixtures: one build for this module, and the service on it.
dist = served_pages.dist
client = served_pages.client

TOKEN = ADMIN_TOKEN
TRANSLATED = [code for code in LANGUAGES if code != DEFAULT_LANGUAGE]


async def _poll_url(client: httpx.AsyncClient) -> str:
    return f"/polls/{(await create_poll(client, question='¿Té o café?', options=['Té', 'Café']))['id']}"


def _html_tag(page: str) -> str:
    match = re.search(r"<html[^>]*>", page)
    assert match, page[:200]
    return match.group(0)


# --- choosing ------------------------------------------------------------------------------------


def test_accept_language_picks_the_most_preferred_supported_language() -> None:
    assert from_accept_language("ja;q=1, de-CH;q=0.8, fr;q=0.9") == "fr"


def test_accept_language_matches_a_region_by_its_language() -> None:
    assert from_accept_language("ar-EG,ar;q=0.9,en;q=0.5") == "ar"


def test_accept_language_ignores_ranges_refused_with_q0() -> None:
    assert from_accept_language("es;q=0, de") == "de"


def test_accept_language_with_nothing_supported_gives_none() -> None:
    assert from_accept_language("ja, zh-Hant;q=0.5, garbage;;q=x") is None


def test_a_shared_link_comes_before_the_remembered_choice_and_the_browser() -> None:
    assert choose("ar", "de", "fr") == "ar"
    assert choose(None, "de", "fr") == "de"
    assert choose("xx", "nope", "fr") == "fr"
    assert choose(None, None, "") == "en"


# --- pages ----------------------------------------------------------------------------------------


async def test_poll_page_follows_accept_language(client: httpx.AsyncClient) -> None:
    url = await _poll_url(client)

    response = await client.get(url, headers={"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"})

    assert _html_tag(response.text) == '<html lang="fr" dir="ltr">'
    assert '<button type="submit">Voter</button>' in response.text
    assert response.headers["content-language"] == "fr"
    assert "accept-language" in response.headers["vary"].lower()


async def test_arabic_page_is_right_to_left_and_loads_the_arabic_script(client: httpx.AsyncClient) -> None:
    url = await _poll_url(client)

    page = (await client.get(url, headers={"Accept-Language": "ar"})).text

    assert _html_tag(page) == '<html lang="ar" dir="rtl">'
    assert '<button type="submit">صوِّت</button>' in page
    assert re.search(r'<script type="module" src="/static/page\.ar\.[0-9a-f]{10}\.js"', page)
    assert re.search(r'data-advice-module="/static/advice\.ar\.[0-9a-f]{10}\.js"', page)


async def test_english_page_loads_the_english_script(client: httpx.AsyncClient) -> None:
    page = (await client.get(await _poll_url(client))).text

    assert _html_tag(page) == '<html lang="en" dir="ltr">'
    assert re.search(r'<script type="module" src="/static/page\.[0-9a-f]{10}\.js"', page)


async def test_lang_in_the_link_wins_and_the_device_remembers_it(client: httpx.AsyncClient) -> None:
    url = await _poll_url(client)

    shared = await client.get(f"{url}?lang=de", headers={"Accept-Language": "fr"})
    later = await client.get(url, headers={"Accept-Language": "fr"})

    assert _html_tag(shared.text) == '<html lang="de" dir="ltr">'
    assert "lang=de" in shared.headers["set-cookie"]
    assert "Path=/" in shared.headers["set-cookie"]
    assert _html_tag(later.text) == '<html lang="de" dir="ltr">'


async def test_page_without_lang_in_the_link_sets_no_cookie(client: httpx.AsyncClient) -> None:
    response = await client.get(await _poll_url(client), headers={"Accept-Language": "es"})

    assert "set-cookie" not in response.headers


async def test_language_switch_links_every_language_in_its_own_name(client: httpx.AsyncClient) -> None:
    page = (await client.get(await _poll_url(client), headers={"Accept-Language": "es"})).text

    nav = re.search(r'<nav class="languages" aria-label="Idioma">(.*?)</nav>', page)
    assert nav, page
    assert re.findall(r'<a href="\?lang=(\w+)" lang="\1"', nav.group(1)) == ["en", "es", "fr", "de", "ar"]
    assert '<a href="?lang=es" lang="es" aria-current="true">Español</a>' in nav.group(1)
    assert ">العربية</a>" in nav.group(1)


async def test_question_and_options_carry_dir_auto(client: httpx.AsyncClient) -> None:
    page = (await client.get(await _poll_url(client))).text

    assert '<h1 id="question" class="question" dir="auto">¿Té o café?</h1>' in page
    assert '<span dir="auto">Té</span>' in page


async def test_count_in_german_uses_the_german_plural(client: httpx.AsyncClient) -> None:
    page = (await client.get(await _poll_url(client), headers={"Accept-Language": "de"})).text

    assert "0 Stimmen insgesamt." in page


async def test_arabic_zero_count_uses_the_zero_form(client: httpx.AsyncClient) -> None:
    page = (await client.get(await _poll_url(client), headers={"Accept-Language": "ar"})).text

    assert "لا أصوات حتى الآن." in page


# --- problems -------------------------------------------------------------------------------------


async def test_problem_page_is_translated_with_the_same_status(client: httpx.AsyncClient) -> None:
    response = await client.get("/no-such-page", headers={"Accept": "text/html", "Accept-Language": "es"})

    assert response.status_code == 404
    assert "<h1>Página no encontrada</h1>" in response.text
    assert _html_tag(response.text) == '<html lang="es" dir="ltr">'


async def test_api_problem_stays_english_with_its_stable_type(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/polls/nosuchpoll0000", headers={"Accept-Language": "ar"})

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "/problems/poll-not-found"
    assert body["title"].isascii()
    assert "content-language" not in response.headers


async def test_unknown_poll_page_is_in_the_chosen_language(client: httpx.AsyncClient) -> None:
    response = await client.get("/polls/nosuchpoll0000?lang=fr")

    assert response.status_code == 404
    assert "<h1>Scrutin introuvable</h1>" in response.text


def test_shares_are_whole_percents_rounded_half_up_as_the_page_rounds_them() -> None:
    env = jinja2.Environment(autoescape=True)
    configure(env)

    def share(lang: str, part: int, whole: int) -> str:
        return env.from_string("{{ percent(part, whole) }}").render(lang=lang, part=part, whole=whole)

    assert share("en", 1, 8) == "13%"
    assert share("fr", 1, 2) == "50\xa0%"
    assert share("en", 0, 0) == "0%"


# --- the organiser's form and the web app manifest ---------------------------------------------


def _form_error(page: str) -> str:
    match = re.search(r'<p id="form-error"[^>]*>([^<]*)</p>', page)
    assert match, page[:400]
    return html.unescape(match.group(1))


def _said_in(lang: str, message: str, **values: object) -> str:
    return translations(lang).gettext(message) % values


@pytest.mark.parametrize("lang", TRANSLATED)
async def test_a_refusal_that_names_a_limit_is_in_the_page_language(client: httpx.AsyncClient, lang: str) -> None:
    form = {"question": "x" * (MAX_QUESTION_CHARS + 1), "option": ["Té", "Café"], "admin_token": TOKEN}

    page = await client.post(f"/polls/new?lang={lang}", data=form)

    assert page.status_code == 422
    limits = {"question": MAX_QUESTION_CHARS, "label": MAX_LABEL_CHARS, "options": MAX_OPTIONS}
    said = _form_error(page.text)
    assert said == _said_in(lang, form_module.LIMITS_MESSAGE, **limits)
    assert "at most" not in said


@pytest.mark.parametrize("lang", TRANSLATED)
async def test_a_refusal_from_the_poll_checks_is_in_the_page_language(client: httpx.AsyncClient, lang: str) -> None:
    form = {"question": "¿Té o café?", "option": ["Té", "té"], "admin_token": TOKEN}

    page = await client.post("/polls/new", data=form, headers={"Accept-Language": lang})

    assert page.status_code == 422
    message = "Option %(number)s reads the same as option %(earlier)s: “%(label)s”."
    assert _form_error(page.text) == _said_in(lang, message, number=2, earlier=1, label="té")


async def test_the_api_says_the_same_refusal_in_english_with_its_stable_type(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/polls",
        json={"question": "¿Té o café?", "options": ["Té", "té"]},
        headers={"Authorization": f"Bearer {TOKEN}", "Accept-Language": "es"},
    )

    assert response.status_code == 422
    body = response.json()
    assert body["type"] == "/problems/invalid-poll"
    assert body["detail"] == "options[1] reads the same as options[0]: 'té'."


@pytest.mark.parametrize("lang", TRANSLATED)
async def test_the_web_app_manifest_follows_the_page_language(client: httpx.AsyncClient, lang: str) -> None:
    page = (await client.get(f"{await _poll_url(client)}?lang={lang}")).text
    manifest_url = html.unescape(re.search(r'<link rel="manifest" href="([^"]+)"', page).group(1))

    manifest = (await client.get(manifest_url)).json()

    assert manifest["lang"] == lang
    assert manifest["dir"] == ("rtl" if lang == "ar" else "ltr")
    assert manifest["name"] == manifest["short_name"] == translations(lang).gettext(APP_NAME) != APP_NAME
    assert manifest["description"] == translations(lang).gettext(APP_DESCRIPTION) != APP_DESCRIPTION
    assert manifest["start_url"] == manifest_url.split("/manifest.webmanifest")[0]


async def test_the_web_app_manifest_is_english_without_a_choice(client: httpx.AsyncClient) -> None:
    manifest = (await client.get("/manifest.webmanifest")).json()

    assert (manifest["lang"], manifest["dir"], manifest["name"]) == ("en", "ltr", APP_NAME)
    assert manifest["description"] == APP_DESCRIPTION
