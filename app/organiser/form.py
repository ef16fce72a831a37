"""The creation form's fields, read into the API's PollSpec; what is wrong is said in words."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import msgspec
from litestar.datastructures import FormMultiDict

from app.core.i18n import N_
from app.polls.store import RESULTS_VISIBILITIES, PollSpec
from app.polls.validation import (
    ANYONE,
    INVITE,
    MAX_LABEL_CHARS,
    MAX_OPTIONS,
    MAX_QUESTION_CHARS,
    PROOF_OF_WORK,
    InvalidPoll,
)

ELIGIBILITY_MODES = (PROOF_OF_WORK, INVITE, ANYONE)

BLANK_OPTION_FIELDS = 6  # without JavaScript the form offers this many; blank ones are left out
_OFFSET = re.compile(r"(?P<sign>[+-])(?P<hours>\d{2}):?(?P<minutes>\d{2})")
# What msgspec refuses past the limits it checks, said once for all of them.
LIMITS_MESSAGE = N_(
    "The question may have at most %(question)s characters, each option at most %(label)s, "
    "and a poll at most %(options)s options."
)
MAX_FIELD_CHARS = 2000  # longer than any valid text: the spec's own limits then say what is wrong


class FormError(ValueError):
    """The form cannot become a poll. The message is a catalogue message for the organiser, said
    in the page's language with its %(name)s placeholders filled from `values`."""

    def __init__(self, message: str, **values: object) -> None:
        super().__init__(message)
        self.message = message
        self.values = values


def spec_from_form(form: FormMultiDict) -> PollSpec:
    options = [text.strip() for text in form.getall("option", []) if text.strip()][: MAX_OPTIONS + 1]
    visibility = form.get("results_visibility") or "always"
    if visibility not in RESULTS_VISIBILITIES:
        raise FormError(N_("Choose when results are shown."))
    eligibility = form.get("eligibility") or PROOF_OF_WORK
    if eligibility not in ELIGIBILITY_MODES:
        raise FormError(N_("Choose who may vote."))
    fields = {
        "question": _text(form.get("question")),
        "options": [_text(option) for option in options],
        "closes_at": closing_ms(form),
        "results_visibility": visibility,
        "eligibility": eligibility,
    }
    if not fields["question"].strip():
        raise FormError(N_("Write the question voters will see."))
    if len(options) < 2:
        raise FormError(N_("Give at least two options."))
    try:
        return msgspec.convert(fields, PollSpec)
    except msgspec.ValidationError:
        raise FormError(
            LIMITS_MESSAGE,
            question=MAX_QUESTION_CHARS,
            label=MAX_LABEL_CHARS,
            options=MAX_OPTIONS,
        ) from None


def in_words(error: InvalidPoll) -> FormError:
    """A refusal from the poll checks (app/polls/validation.py), said as the form says things."""
    if error.words:
        return FormError(error.words, **error.values)
    # A check the form's fields never meet (the API's own fields): its English words, framed.
    return FormError(N_("This poll cannot be created: %(reason)s"), reason=str(error))


def closing_ms(form: FormMultiDict) -> int | None:
    """The closing time: ms from the page's script (the organiser's zone applied in the browser),
    else the datetime-local value with the offset field that a page without script shows."""
    script_ms = str(form.get("closes_at_ms") or "").strip()
    if script_ms:
        if not script_ms.isdigit() or len(script_ms) > 16:
            raise FormError(N_("The closing time could not be read; choose it again."))
        return int(script_ms)
    local = str(form.get("closes_at") or "").strip()
    if not local:
        return None
    try:
        moment = datetime.fromisoformat(local)
    except ValueError:
        raise FormError(N_("The closing time could not be read; write it as 2026-12-24T18:00.")) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_offset(str(form.get("tz_offset") or "+00:00")))
    return int(moment.timestamp() * 1000)


def _offset(text: str) -> timezone:
    match = _OFFSET.fullmatch(text.strip())
    if match is None or int(match["hours"]) > 14 or int(match["minutes"]) > 59:
        raise FormError(N_("The time zone offset could not be read; write it as +01:00 or -05:00."))
    delta = timedelta(hours=int(match["hours"]), minutes=int(match["minutes"]))
    return timezone(-delta if match["sign"] == "-" else delta)


def _text(value: object) -> str:
    return str(value or "")[:MAX_FIELD_CHARS]
