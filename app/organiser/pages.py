"""The organiser's pages: the creation form (`/polls/new`), the page that gives the links once,
and the manage page (`/polls/{poll_id}/manage`, its token in the fragment, read by the script)."""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import MediaType, Request, Response, post
from litestar.params import FromPath
from litestar.response import Stream, Template

from app.core import problems
from app.core.i18n import N_
from app.core.protocol import ID_PATTERN
from app.edge.assets import AssetsNotBuilt, load_assets
from app.edge.deps import DatabaseDep, PollNewsDep, SettingsDep
from app.edge.http import get_or_head
from app.edge.pages import closing_context
from app.edge.polls import invitations_csv, issue_invitations, may_create, poll_created
from app.eligibility import invitations
from app.eligibility.no_script import grouped
from app.organiser.form import BLANK_OPTION_FIELDS, FormError, in_words, spec_from_form
from app.organiser.log_archive import NoLogYet, folder, log_files, tar_gz
from app.organiser.qr import qr_svg
from app.polls.results import load_results
from app.polls.store import create_poll, load_poll, manage_token_matches, new_manage_token
from app.polls.validation import INVITE, MAX_OPTIONS, InvalidPoll

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


def _form_context(
    settings: Any, values: dict[str, Any] | None = None, error: FormError | None = None
) -> dict[str, Any]:
    values = values or {}
    options = list(values.get("options") or [])
    return {
        "mode": settings.poll_creation,
        "error": error and error.message,
        "error_values": error.values if error else {},
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
        error = FormError(N_("The admin token is not right. Check it and try again."))
        return _page("organiser_new.html", settings, _form_context(settings, values, error), 401, NO_STORE)
    token = new_manage_token()
    try:
        poll = await create_poll(db, spec_from_form(form), manage_token=token)
    except FormError as error:
        return _page("organiser_new.html", settings, _form_context(settings, values, error), 422, NO_STORE)
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
        "max_sheet": MAX_SHEET_INVITATIONS,
        "max_csv": invitations.MAX_PER_REQUEST,
    }
    return _page("organiser_manage.html", settings, context)


MAX_SHEET_INVITATIONS = 200  # one printed sheet: a few pages of QR codes, each a few KB of SVG


@post("/polls/{poll_id:str}/manage/invitations", include_in_schema=False, status_code=201)
async def invitations_from_manage_page(
    request: Request[Any, Any, Any], poll_id: FromPath[str], db: DatabaseDep, settings: SettingsDep
) -> Template | Response[Any]:
    """New invitations for an invite poll, from the manage page's form (its script puts the manage
    token in the body): a printable sheet (a QR code, the link and the code in words for each),
    or the CSV. The codes exist only in this answer, which no cache keeps."""
    form = await request.form()
    poll = await load_poll(db, poll_id) if re.fullmatch(ID_PATTERN, poll_id) else None
    if poll is None:
        raise problems.PollNotFound.named(poll_id)
    as_csv = form.get("format") == "csv"
    limit = invitations.MAX_PER_REQUEST if as_csv else MAX_SHEET_INVITATIONS
    count_text = str(form.get("count") or "").strip()
    refused = None
    if not await manage_token_matches(db, poll.id, str(form.get("manage_token") or "")):
        refused = ("wrong-key", 403)
    elif poll.eligibility != INVITE:
        refused = ("not-invite", 400)
    elif not count_text.isdigit() or not 1 <= int(count_text) <= limit:
        refused = ("count", 400)
    if refused is not None:
        context = {"poll": poll, "reason": refused[0], "limit": limit}
        return _page("organiser_refused.html", settings, context, refused[1], NO_STORE)
    issued = await issue_invitations(db, request.app.state.eligibility_key, poll.id, int(count_text), settings)
    if as_csv:
        return Response(
            invitations_csv(issued),
            status_code=201,
            media_type="text/csv; charset=utf-8; header=present",
            headers={
                "cache-control": NO_STORE,
                "content-disposition": f'attachment; filename="{poll.id}-invitations.csv"',
            },
        )
    short_url = re.sub(r"^https?://", "", f"{settings.base_url}/polls/{poll.id}")
    cards = [
        {"url": i.url, "code": grouped(i.code), "qr": qr_svg(i.url, f"QR code of invitation {n}")}
        for n, i in enumerate(issued.invitations, start=1)
    ]
    return _page(
        "organiser_invitations.html", settings, {"poll": poll, "cards": cards, "short_url": short_url}, 201, NO_STORE
    )


@get_or_head("/polls/{poll_id:str}/ballot-log.tar.gz", include_in_schema=False)
async def ballot_log_export(poll_id: FromPath[str], db: DatabaseDep, request: Request[Any, Any, Any]) -> Stream:
    """The poll's public ballot log as one archive (app/organiser/log_archive.py), for an auditor:
    `tar xzf` it, then `litestar polls audit {poll_id}-ballot-log`."""
    poll = await load_poll(db, poll_id) if re.fullmatch(ID_PATTERN, poll_id) else None
    if poll is None:
        raise problems.PollNotFound.named(poll_id)
    files = log_files(db, poll, request.app.state.log_signer)
    try:
        first = await anext(files)  # before the headers: a log not yet started is a 404 in words
    except NoLogYet:
        raise problems.NotFound("No vote has reached this poll's ballot log yet: there is nothing to export.") from None

    async def every_file() -> AsyncIterator[tuple[str, bytes]]:
        yield first
        async for item in files:
            yield item

    return Stream(
        tar_gz(every_file(), folder(poll.id), int(time.time())),
        media_type="application/gzip",
        headers={
            "cache-control": "no-cache",
            "content-disposition": f'attachment; filename="{folder(poll.id)}.tar.gz"',
        },
    )


organiser_handlers: list = [
    new_poll_page,
    create_from_form,
    manage_page,
    invitations_from_manage_page,
    ballot_log_export,
]
