"""`litestar polls …`, `litestar db …` and `litestar keys …`: run from the repo root, no flags needed."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import msgspec
from litestar import Litestar

from app.core.key_encryption import KeyEncryptionError
from app.core.settings import Settings
from app.storage import sealed_keys
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
    except (LostDatabase, KeyEncryptionError) as error:
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
    "--eligibility",
    type=click.Choice(["invite", "proof-of-work", "anyone"]),
    default="proof-of-work",
    show_default=True,
    help="Who may vote: invited devices, devices that send a proof-of-work stamp, or anyone (docs/abuse.md).",
)
@click.option("--difficulty", type=int, default=None, help="Proof-of-work bits (8-24); the default when unset.")
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
    eligibility: str,
    difficulty: int | None,
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
                "eligibility": eligibility,
                "difficulty": difficulty,
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


@polls_group.command(name="publish-log", help="Write a poll's ballot log as static files (C2SP tlog-tiles) into DIR.")
@click.argument("poll_id")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def publish_log_command(ctx: click.Context, poll_id: str, directory: Path) -> None:
    from app.ballot_log.integrator import integrate
    from app.ballot_log.log_keys import LogSigner, key_name_for, origin_for
    from app.ballot_log.publish import PublishError, publish
    from app.polls.store import load_poll

    async def work(db: Database, settings: Settings) -> int:
        poll = await load_poll(db, poll_id)
        if poll is None:
            raise click.ClickException(f"there is no poll {poll_id!r}")
        signer = LogSigner(key_name_for(settings.base_url), (await sealed_keys.load_rings(settings, db))[1])
        origin = origin_for(settings.base_url, poll_id)
        while await integrate(db, poll_id, signer, origin):  # catch up, as the service would within a second
            pass
        try:
            return await publish(db, poll_id, directory, signer, poll)
        except PublishError as error:
            raise click.ClickException(str(error)) from None

    size = _run(ctx, work)
    click.echo(json.dumps({"poll_id": poll_id, "entries": size, "directory": str(directory)}))


@polls_group.command(name="audit", help="Recount a poll from its public ballot log: a …/log/ URL or a publish-log DIR.")
@click.argument("where", metavar="URL_OR_DIR")
@click.option(
    "--since",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A checkpoint saved by an earlier run: the log must extend it.",
)
@click.option(
    "--save",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the verified checkpoint here, for the next run's --since.",
)
@click.option(
    "--vkey", "vkeys", multiple=True, help="Trust this log key (signed-note vkey) instead of the published ones."
)
def audit_command(where: str, since: Path | None, save: Path | None, vkeys: tuple[str, ...]) -> None:
    from app.ballot_log.audit import AuditFailure, audit
    from app.ballot_log.audit_source import resolve

    try:
        target = resolve(where, list(vkeys))
        report = audit(target.log, target.verifiers, target.poll, since.read_bytes() if since else None)
        tally = {option: report.tally.get(option, 0) for option in sorted(target.poll.option_ids)}
        if target.results is not None and target.results != tally:
            raise AuditFailure(f"the service's results {target.results} differ from the log's count {tally}")
    except AuditFailure as error:
        raise click.ClickException(f"audit failed: {error}") from None
    if save is not None:
        save.write_bytes(report.note)
    summary = {
        "poll_id": target.poll.poll_id,
        "origin": report.checkpoint.origin,
        "entries": report.checkpoint.size,
        "voids": report.voids,
        "tally": tally,
        "results_match": None if target.results is None else True,
    }
    click.echo(json.dumps(summary))


@polls_group.command(
    name="invite",
    help="Issue single-use invitations for an invite poll and print them as one JSON object "
    "(or CSV with --csv). Only this output holds the codes: the database keeps their keyed hashes.",
)
@click.argument("poll_id")
@click.option("--count", required=True, type=click.IntRange(1, 10_000), help="How many invitations.")
@click.option("--csv", "as_csv", is_flag=True, help="poll_id,code,url rows for a mail merge or printing.")
@click.pass_context
def invite_command(ctx: click.Context, poll_id: str, count: int, as_csv: bool) -> None:
    from app.core import problems
    from app.edge.polls import invitations_csv, issue_invitations
    from app.eligibility import secret

    async def work(db: Database, settings: Settings) -> str:
        try:
            key = await secret.load(settings, db)
            issued = await issue_invitations(db, key, poll_id, count, settings)
        except (problems.Problem, secret.BadEligibilityKey, KeyEncryptionError) as error:
            raise click.ClickException(str(error)) from None
        return invitations_csv(issued) if as_csv else msgspec.json.encode(issued).decode()

    click.echo(_run(ctx, work), nl=not as_csv)


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


@click.group(name="keys", help="Receipt and ballot log signing keys.")
def keys_group() -> None:
    pass


@keys_group.command(name="rotate", help="Make a new active receipt key; old ones stay published.")
@click.pass_context
def keys_rotate_command(ctx: click.Context) -> None:
    key = _run(ctx, lambda db, settings: sealed_keys.rotate(settings, db, sealed_keys.RECEIPT))
    click.echo(json.dumps({"kid": key.kid, "active_from": key.active_from_ms}))


@keys_group.command(name="rotate-log", help="Make a new active ballot log key; old ones stay published.")
@click.pass_context
def keys_rotate_log_command(ctx: click.Context) -> None:
    from app.ballot_log.log_keys import key_name_for
    from app.ballot_log.note import Verifier

    async def work(db: Database, settings: Settings) -> dict[str, Any]:
        key = await sealed_keys.rotate(settings, db, sealed_keys.LOG)
        # The vkey it signs with from `active_from`: a fleet's, once every node publishes it.
        vkey = Verifier.of(key_name_for(settings.base_url), key.public_key).vkey
        return {"vkey": vkey, "active_from": key.active_from_ms}

    click.echo(json.dumps(_run(ctx, work)))
