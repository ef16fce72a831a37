"""The layout of app/ shows the architecture, and imports keep to it (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"
# Lower layers never import higher ones; packages of one layer do not import each other.
# organiser: the organiser's pages, built on the edge's plumbing (assets, HTTP helpers, guards).
LAYERS = {
    "core": 0,
    "storage": 1,
    "polls": 2,
    "eligibility": 2,
    "votes": 3,
    "live": 3,
    "ballot_log": 3,
    "edge": 4,
    "log_web": 5,
    "organiser": 5,
}
TOP = 6  # app/*.py: the entry points and the wiring, which may import everything
MAX_MODULES = 13  # "about a dozen": past this a package should split by job


def layer_of(module: str) -> tuple[str, int]:
    """('votes', 3) for app.votes.service; ('', TOP) for app.factory or app itself."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return parts[1], LAYERS[parts[1]]
    return "", TOP


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "app":
                found.update(f"app.{alias.name}" for alias in node.names)
            elif node.module.startswith("app."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("app."))
    return found


def modules() -> list[tuple[str, Path]]:
    result = []
    for path in sorted(APP.rglob("*.py")):
        relative = path.relative_to(APP.parent).with_suffix("")
        if "migrations" in relative.parts:
            continue
        name = ".".join(relative.parts).removesuffix(".__init__")
        result.append((name, path))
    return result


@pytest.mark.parametrize(("module", "path"), modules(), ids=[name for name, _ in modules()])
def test_imports_go_down_the_layers(module, path):
    package, rank = layer_of(module)
    wrong = []
    for imported in sorted(imports_of(path)):
        other, other_rank = layer_of(imported)
        if other == package:  # within one package, or between the entry points
            continue
        if other_rank >= rank:
            wrong.append(imported)
    assert not wrong, f"{module} (layer {package or 'app'}) imports {wrong}, which are not below it"


def test_each_layer_has_its_own_package_of_about_a_dozen_modules():
    for package in LAYERS:
        files = [p for p in (APP / package).glob("*.py") if p.name != "__init__.py"]
        assert files, f"app/{package}/ is missing"
        assert len(files) <= MAX_MODULES, f"app/{package}/ holds {len(files)} modules"
    assert sorted(p.name for p in APP.glob("*.py")) == [
        "__init__.py",
        "__main__.py",
        "cli.py",
        "factory.py",
        "workers.py",
    ]
