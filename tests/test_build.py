"""build.py: content hashing, determinism, the asset manifest, the budget, and its errors."""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import brotli
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build", ROOT / "build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


build = _load_build()


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build of the real sources, for tests that only read the output."""
    out = tmp_path_factory.mktemp("dist")
    build.build(out)
    return out


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    """A copy of the build's inputs, for tests that change or remove one."""
    root = tmp_path / "src"
    for part in ("frontend", "sw", "app/edge/templates"):
        shutil.copytree(ROOT / part, root / part)
    return root


def _manifest(dist: Path) -> dict:
    return json.loads((dist / build.MANIFEST_FILE).read_text())


def _tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_hashed_name_carries_the_content_hash() -> None:
    assert build.hashed_name("page.js", b"x") == f"page.{hashlib.sha256(b'x').hexdigest()[:10]}.js"


def test_hashed_name_changes_with_the_content() -> None:
    assert build.hashed_name("page.js", b"a") != build.hashed_name("page.js", b"b")


def test_same_sources_give_the_same_bytes(tmp_path: Path) -> None:
    build.build(tmp_path / "one")
    build.build(tmp_path / "two")

    assert _tree(tmp_path / "one") == _tree(tmp_path / "two")


def test_every_asset_is_named_by_its_content(dist: Path) -> None:
    for entry in _manifest(dist)["assets"].values():
        data = (dist / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest()[:10] in entry["path"]


def test_manifest_integrity_matches_the_file(dist: Path) -> None:
    for entry in _manifest(dist)["assets"].values():
        digest = hashlib.sha384((dist / entry["path"]).read_bytes()).digest()
        assert entry["integrity"] == "sha384-" + base64.b64encode(digest).decode()


def test_manifest_links_the_page_script_and_stylesheet(dist: Path) -> None:
    assets = _manifest(dist)["assets"]

    assert re.fullmatch(r"/static/page\.[0-9a-f]{10}\.js", assets["page.js"]["url"])
    assert re.fullmatch(r"/static/style\.[0-9a-f]{10}\.css", assets["style.css"]["url"])


def test_precompressed_copies_decode_to_the_asset(dist: Path) -> None:
    path = dist / _manifest(dist)["assets"]["page.js"]["path"]

    assert gzip.decompress(path.with_name(path.name + ".gz").read_bytes()) == path.read_bytes()
    assert brotli.decompress(path.with_name(path.name + ".br").read_bytes()) == path.read_bytes()


def test_every_served_file_has_brotli_and_gzip_copies(dist: Path) -> None:
    manifest = _manifest(dist)
    served = [e["path"] for e in manifest["assets"].values()] + [build.SW_FILE, build.WEBMANIFEST_FILE]

    for path in served:
        assert (dist / f"{path}.br").is_file()
        assert (dist / f"{path}.gz").is_file()


def test_service_worker_precaches_every_asset(dist: Path) -> None:
    sw = (dist / build.SW_FILE).read_text()

    for entry in _manifest(dist)["assets"].values():
        assert json.dumps(entry["url"]) in sw


def test_service_worker_version_changes_with_an_asset(sources: Path, tmp_path: Path) -> None:
    build.build(tmp_path / "before", source_root=sources)
    stylesheet = sources / build.STYLESHEET
    stylesheet.write_text(stylesheet.read_text() + "\nbody { margin: 1px; }\n")
    build.build(tmp_path / "after", source_root=sources)

    assert _manifest(tmp_path / "before")["version"] != _manifest(tmp_path / "after")["version"]


def test_base_url_puts_assets_on_the_cdn(tmp_path: Path) -> None:
    build.build(tmp_path, base_url="https://cdn.example/")
    manifest = _manifest(tmp_path)

    assert manifest["assets"]["page.js"]["url"].startswith("https://cdn.example/static/page.")
    assert manifest["assets"]["page.js"]["url"] in (tmp_path / build.SW_FILE).read_text()


def test_base_url_leaves_the_api_on_the_service(tmp_path: Path) -> None:
    build.build(tmp_path, base_url="https://cdn.example/")

    assert '"/api/v1/polls/' in (tmp_path / build.SW_FILE).read_text().replace("`", '"')


def test_headers_file_caches_hashed_assets_forever_and_revalidates_the_worker(dist: Path) -> None:
    rules = (dist / build.HEADERS_FILE).read_text()

    assert "/static/*\n  Cache-Control: public, max-age=31536000, immutable\n" in rules
    assert "/sw.js\n  Cache-Control: no-cache\n" in rules


def test_web_app_manifest_lists_192_and_512_png_icons(dist: Path) -> None:
    icons = json.loads((dist / build.WEBMANIFEST_FILE).read_text())["icons"]
    urls = {i["sizes"]: i["src"] for i in icons}

    assert set(urls) == {"192x192", "512x512"}
    for url in urls.values():
        assert (dist / url.removeprefix("/")).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_build_over_budget_fails(tmp_path: Path) -> None:
    with pytest.raises(build.BuildError, match="over the budget"):
        build.build(tmp_path / "dist", budget=1024)


def test_build_over_budget_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(build.BuildError):
        build.build(tmp_path / "dist", budget=1024)

    assert not (tmp_path / "dist").exists()


def test_real_page_fits_the_budget(dist: Path) -> None:
    assert 0 < _manifest(dist)["critical_path_bytes"] <= build.BUDGET_BYTES


def test_cli_prints_sizes_and_the_critical_path_total(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--out", str(tmp_path / "dist")]) == 0

    out = capsys.readouterr().out
    assert re.search(r"static/page\.[0-9a-f]{10}\.js\s+\d+\s+\d+\s+\d+", out)
    assert re.search(r"critical path .*: \d+ B of 14336 B budget", out)


def test_missing_input_is_named(sources: Path, tmp_path: Path) -> None:
    (sources / build.STYLESHEET).unlink()

    with pytest.raises(build.BuildError, match=r"missing input: .*frontend/style\.css"):
        build.build(tmp_path / "dist", source_root=sources)


def test_broken_input_is_named(sources: Path, tmp_path: Path) -> None:
    (sources / build.STYLESHEET).write_text("body { color: red;")

    with pytest.raises(build.BuildError, match=r"frontend/style\.css: unbalanced braces"):
        build.build(tmp_path / "dist", source_root=sources)


def test_cli_reports_an_error_and_exits_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--out", str(tmp_path / "dist"), "--base-url", "ftp://cdn.example/"]) == 1
    assert "build.py: error: --base-url" in capsys.readouterr().err


def test_refuses_to_wipe_a_directory_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")

    with pytest.raises(build.BuildError, match="refusing"):
        build.build(tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_bundle_puts_dependencies_first(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text('import { b } from "./b.js";\nb();\n')
    (tmp_path / "b.js").write_text("export function b() {}\n")

    bundled = build.bundle(tmp_path / "a.js")

    assert bundled.index("function b()") < bundled.index("b();")
    assert "export" not in bundled
    assert "import" not in bundled


def test_bundle_rejects_a_name_the_module_does_not_export(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text('import { missing } from "./b.js";\n')
    (tmp_path / "b.js").write_text("export const b = 1;\n")

    with pytest.raises(build.BuildError, match="does not export"):
        build.bundle(tmp_path / "a.js")


def test_bundle_rejects_a_top_level_name_declared_twice(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text('import { b } from "./b.js";\nconst shared = b;\n')
    (tmp_path / "b.js").write_text("export const b = 1;\nfunction shared() {}\n")

    with pytest.raises(build.BuildError, match="also declared"):
        build.bundle(tmp_path / "a.js")


def test_bundle_rejects_an_import_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text('import { b } from "./b.js";\nexport const a = 1;\n')
    (tmp_path / "b.js").write_text('import { a } from "./a.js";\nexport const b = 1;\n')

    with pytest.raises(build.BuildError, match="import cycle"):
        build.bundle(tmp_path / "a.js")
