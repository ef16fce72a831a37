"""The organiser's pages: the creation form (`/polls/new`), the page that gives the links once,
and the manage page (`/polls/{poll_id}/manage`, its token in the fragment, read by the script)."""

from __future__ import annotations

import hmac
import re
import time
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, post
from litestar.params import FromPath
from litestar.response import Template

from app.core import problems
from app.core.i18n import N_
from app.core.protocol import ID_PATTERN
from app.edge.assets import AssetsNotBuilt, load_assets
from app.edge.deps import DatabaseDep, PollNewsDep, SettingsDep
from app.edge.http import get_or_head
from app.edge.pages import closing_context
from app.edge.polls import may_create, poll_created
from app.organiser.form import BLANK_OPTION_FIELDS, FormError, in_words, spec_from_form
from app.organiser.qr import qr_svg
from app.polls.results import load_results
from app.polls.store import create_poll, load_poll, new_manage_token
from app.polls.validation import MAX_OPTIONS, InvalidPoll

# The page that shows a manage link must not stay in any cache: the link is the poll's key.
NO_STORE = "no-store"
VISIBILITY_CHOICES = (
    ("always", N_("Always: anyone can see the counts while the poll is open")),
    ("after-voting", N_("After voting: a device sees the counts once its vote is counted")),
    ("after-closing", N_("After closing: no one but you sees the counts until the poll closes")),
)

# Who may vote (docs/abuse.md), in the organiser's words; the first is the default.
ELIGIBILITY_CHOICES = (
    (
        "proof-of-work",
        N_("Anyone with the link: each device does a second or two of work first, which makes fake votes costly"),
    ),
    ("invite", N_("Only people you invite: each invitation lets one device vote once")),
    ("anyone", N_("Anyone with the link, with no check: for a room you trust")),
)


def _page(
    template: str, settings: Any, context: dict[str, Any], status_code: int = 200, cache: str = "no-cache"
) -> Template | Response[str]:
    try:
        assets = load_assets(settings.dist_dir)
    except AssetsNotBuilt as error:
        return Response(f"The page's assets are not built. {error}", status_code=503, media_type=MediaType.TEXT)
    headers = {"cache-control": cache, "content-security-policy": assets.content_security_policy()}
    return Template(template, context={**context, "assets": assets.links}, status_code=status_code, headers=headers)


def _form_context(settings: Any, values: dict[str, Any] | None = None, error: str | None = None) -> dict[str, Any]:
    values = values or {}
    options = list(values.get("options") or [])
    return {
        "mode": settings.poll_creation,
        "error": error,
        "values": values,
        "options": options + [""] * max(0, BLANK_OPTION_FIELDS - len(options)),
        "max_options": MAX_OPTIONS,
        "visibilities": VISIBILITY_CHOICES,
        "eligibilities": ELIGIBILITY_CHOICES,
    }


@get_or_head("/polls/new", include_in_schema=False)
async def new_poll_page(settings: SettingsDep) -> Template | Response[str]:
    """The creation form, in every creation mode; in admin mode it asks for the admin token."""
    return _page("organiser_new.html", settings, _form_context(settings))


@post("/polls/new", include_in_schema=False, status_code=201)
async def create_from_form(
    request: Request[Any, Any, Any],
    db: DatabaseDep,
    settings: SettingsDep,
    poll_news: PollNewsDep,
) -> Template | Response[str]:
    """The form posted (with or without the page's script): the poll, and its links shown once."""
    form = await request.form()
    values = {
        "question": str(form.get("question") or ""),
        "options": [str(o) for o in form.getall("option", []) if str(o).strip()][:MAX_OPTIONS],
        "results_visibility": str(form.get("results_visibility") or "always"),
        "closes_at": str(form.get("closes_at") or ""),
        "tz_offset": str(form.get("tz_offset") or ""),
    }
    if not _allowed(request, str(form.get("admin_token") or "")):
        error = N_("The admin token is not right. Check it and try again.")
        return _page("organiser_new.html", settings, _form_context(settings, values, error), 401, NO_STORE)
    token = new_manage_token()
    try:
        poll = await create_poll(db, spec_from_form(form), manage_token=token)
    except FormError as error:
        return _page("organiser_new.html", settings, _form_context(settings, values, str(error)), 422, NO_STORE)
    except InvalidPoll as error:
        return _page("organiser_new.html", settings, _form_context(settings, values, in_words(error)), 422, NO_STORE)
    await poll_news.announce(poll.id)
    created = msgspec.to_builtins(poll_created(poll, settings, token))
    return _page("organiser_created.html", settings, {"poll": poll, "created": created}, 201, NO_STORE)


def _allowed(request: Request[Any, Any, Any], admin_token: str) -> bool:
    """The admin token typed in the form (kept in the browser, never in a URL), or open creation."""
    expected: str = request.app.state.admin_token
    if admin_token and hmac.compare_digest(admin_token.encode(), expected.encode()):
        return True
    return may_create(request)


@get_or_head("/polls/{poll_id:str}/manage", include_in_schema=False)
async def manage_page(poll_id: FromPath[str], db: DatabaseDep, settings: SettingsDep) -> Template | Response[str]:
    """What anyone with the share link may see, and the controls the script enables with the token
    from the fragment (close now, results visibility, CSV export)."""
    poll = await load_poll(db, poll_id) if re.fullmatch(ID_PATTERN, poll_id) else None
    if poll is None:
        raise problems.PollNotFound.named(poll_id)
    now_ms = int(time.time() * 1000)
    share_url = f"{settings.base_url}/polls/{poll.id}"
    # The manage page's address is no secret: withheld counts reach it only through the script,
    # which asks for them with the manage token.
    withheld = poll.results_withheld(now_ms)
    results = None if withheld else await load_results(db, poll.id)
    context = {
        "poll": poll,
        "share_url": share_url,
        "short_url": re.sub(r"^https?://", "", share_url),
        "qr": qr_svg(share_url, f"QR code for {share_url}"),
        "closing": closing_context(poll, now_ms),
        "results": None if results is None else msgspec.to_builtins(results),
        "results_withheld": withheld,
        "visibilities": VISIBILITY_CHOICES,
        "eligibilities": ELIGIBILITY_CHOICES,
    }
    return _page("organiser_manage.html", settings, context)


organiser_handlers: list = [new_poll_page, create_from_form, manage_page]
