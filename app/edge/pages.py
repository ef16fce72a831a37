"""The voter's pages, rendered on the server, plus the built assets they link."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, post
from litestar.config.compression import CompressionConfig
from litestar.params import FromPath
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig

from app.core import problems
from app.core.i18n import configure as configure_i18n
from app.core.protocol import ID_PATTERN, b64url_checked
from app.edge.assets import AssetsNotBuilt, asset_handlers, load_assets
from app.edge.deps import DatabaseDep, SettingsDep
from app.edge.http import get_or_head
from app.eligibility.no_script import NotABallot, invitation_code, new_form_token, no_script_ballot
from app.eligibility.rate_limits import RateLimits
from app.polls.results import load_results
from app.polls.store import Poll, load_poll
from app.polls.validation import INVITE
from app.votes.service import VoteService

TEMPLATES_DIR = Path(__file__).parent / "templates"

# A page is rebuilt from the database on every visit; the service worker keeps the offline copy.
PAGE_CACHE_CONTROL = "no-cache"


async def _render(
    template: str,
    poll_id: str,
    db: DatabaseDep,
    settings: SettingsDep,
    status_code: int = 200,
    extra: dict[str, Any] | None = None,
    cache_control: str = PAGE_CACHE_CONTROL,
) -> Template | Response[str]:
    try:
        assets = load_assets(settings.dist_dir)
    except AssetsNotBuilt as error:
        return Response(f"The page's assets are not built. {error}", status_code=503, media_type=MediaType.TEXT)
    headers = {"cache-control": cache_control, "content-security-policy": assets.content_security_policy()}
    poll = await load_poll(db, poll_id) if re.fullmatch(ID_PATTERN, poll_id) else None
    results = await load_results(db, poll_id) if poll is not None else None
    if poll is None or results is None:
        return Template("not_found.html", context={"assets": assets.links}, status_code=404, headers=headers)
    now_ms = int(time.time() * 1000)
    withheld = poll.results_withheld(now_ms)
    context = {
        "poll": poll,
        # Counts the poll's visibility withholds never reach the page (docs/organisers.md).
        "results": None if withheld else msgspec.to_builtins(results),
        "results_withheld": withheld,
        # When these counts were current: the page shows their age once it is offline.
        "known_at": now_ms,
        "assets": assets.links,
        "closing": closing_context(poll, now_ms),
        "preview": preview_context(poll, settings.base_url),
        # The no-script vote form of an invite poll: a new token per page (app/eligibility/no_script.py).
        "form_token": new_form_token(now_ms) if poll.eligibility == INVITE else None,
        **(extra or {}),
    }
    return Template(template, context=context, headers=headers, status_code=status_code)


def closing_context(poll: Poll, now_ms: int) -> dict[str, Any]:
    """When the poll closes, in words a page without JavaScript can show (UTC); the page's script
    rewrites it in the voter's own zone and language, and closes the form when the time comes."""
    if poll.closes_at is None:
        return {"closes_at": None, "closed": False}
    moment = datetime.fromtimestamp(poll.closes_at / 1000, tz=UTC)
    return {
        "closes_at": poll.closes_at,
        "closed": now_ms >= poll.closes_at,
        "iso": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "text": f"{moment.day} {moment:%B %Y, %H:%M} UTC",
    }


def preview_context(poll: Poll, base_url: str) -> dict[str, str]:
    """Where a shared link leads (Open Graph); _link_preview.html says what the page is, in the
    page's language."""
    return {"url": f"{base_url}/polls/{poll.id}"}


@get_or_head("/polls/{poll_id:str}", include_in_schema=False)
async def poll_page(poll_id: FromPath[str], db: DatabaseDep, settings: SettingsDep) -> Template | Response[str]:
    """The voter's page: the question, the vote form, this device's votes and the live results."""
    return await _render("poll.html", poll_id, db, settings)


@post("/polls/{poll_id:str}", include_in_schema=False)
async def vote_without_script(
    request: Request[Any, Any, Any], poll_id: FromPath[str], db: DatabaseDep, settings: SettingsDep
) -> Template | Response[str]:
    """The vote form, submitted by a browser that runs no script. In an `invite` poll the service
    signs the ballot for the invitation code typed in the form (docs/protocol.md, Voting without
    JavaScript) and answers a page saying what was counted; in other polls nothing is sent, and
    the page says why in words (not a 405 in JSON)."""
    poll = await load_poll(db, poll_id) if re.fullmatch(ID_PATTERN, poll_id) else None
    if poll is None or poll.eligibility != INVITE:
        return await _render("no_script_vote.html", poll_id, db, settings, status_code=400)
    form = await request.form()
    typed = str(form.get("invitation") or "")[:MAX_TYPED_CODE_CHARS]
    option_id = str(form.get("option") or "")
    code = invitation_code(typed)

    async def again(error: str, status_code: int = 422) -> Template | Response[str]:
        extra = {"no_script_error": error, "typed_code": typed, "chosen": option_id}
        return await _render("poll.html", poll_id, db, settings, status_code, extra, NO_STORE)

    if option_id not in {option.id for option in poll.options}:
        return await again("no-option")
    if code is None:
        return await again("not-a-code")
    state = request.app.state
    rate_limits: RateLimits = state.rate_limits
    votes: VoteService = state.votes
    try:
        if rate_limits.client:
            await rate_limits.check_client(rate_limits.client_of(request.scope["headers"], request.scope.get("client")))
        if rate_limits.poll:
            await rate_limits.check_poll(poll_id)
        ballot = no_script_ballot(state.eligibility_key, poll_id, option_id, code, str(form.get("form_token") or ""))
        accepted = await votes.submit(ballot)
    except NotABallot:
        return await again("form-expired")
    except problems.InvitationUnknown:
        return await again("unknown-code")
    except (problems.AlreadyVoted, problems.IdempotencyKeyReused, problems.RequestInFlight):
        counted = await votes.counted_vote(poll_id, b64url_checked(ballot.public_key))
        if counted is None:  # the first submit of this form is still being committed
            return await _outcome("busy", poll_id, db, settings, 409)
        return await _outcome("counted-before", poll_id, db, settings, 200, *counted)
    except problems.Problem as problem:
        return await _outcome(_NO_SCRIPT_OUTCOMES.get(type(problem), "busy"), poll_id, db, settings, problem.status)
    return await _outcome("counted", poll_id, db, settings, accepted.status, option_id, accepted.receipt)


MAX_TYPED_CODE_CHARS = 2000  # a pasted invitation link fits; nothing longer is read
NO_STORE = "no-store"  # an answer to a vote is for this voter only, and only now
# Refusals the voter can act on, by the words no_script_result.html has for each; any other
# (the service busy, a rate limit) says to send the form again in a moment.
_NO_SCRIPT_OUTCOMES: dict[type[problems.Problem], str] = {
    problems.InvitationUsed: "invitation-used",
    problems.PollClosed: "closed",
    problems.NotEligible: "not-eligible",
}


async def _outcome(
    outcome: str,
    poll_id: str,
    db: DatabaseDep,
    settings: SettingsDep,
    status_code: int,
    option_id: str | None = None,
    receipt: bytes | None = None,
) -> Template | Response[str]:
    """The page that answers a no-script vote: what was counted, with its tracker code, or why not."""
    extra: dict[str, Any] = {"outcome": outcome, "option_id": option_id}
    if receipt is not None:
        payload = msgspec.json.decode(b64url_checked(msgspec.json.decode(receipt)["payload"]))
        extra["tracker"] = f"{poll_id}:{payload['seq']}:{payload['ballot_hash'][:8]}"
    return await _render("no_script_result.html", poll_id, db, settings, status_code, extra, NO_STORE)


@get_or_head("/polls/{poll_id:str}/results", include_in_schema=False)
async def results_page(poll_id: FromPath[str], db: DatabaseDep, settings: SettingsDep) -> Template | Response[str]:
    """The live results alone, e.g. for a projector or an organiser's screen."""
    return await _render("results.html", poll_id, db, settings)


# Everything but the pages is left alone: the static assets are compressed by build.py, and the
# vote path and the live stream are not worth a middleware's cost per request.
_NOT_COMPRESSED = ["^/api/", "^/static/", "^/schema", "^/sw\\.js$", "^/healthz$", "^/readyz$", "\\.tar\\.gz$"]


def page_compression() -> CompressionConfig:
    """The pages gzipped on the wire (a poll page: about 4 KB raw, under 2 KB gzipped): the first
    visit on a slow network is mostly this page's bytes."""
    return CompressionConfig(backend="gzip", gzip_compress_level=6, minimum_size=512, exclude=_NOT_COMPRESSED)


def template_config() -> TemplateConfig:
    return TemplateConfig(directory=TEMPLATES_DIR, engine=JinjaTemplateEngine, engine_callback=_configure_templates)


def _configure_templates(engine: JinjaTemplateEngine) -> None:
    """Block tags leave no blank lines, which keeps the page small; the pages speak the request's
    language (app/core/i18n.py). build.py renders the page with the same options to measure it."""
    engine.engine.trim_blocks = True
    engine.engine.lstrip_blocks = True
    configure_i18n(engine.engine)


page_handlers: list = [poll_page, vote_without_script, results_page, *asset_handlers]
