"""The translation catalogues: the template (.pot) is what the sources say today, and every
language's .po has every message, each with the placeholders of its msgid and the right number
of plural forms."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from app.core.i18n import DEFAULT_LANGUAGE, LANGUAGES, LOCALE_DIR

ROOT = Path(__file__).resolve().parent.parent
POT = LOCALE_DIR / "messages.pot"
TRANSLATED = [code for code in LANGUAGES if code != DEFAULT_LANGUAGE]
# %(name)s in templates and Python (Jinja2's newstyle gettext), {name} in the page's scripts.
PYTHON_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
BRACE_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# The count a plural form may leave implicit: Arabic says "صوتان" (two votes), not "2 صوتان".
COUNT_NAMES = {"count", "n"}


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=locale)


def _messages(catalog: Catalog) -> dict[object, Message]:
    return {message.id: message for message in catalog if message.id}


def _placeholders(text: str) -> set[str]:
    return set(PYTHON_PLACEHOLDER.findall(text)) | set(BRACE_PLACEHOLDER.findall(text))


def extract(out: Path) -> Catalog:
    """The template as `pybabel extract` makes it from today's sources (docs/translating.md)."""
    command = [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg"]
    command += ["--no-location", "--sort-output", "-k", "N_", "-k", "K_", "-o", str(out), "."]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return _read(out)


def test_the_template_holds_every_message_the_sources_mark(tmp_path: Path) -> None:
    fresh = set(_messages(extract(tmp_path / "messages.pot")))
    committed = set(_messages(_read(POT)))

    assert sorted(map(str, fresh - committed)) == [], "run pybabel extract (docs/translating.md)"
    assert sorted(map(str, committed - fresh)) == [], "the template keeps messages no source has"


def test_every_language_of_the_switch_has_a_catalogue_and_every_catalogue_a_language() -> None:
    catalogues = {path.parent.parent.name for path in LOCALE_DIR.glob("*/LC_MESSAGES/messages.po")}

    assert catalogues == set(TRANSLATED)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_catalogue_has_every_message_of_the_template_translated(lang: str) -> None:
    template = _messages(_read(POT))
    catalogue = _messages(_read(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po", lang))

    missing = [str(key) for key in template if key not in catalogue]
    untranslated = [
        str(key)
        for key, message in catalogue.items()
        if key in template
        and (message.fuzzy or not (all(message.string) if isinstance(key, tuple) else message.string))
    ]

    assert missing == []
    assert untranslated == []


@pytest.mark.parametrize("lang", TRANSLATED)
def test_catalogue_has_the_plural_forms_of_its_language(lang: str) -> None:
    catalogue = _read(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po", lang)
    expected = len(Locale.parse(lang).plural_form.tags) + 1  # CLDR's categories, and "other"
    plurals = [message for message in catalogue if isinstance(message.id, tuple)]

    assert catalogue.num_plurals == expected
    assert plurals, "no plural messages: the check checks nothing"
    for message in plurals:
        assert len(message.string) == expected, message.id


def test_arabic_has_six_plural_forms() -> None:
    assert _read(LOCALE_DIR / "ar" / "LC_MESSAGES" / "messages.po", "ar").num_plurals == 6


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_translation_keeps_the_placeholders_of_its_message(lang: str) -> None:
    catalogue = _read(LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po", lang)
    wrong = []
    for message in catalogue:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        names = set().union(*map(_placeholders, ids))
        for form in forms:
            found = _placeholders(form)
            # Every placeholder but the count must be there, and none that the message lacks.
            if found - names or (names - COUNT_NAMES) - found:
                wrong.append((ids[0], form))
            if not isinstance(message.id, tuple) and found != names:
                wrong.append((ids[0], form))

    assert wrong == []


def test_placeholder_check_catches_a_dropped_placeholder() -> None:
    assert _placeholders("Your vote for {label} is counted.") == {"label"}
    assert _placeholders("Back to the poll: %(question)s") == {"question"}
    assert _placeholders("Su voto se ha contado.") == set()
