"""build.py's languages: each script that shows words is built once per language, with the
translations in place, and each language's critical path is measured and held to the budget."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog

from tests.test_build import build

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build.build(out)
    return out


def _manifest(dist: Path) -> dict:
    return json.loads((dist / build.MANIFEST_FILE).read_text())


def test_every_language_has_its_own_page_script(dist: Path) -> None:
    assets = _manifest(dist)["assets"]

    for lang in ("es", "fr", "de", "ar"):
        assert re.fullmatch(rf"/static/page\.{lang}\.[0-9a-f]{{10}}\.js", assets[f"page.js@{lang}"]["url"])
        assert f"advice.js@{lang}" in assets
        assert f"organiser.js@{lang}" in assets


def test_language_scripts_carry_their_translations_and_not_english(dist: Path) -> None:
    assets = _manifest(dist)["assets"]
    spanish = (dist / assets["page.js@es"]["path"]).read_text(encoding="utf-8")
    english = (dist / assets["page.js"]["path"]).read_text(encoding="utf-8")

    assert '"Choose an option, then press Vote."' in english
    assert '"Elija una opción y pulse Votar."' in spanish
    assert "Choose an option, then press Vote." not in spanish


def test_arabic_script_has_all_six_plural_forms_and_its_plural_rule(dist: Path) -> None:
    assets = _manifest(dist)["assets"]
    arabic = (dist / assets["page.js@ar"]["path"]).read_text(encoding="utf-8")

    forms = re.search(r'ngettext\((\["[^\]]*صوتان في انتظار الإرسال[^\]]*\])', arabic)
    assert forms, "the waiting votes' plural forms are not in the Arabic script"
    assert len(json.loads(forms.group(1))) == 6
    assert "n%100>=11" in arabic.replace(" ", "")


def test_service_worker_precaches_every_language(dist: Path) -> None:
    sw = (dist / build.SW_FILE).read_text()

    for name, entry in _manifest(dist)["assets"].items():
        assert entry["url"] in sw, name


def test_critical_path_of_every_language_is_measured_within_the_budget(dist: Path) -> None:
    by_language = _manifest(dist)["critical_path_bytes_by_language"]

    assert set(by_language) == {"en", "es", "fr", "de", "ar"}
    assert all(0 < size <= build.BUDGET_BYTES for size in by_language.values())
    assert _manifest(dist)["critical_path_bytes"] == max(by_language.values())


def test_cli_prints_the_critical_path_of_each_language(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--out", str(tmp_path / "out")]) == 0

    out = capsys.readouterr().out
    for lang in ("en", "es", "fr", "de", "ar"):
        assert re.search(rf"critical path in {lang}: \d+ B", out)


def test_a_language_over_the_budget_fails_the_build_and_is_named(tmp_path: Path) -> None:
    english = build.build(tmp_path / "en-only", budget=10**6).critical_path_by_language["en"]

    with pytest.raises(build.BuildError, match=r"in 'ar' is \d+ B, over the budget"):
        build.build(tmp_path / "out", budget=english)


def test_translate_calls_puts_translations_in_place() -> None:
    catalog = Catalog(locale="de")
    catalog.add("Vote", "Abstimmen")
    catalog.add(("{n} vote", "{n} votes"), ("{n} Stimme", "{n} Stimmen"))
    catalog.add("poll closed", "Abstimmung beendet")
    source = 'a(_("Vote")); b(ngettext("{n} vote", "{n} votes", n)); c(N_("poll closed")); d(K_("poll closed"));'

    out = build.translate_calls(source, catalog)

    assert out == (
        'a(_("Abstimmen")); b(ngettext(["{n} Stimme", "{n} Stimmen"], 0, n)); '
        'c(N_("Abstimmung beendet")); d(K_("poll closed"));'
    )


def test_untranslated_or_fuzzy_messages_stay_english() -> None:
    catalog = Catalog(locale="de")
    catalog.add("Vote", "Abstimmen", flags=["fuzzy"])
    catalog.add("Save", "")

    assert build.translate_calls('_("Vote"); _("Save")', catalog) == '_("Vote"); _("Save")'


def test_only_lookup_scripts_carry_a_catalogue_of_keys() -> None:
    catalog = Catalog(locale="de")
    catalog.add("network error", "Netzwerkfehler")
    source = 'K_("network error")'

    with_lookups = build.render_messages_module(catalog, source, lookups=True)
    without = build.render_messages_module(catalog, source, lookups=False)

    assert '"network error": "Netzwerkfehler"' in with_lookups
    assert "MESSAGES = {};" in without


def test_messages_module_refuses_a_plural_rule_that_is_not_an_expression() -> None:
    catalog = Catalog(locale="de")
    catalog._plural_expr = "alert(1)"  # type: ignore[attr-defined]
    catalog._num_plurals = 2  # type: ignore[attr-defined]

    with pytest.raises(build.BuildError, match="plural expression"):
        build.render_messages_module(catalog, "")


def test_page_of_each_language_is_within_the_budget_gzipped(dist: Path) -> None:
    manifest = _manifest(dist)
    for lang, size in manifest["critical_path_bytes_by_language"].items():
        script = manifest["assets"].get(f"page.js@{lang}", manifest["assets"]["page.js"])
        assert len(gzip.compress((dist / script["path"]).read_bytes())) < size
