"""`litestar polls …`, `litestar db …` and `litestar keys …`: run from the repo root, no flags needed."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import click
import msgspec
from litestar import Litestar

from app.core import keys as receipt_keys
from app.core.settings import Settings
from app.storage.db import Database
from app.storage.first_start import LostDatabase, refuse_lost_database
from app.storage.migrate import current_revision, upgrade


def register_commands(cli: click.Group) -> None:
    cli.add_command(polls_group)
    cli.add_command(db_group)
    cli.add_command(keys_group)


def _app(ctx: click.Context) -> Litestar:
    return ctx.obj.app if hasattr(ctx.obj, "app") else ctx.obj().app


def _run(ctx: click.Context, work: Any, *, new_database: bool = False) -> Any:
    """Runs one coroutine against a fresh database handle, migrated first.

    A database lost from under a data dir that has been used is not replaced unless
    `new_database` says so (`db create`): app/storage/first_start.py.
    """
    settings: Settings = _app(ctx).state.settings

    async def main() -> Any:
        db = Database(settings.database_url)
        try:
            if not new_database:
                await refuse_lost_database(db, settings.data_dir)
            await upgrade(db)
            return await work(db, settings)
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except LostDatabase as error:
        raise click.ClickException(str(error)) from None


def parse_instant(value: str) -> int:
    """ISO 8601 to ms since the epoch; a time without an offset is taken as UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@click.group(name="polls", help="Create and close polls.")
def polls_group() -> None:
    pass


@polls_group.command(name="create", help="Create a poll and print it as one JSON object.")
@click.option("--question", required=True, help="The question voters see.")
@click.option("--option", "options", multiple=True, required=True, help="An answer; repeat for each.")
@click.option("--closes-at", default=None, help="ISO 8601 date-time after which votes are refused.")
@click.option("--late-grace-seconds", default=0, type=click.IntRange(0), help="Accept late delivery this long.")
@click.option(
    "--results-visibility",
    default="always",
    type=click.Choice(["always", "after-voting", "after-closing"]),
    help="Who sees the counts before the poll closes.",
)
@click.pass_context
def create_poll_command(
    ctx: click.Context,
    question: str,
    options: tuple[str, ...],
    closes_at: str | None,
    late_grace_seconds: int,
    results_visibility: str,
) -> None:
    """Prints the poll with its manage_url, shown this once: only its SHA-256 is stored."""
    from app.edge.polls import poll_created
    from app.polls.store import PollSpec, create_poll, new_manage_token
    from app.polls.validation import InvalidPoll

    try:
        spec = msgspec.convert(
            {
                "question": question,
                "options": list(options),
                "closes_at": parse_instant(closes_at) if closes_at else None,
                "late_grace_seconds": late_grace_seconds,
                "results_visibility": results_visibility,
            },
            PollSpec,
        )
    except msgspec.ValidationError as error:
        raise click.UsageError(str(error)) from None

    async def work(db: Database, settings: Settings) -> bytes:
        token = new_manage_token()
        try:
            poll = await create_poll(db, spec, manage_token=token)
        except InvalidPoll as error:
            raise click.UsageError(str(error)) from None
        return msgspec.json.encode(poll_created(poll, settings, token))

    click.echo(_run(ctx, work).decode())


@polls_group.command(name="close", help="Close a poll now and print it as one JSON object.")
@click.argument("poll_id")
@click.pass_context
def close_poll_command(ctx: click.Context, poll_id: str) -> None:
    from app.polls.store import close_poll

    async def work(db: Database, _: Settings) -> bytes:
        poll = await close_poll(db, poll_id, int(time.time() * 1000))
        if poll is None:
            raise click.UsageError(f"There is no poll {poll_id!r}.")
        return msgspec.json.encode(poll)

    click.echo(_run(ctx, work).decode())


@click.group(name="db", help="Database schema.")
def db_group() -> None:
    pass


@db_group.command(name="upgrade", help="Apply all migrations (the service also does this on start).")
@click.pass_context
def db_upgrade_command(ctx: click.Context) -> None:
    async def work(db: Database, _: Settings) -> str | None:
        return await current_revision(db)

    click.echo(json.dumps({"revision": _run(ctx, work)}))


@db_group.command(
    name="create",
    help="Make the database on purpose, also where the data dir is from an earlier one (whose votes are lost).",
)
@click.pass_context
def db_create_command(ctx: click.Context) -> None:
    async def work(db: Database, _: Settings) -> str | None:
        return await current_revision(db)

    click.echo(json.dumps({"revision": _run(ctx, work, new_database=True)}))


@click.group(name="keys", help="Receipt signing keys.")
def keys_group() -> None:
    pass


@keys_group.command(name="rotate", help="Make a new active receipt key; old ones stay published.")
@click.pass_context
def keys_rotate_command(ctx: click.Context) -> None:
    settings: Settings = _app(ctx).state.settings
    receipt_keys.load_or_create(settings.data_dir)
    key = receipt_keys.rotate(settings.data_dir)
    click.echo(json.dumps({"kid": key.kid}))
