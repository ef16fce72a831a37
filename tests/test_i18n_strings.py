"""No words reach a page around the catalogues: every text a template shows is inside
{% trans %} or _(), and every sentence in the page's and the worker's scripts is a message
(_(), ngettext(), N_() or K_()), so `pybabel extract` finds it and each language translates it."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pytest
from babel.messages.pofile import read_po

from app.polls import validation

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted((ROOT / "app" / "edge" / "templates").glob("*.html"))
SCRIPTS = sorted([*(ROOT / "frontend").glob("*.js"), *(ROOT / "sw").glob("*.js")])

# Attributes a person reads or hears.
READ_ATTRIBUTES = re.compile(r'\b(aria-label|title|alt|placeholder|content|label)="([^"]*)"')
# Attribute values that are not language: what a browser or a crawler reads.
NOT_LANGUAGE = {"width=device-width, initial-scale=1", "light dark", "#0b57d0", "website", "summary", "no-referrer"}
NOT_LANGUAGE |= {"poll:entry:code"}  # the tracker code's shape, the same in every language
LETTER = re.compile(r"[^\W\d_]")
OUTSIDE = "\x00"  # stands for an expression, a tag or a translated block in a template's text

# Two words or more: a sentence or a phrase, not an identifier, a selector or a URL.
PROSE = re.compile(r"[^\W\d_]{2,}[ ,:;]+[^\W\d_]{2,}")
# What may come right before a literal with words in it.
MESSAGE_CALL = re.compile(r'(?<![\w$.])(?:(?:_|N_|K_|ngettext)\( ?|ngettext\( ?"(?:[^"\\]|\\.)*" ?, ?)$')
# Exceptions and logs, never shown as they are; class names and CSS selectors, never shown at all.
NOT_SHOWN = re.compile(
    r"(?:\w*(?:Error|Exception)\([^;{}]*|\bconsole\.\w+\( ?|className ?= ?|querySelector(?:All)?\( ?)$"
)
# A path in a template's text (the manifest's address, say) is not language.
PATH = re.compile(r"[./][\w./-]*")
# Keys delivery.js records and advice.js words by their parts ("server busy (503)").
KEYS_WORDED_BY_PARTS = {"server busy (", "refused ("}


def template_text(source: str) -> tuple[str, list[str]]:
    """The template's own text outside {% trans %}, expressions and tags; and its read attributes."""
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"])
    data: list[str] = []
    depth = 0
    block: list[str] = []
    for _, kind, value in env.lex(source):
        if kind == "block_begin":
            block = []
        elif kind == "name" and not block:
            block.append(value)
            depth += value == "trans"
            depth -= value == "endtrans"
        if kind == "data" and depth == 0:
            data.append(value)
        elif not data or data[-1] != OUTSIDE:
            data.append(OUTSIDE)
    joined = "".join(data)
    attributes = [value for _, value in READ_ATTRIBUTES.findall(joined)]
    # Code (a command, a tracker) is the same in every language.
    joined = re.sub(r"<code[^>]*>.*?</code>", OUTSIDE, joined, flags=re.S)
    text = re.sub(r"<[^>]*>", OUTSIDE, joined)
    return text, attributes


def untranslated_template_words(source: str) -> list[str]:
    text, attributes = template_text(source)
    chunks = [chunk.strip() for chunk in text.split(OUTSIDE)]
    words = [chunk for chunk in chunks if LETTER.search(chunk) and not PATH.fullmatch(chunk)]
    words += [value for value in attributes if LETTER.search(value) and value not in NOT_LANGUAGE]
    return words


@dataclass
class Literal:
    text: str  # a string's value, or a template literal's fixed parts
    before: str  # the code just before it, each run of spaces made one
    line: int


def js_literals(source: str) -> list[Literal]:
    """The string and template literals of a script, outside comments and regular expressions."""
    literals: list[Literal] = []
    code: list[str] = []  # significant code so far, to tell a regex from a division
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if source.startswith("//", i):
            i = source.find("\n", i) if "\n" in source[i:] else n
        elif source.startswith("/*", i):
            i = source.index("*/", i) + 2
        elif c in "\"'`":
            start, parts, depth = i, [], 0
            i += 1
            piece = []
            while i < n:
                ch = source[i]
                if ch == "\\":
                    piece.append(source[i : i + 2])
                    i += 2
                    continue
                if c == "`" and source.startswith("${", i):
                    parts.append("".join(piece))
                    piece, depth, i = [], 1, i + 2
                    inner = i
                    while i < n and depth:  # an expression inside, nested braces counted
                        depth += {"{": 1, "}": -1}.get(source[i], 0)
                        i += 1
                    line = source.count("\n", 0, inner)
                    for nested in js_literals(source[inner : i - 1]):  # its own literals count too
                        literals.append(Literal(nested.text, nested.before, nested.line + line))
                    continue
                if ch == c:
                    break
                piece.append(ch)
                i += 1
            parts.append("".join(piece))
            before = re.sub(r"\s+", " ", "".join(code[-200:])).rstrip()[-80:]
            literals.append(Literal("{}".join(parts), before, source.count("\n", 0, start) + 1))
            code.append('""')
            i += 1
        elif c == "/" and re.search(r"(?:[(,=:\[!&|?{};]|\breturn)\s*$", "".join(code[-20:]) or "("):
            i += 1
            in_class = False
            while i < n and (source[i] != "/" or in_class):
                if source[i] == "\\":
                    i += 1
                elif source[i] == "[":
                    in_class = True
                elif source[i] == "]":
                    in_class = False
                i += 1
            i += 1
            code.append("/re/")
        else:
            code.append(c)
            i += 1
    return literals


def unwrapped_script_words(source: str) -> list[str]:
    found = []
    for literal in js_literals(source):
        if not PROSE.search(literal.text) or MESSAGE_CALL.search(literal.before) or NOT_SHOWN.search(literal.before):
            continue
        if any(literal.text.startswith(key) for key in KEYS_WORDED_BY_PARTS):
            continue
        found.append(f"line {literal.line}: {literal.text}")
    return found


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_template_shows_no_words_outside_the_catalogue(template: Path) -> None:
    assert untranslated_template_words(template.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_script_shows_no_sentence_outside_the_catalogue(script: Path) -> None:
    assert unwrapped_script_words(script.read_text(encoding="utf-8")) == []


def test_every_message_a_script_uses_is_in_the_template() -> None:
    # pybabel's JavaScript extractor skips a call inside a template literal's ${}: its message would
    # reach no catalogue, and stay English in every language.
    with (ROOT / "app" / "locale" / "messages.pot").open("rb") as source:
        template = read_po(source)
    known: set[str] = set()
    for message in template:
        if message.id:
            known.update(message.id if isinstance(message.id, tuple) else (message.id,))
    missing = []
    for script in SCRIPTS:
        for literal in js_literals(script.read_text(encoding="utf-8")):
            if MESSAGE_CALL.search(literal.before) and "{}" not in literal.text:
                text = json.loads(f'"{literal.text}"')
                if text not in known:
                    missing.append(f"{script.name} line {literal.line}: {text}")

    assert missing == []


# The checks themselves: each catches what it is for.


def test_template_check_catches_bare_text_and_a_bare_label() -> None:
    source = '<h1>{% trans %}Results{% endtrans %}</h1><p>Vote here</p><nav aria-label="Language"></nav>'

    assert untranslated_template_words(source) == ["Vote here", "Language"]


def test_template_check_accepts_expressions_and_translated_blocks() -> None:
    source = '<p dir="auto">{{ poll.question }}</p>{% if x %}<b>{{ _("Vote") }}</b>{% endif %} ·'

    assert untranslated_template_words(source) == []


def test_script_check_catches_a_sentence_reaching_the_page() -> None:
    source = 'setText(notice, "Choose an option, then press Vote.");\nitem.textContent = `${n} votes in total`;'

    assert unwrapped_script_words(source) == ["line 1: Choose an option, then press Vote.", "line 2: {} votes in total"]


def test_script_check_accepts_messages_errors_regexes_and_comments() -> None:
    source = (
        "// This comment has words in it.\n"
        'setText(notice, _("Choose an option, then press Vote."));\n'
        'ngettext("{n} vote in total.", "{n} votes in total.", n);\n'
        'throw new Error("the proof-of-work worker failed");\n'
        "const busy = /^server busy \\((\\d+)\\)$/.exec(reason);\n"
        "const x = document.querySelector('input[name=\"option\"]:checked');\n"
    )

    assert unwrapped_script_words(source) == []


# --- words the server gives a page -------------------------------------------------------------

# Modules whose refusals reach the organiser's page: each must be a marked message, never an
# f-string or a bare literal, so that the form's words come from the catalogues.
FORM_MODULES = sorted((ROOT / "app" / "organiser").glob("*.py"))


def unmarked_refusals(source: str, refusal: str = "FormError") -> list[str]:
    """`refusal(...)` calls whose message is text written in place rather than a marked message."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == refusal and node.args:
            message = node.args[0]
            if isinstance(message, ast.JoinedStr) or (
                isinstance(message, ast.Constant) and isinstance(message.value, str)
            ):
                found.append(f"line {node.lineno}: {ast.unparse(message)}")
    return found


@pytest.mark.parametrize("module", FORM_MODULES, ids=lambda path: path.name)
def test_form_refusals_are_catalogue_messages(module: Path) -> None:
    assert unmarked_refusals(module.read_text()) == []


def test_refusal_check_catches_an_f_string_and_a_bare_literal() -> None:
    source = 'FormError(f"at most {n}")\nFormError("Too long.")\nFormError(N_("Too long."))\nFormError(LIMITS)\n'
    assert unmarked_refusals(source) == ["line 1: f'at most {n}'", "line 2: 'Too long.'"]


# Each check of app/polls/validation.py an organiser's form can meet, with what makes it refuse.
FORM_REACHABLE_CHECKS = {
    "a hidden character in the question": lambda: validation.clean_text("Tea\u200b?", "question", 500),
    "a blank option": lambda: validation.clean_text("\u3164", "options[1]", 200),
    "a long option": lambda: validation.clean_text("x" * 201, "options[0]", 200),
    "too many options": lambda: validation.clean_labels([str(n) for n in range(validation.MAX_OPTIONS + 1)]),
    "two options alike": lambda: validation.clean_labels(["Tea", "TEA"]),
    "a closing time past": lambda: validation.check_closing(1, 0, 2),
}


@pytest.mark.parametrize("check", FORM_REACHABLE_CHECKS)
def test_poll_checks_give_pages_a_message_of_the_catalogue(check: str) -> None:
    with pytest.raises(validation.InvalidPoll) as refused:
        FORM_REACHABLE_CHECKS[check]()

    template = read_po((ROOT / "app" / "locale" / "messages.pot").open("rb"))
    assert refused.value.words in template
    assert refused.value.words % refused.value.values  # every placeholder has its value
