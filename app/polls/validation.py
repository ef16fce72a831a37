"""What a poll may say: the one check every way of creating a poll passes through (the API,
`litestar polls create`, the demo poll), inside `create_poll`. docs/protocol.md lists the limits."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from app.core.i18n import N_

MIN_OPTIONS = 2
MAX_OPTIONS = 64
MAX_QUESTION_CHARS = 500
MAX_LABEL_CHARS = 200
MAX_LATE_GRACE_SECONDS = 7 * 24 * 3600
MAX_OPEN_MS = 366 * 24 * 3600 * 1000  # the furthest closes_at may lie ahead: a year and a day

# Who may vote (docs/abuse.md). Proof of work is the default: it needs no roll and works offline.
INVITE = "invite"
PROOF_OF_WORK = "proof-of-work"
ANYONE = "anyone"
ELIGIBILITY_MODES = (INVITE, PROOF_OF_WORK, ANYONE)
# Leading zero bits of the stamp's SHA-256; docs/abuse.md measures the default.
MIN_DIFFICULTY = 8
MAX_DIFFICULTY = 24
DEFAULT_DIFFICULTY = 19

# Format characters (Cf) reorder or hide text (bidi overrides, zero-width spaces) and are refused,
# but for the joiners that scripts such as Persian and emoji sequences need, and emoji tag
# sequences (subdivision flags).
_ALLOWED_FORMAT = frozenset("\u200c\u200d") | frozenset(map(chr, range(0xE0020, 0xE0080)))
# Categories refused anywhere: controls (NUL, BEL, newline…), surrogates, line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
# Letters and symbols that render as blank space.
_BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


class InvalidPoll(ValueError):
    """A poll that must not be created; the message names the field and what is wrong with it.

    The message is the API's, in English and stable. A page says it with `words`, a catalogue
    message whose %(name)s placeholders `values` fill (app/organiser/form.py)."""

    def __init__(self, message: str, words: str | None = None, **values: object) -> None:
        super().__init__(message)
        self.words = words
        self.values = values


# What a page says of a text that is refused, for the question and for an option (`number`, from 1).
_QUESTION_WORDS = {
    "character": N_("The question contains %(character)s, which may not appear in a poll."),
    "blank": N_("The question has no visible text."),
    "length": N_("The question is %(length)s characters long; the limit is %(limit)s."),
}
_OPTION_WORDS = {
    "character": N_("Option %(number)s contains %(character)s, which may not appear in a poll."),
    "blank": N_("Option %(number)s has no visible text."),
    "length": N_("Option %(number)s is %(length)s characters long; the limit is %(limit)s."),
}


def _words_for(field: str) -> tuple[dict[str, str], dict[str, object]]:
    """The page's messages for `field` ("question" or "options[i]") and the option's number."""
    if field.startswith("options["):
        return _OPTION_WORDS, {"number": int(field[len("options[") : -1]) + 1}
    return _QUESTION_WORDS, {}


def clean_text(text: str, field: str, max_chars: int) -> str:
    """`text` NFC-normalised and trimmed, or InvalidPoll: it must be visible, short enough, and
    free of characters that hide or reorder text."""
    cleaned = unicodedata.normalize("NFC", text).strip()
    words, values = _words_for(field)
    for char in cleaned:
        category = unicodedata.category(char)
        if category in _REFUSED_CATEGORIES or (category == "Cf" and char not in _ALLOWED_FORMAT):
            character = _describe(char)
            raise InvalidPoll(
                f"{field} contains {character}, which may not appear in a poll.",
                words["character"],
                character=character,
                **values,
            )
    if not any(_visible(char) for char in cleaned):
        raise InvalidPoll(f"{field} has no visible text.", words["blank"], **values)
    if len(cleaned) > max_chars:
        raise InvalidPoll(
            f"{field} is {len(cleaned)} characters long; the limit is {max_chars}.",
            words["length"],
            length=len(cleaned),
            limit=max_chars,
            **values,
        )
    return cleaned


def clean_labels(labels: Sequence[str]) -> list[str]:
    """Each label cleaned; two that a voter could not tell apart are refused."""
    if not MIN_OPTIONS <= len(labels) <= MAX_OPTIONS:
        raise InvalidPoll(
            f"A poll has {MIN_OPTIONS} to {MAX_OPTIONS} options, not {len(labels)}.",
            N_("A poll has %(min)s to %(max)s options, not %(count)s."),
            min=MIN_OPTIONS,
            max=MAX_OPTIONS,
            count=len(labels),
        )
    cleaned = [clean_text(label, f"options[{index}]", MAX_LABEL_CHARS) for index, label in enumerate(labels)]
    seen: dict[str, int] = {}
    for index, label in enumerate(cleaned):
        earlier = seen.setdefault(_lookalike(label), index)
        if earlier != index:
            raise InvalidPoll(
                f"options[{index}] reads the same as options[{earlier}]: {label!r}.",
                N_("Option %(number)s reads the same as option %(earlier)s: “%(label)s”."),
                number=index + 1,
                earlier=earlier + 1,
                label=label,
            )
    return cleaned


def check_closing(closes_at: int | None, late_grace_seconds: int, now_ms: int) -> None:
    if closes_at is not None and not now_ms < closes_at <= now_ms + MAX_OPEN_MS:
        raise InvalidPoll(
            f"closes_at must lie in the future, at most {MAX_OPEN_MS // 86_400_000} days ahead "
            f"(now is {now_ms} ms, closes_at is {closes_at}).",
            N_("The closing time must be in the future, and at most a year ahead."),
        )
    if not 0 <= late_grace_seconds <= MAX_LATE_GRACE_SECONDS:
        raise InvalidPoll(f"late_grace_seconds must be 0 to {MAX_LATE_GRACE_SECONDS}.")


def _visible(char: str) -> bool:
    return unicodedata.category(char)[0] in "LNPS" and char not in _BLANK_GLYPHS


def _lookalike(label: str) -> str:
    """What a voter reads: width, case, joiners and runs of spaces do not tell labels apart."""
    folded = unicodedata.normalize("NFKC", label).casefold()
    return " ".join("".join(c for c in folded if unicodedata.category(c) != "Cf").split())


_KINDS = {"Cc": "a control character", "Cf": "an invisible formatting character", "Cs": "a lone surrogate"}


def _describe(char: str) -> str:
    kind = _KINDS.get(unicodedata.category(char), "a line or paragraph separator")
    return f"U+{ord(char):04X} ({unicodedata.name(char, kind)})"


def difficulty_for(eligibility: str, difficulty: int | None) -> int:
    """The stamp's difficulty a poll keeps: only a proof-of-work poll has one (0 otherwise)."""
    if eligibility != PROOF_OF_WORK:
        if difficulty is not None:
            raise InvalidPoll(f"difficulty applies to proof-of-work polls only, not {eligibility!r}.")
        return 0
    return DEFAULT_DIFFICULTY if difficulty is None else difficulty
