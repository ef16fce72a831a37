"""The voter's page in every language: a vote cast offline is Confirmed once back online, with the
page, its offline copy and its states in the chosen language; axe finds nothing; Arabic is laid
out right to left. Screenshots at 390×844 land in test-results/ for review."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Locator, Page, expect
from voter import CONTROLLED_BY_ACTIVE_WORKER, WORKER_TIMEOUT_MS

from app.core.i18n import LANGUAGES, translations

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parent.parent / "test-results"
PHONE = {"width": 390, "height": 844}
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
# A question and its options as an organiser in each language would write them.
POLLS = {
    "en": ("Which colour should the new bikes be?", ("Red", "Blue")),
    "es": ("¿De qué color deberían ser las bicis nuevas?", ("Rojo", "Azul")),
    "fr": ("De quelle couleur seront les nouveaux vélos ?", ("Rouge", "Bleu")),
    "de": ("Welche Farbe sollen die neuen Räder haben?", ("Rot", "Blau")),
    "ar": ("ما لون الدراجات الجديدة؟", ("أحمر", "أزرق")),
}


def words(lang: str, message: str, **values: object) -> str:
    """A message as the page shows it in `lang`, from the same catalogue the build used."""
    text = translations(lang).gettext(message)
    for name, value in values.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def _violations(page: Page) -> list[str]:
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_22_AA}})
    return [f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes']]}" for v in results.response["violations"]]


def _wait_until_offline_ready(page: Page) -> None:
    page.evaluate(CONTROLLED_BY_ACTIVE_WORKER, WORKER_TIMEOUT_MS)
    expect(page.locator("#offline-ready")).to_be_visible(timeout=WORKER_TIMEOUT_MS)


def _open(page: Page, service, lang: str) -> tuple[dict, Locator]:
    question, options = POLLS[lang]
    poll = service.create_poll(question, options)
    page.set_viewport_size(PHONE)
    page.goto(f"{service.poll_url(poll)}?lang={lang}")
    form = page.get_by_role("radiogroup", name=question)
    expect(form).to_be_visible()
    return poll, form


def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"i18n-{name}.png"), full_page=True)


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_vote_cast_offline_is_confirmed_online_in_the_page_language(page: Page, service, lang: str) -> None:
    poll, form = _open(page, service, lang)
    options = POLLS[lang][1]
    _wait_until_offline_ready(page)
    page.context.set_offline(True)

    form.get_by_role("radio", name=options[1], exact=True).check()
    page.get_by_role("button", name=words(lang, "Vote"), exact=True).click()
    expect(page.get_by_role("status")).to_have_text(words(lang, "Queued, saved on this device."))
    page.reload()  # the worker's offline copy, in the language chosen

    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_text(words(lang, "This page works offline."))).to_be_visible()
    page.context.set_offline(False)

    expect(page.get_by_role("status")).to_have_text(words(lang, "Confirmed · receipt #{seq}", seq=1))
    assert service.results(poll["id"])["total"] == 1
    expect(page.get_by_role("heading", level=2, name=words(lang, "Your votes on this device"))).to_be_visible()
    _shot(page, f"{lang}-confirmed")
    assert _violations(page) == []


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_page_sets_lang_and_direction(page: Page, service, lang: str) -> None:
    _open(page, service, lang)

    html = page.locator("html")
    expect(html).to_have_attribute("lang", lang)
    expect(html).to_have_attribute("dir", "rtl" if lang == "ar" else "ltr")


def _boxes(page: Page, form: Locator, option: str) -> tuple[dict, dict, dict, dict]:
    boxes = (
        page.get_by_role("heading", level=1).bounding_box(),
        page.locator("main").bounding_box(),
        form.get_by_role("radio", name=option, exact=True).bounding_box(),
        form.locator("label.option", has_text=option).locator("span").bounding_box(),
    )
    assert None not in boxes
    return boxes  # type: ignore[return-value]


def test_arabic_page_is_laid_out_right_to_left(page: Page, service) -> None:
    _, form = _open(page, service, "ar")
    heading, main, radio, label = _boxes(page, form, POLLS["ar"][1][0])
    _shot(page, "ar-layout")

    # The question starts at the right edge of the page's column, and each radio is to the right of its label.
    assert abs((heading["x"] + heading["width"]) - (main["x"] + main["width"])) < 24
    assert radio["x"] > label["x"] + label["width"] - 1
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_english_page_is_laid_out_left_to_right(page: Page, service) -> None:
    # The same measures as for Arabic, mirrored: they tell the two directions apart.
    _, form = _open(page, service, "en")
    heading, main, radio, label = _boxes(page, form, POLLS["en"][1][0])

    assert abs(heading["x"] - main["x"]) < 24
    assert radio["x"] + radio["width"] < label["x"] + 1


def test_language_switch_changes_the_page_and_the_device_remembers_it(page: Page, service) -> None:
    _, _ = _open(page, service, "en")

    page.get_by_role("navigation", name="Language").get_by_role("link", name="Deutsch").click()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    page.goto(page.url.split("?")[0])

    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("button", name="Abstimmen", exact=True)).to_be_visible()


def test_page_follows_the_browser_language(browser: Browser, service) -> None:
    poll = service.create_poll("Quelle couleur ?", ("Rouge", "Bleu"))
    context = browser.new_context(locale="fr-FR")
    try:
        page = context.new_page()
        page.goto(service.poll_url(poll))

        expect(page.locator("html")).to_have_attribute("lang", "fr")
        expect(page.get_by_role("button", name="Voter", exact=True)).to_be_visible()
    finally:
        context.close()


def test_live_results_count_in_the_page_language(page: Page, service) -> None:
    poll, form = _open(page, service, "de")
    form.get_by_role("radio", name="Rot", exact=True).check()
    page.get_by_role("button", name="Abstimmen", exact=True).click()

    expect(page.get_by_role("status")).to_have_text(re.compile(r"^Bestätigt"))
    expect(page.get_by_text("1 Stimme insgesamt.", exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Live: "))).to_be_visible()
    assert service.results(poll["id"])["total"] == 1


CACHED_ASSETS = """async () => {
  const urls = [];
  for (const name of await caches.keys()) {
    if (!name.includes("-assets-")) continue;
    const cache = await caches.open(name);
    for (const request of await cache.keys()) urls.push(request.url);
  }
  return urls;
}"""


def test_worker_keeps_the_scripts_of_the_language_in_use_and_not_the_others(page: Page, service) -> None:
    _open(page, service, "es")
    _wait_until_offline_ready(page)

    cached = page.evaluate(CACHED_ASSETS)

    assert any(re.search(r"/page\.es\.[0-9a-f]{10}\.js$", url) for url in cached)
    assert any(re.search(r"/advice\.es\.[0-9a-f]{10}\.js$", url) for url in cached)
    assert not [url for url in cached if re.search(r"\.(ar|de|fr)\.[0-9a-f]{10}\.js$", url)]


def test_language_switched_under_the_worker_is_the_offline_copy_language(page: Page, service) -> None:
    _, _ = _open(page, service, "en")
    _wait_until_offline_ready(page)

    page.get_by_role("navigation", name="Language").get_by_role("link", name="العربية").click()
    expect(page.locator("html")).to_have_attribute("lang", "ar")
    _wait_until_offline_ready(page)  # the worker keeps the Arabic copy and its scripts
    page.context.set_offline(True)
    page.goto(page.url.split("?")[0])

    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    page.get_by_role("radio", name=POLLS["en"][1][0], exact=True).check()
    page.get_by_role("button", name=words("ar", "Vote"), exact=True).click()
    expect(page.get_by_role("status")).to_have_text(words("ar", "Queued, saved on this device."))
