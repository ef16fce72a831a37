"""Builds the Litestar application from settings: the one place where the layers meet."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import CLIPluginProtocol, InitPluginProtocol

from app.ballot_log.integrator import Integrator, SequencerHelper
from app.ballot_log.log_keys import LogSigner, key_name_for, origin_for
from app.cli import register_commands
from app.core.admin_token import admin_token
from app.core.i18n import remember_language
from app.core.keys import KeyRing
from app.core.settings import Settings, SettingsError
from app.edge.errors import exception_handlers
from app.edge.health import health_routes
from app.edge.http import answer_head_on_schema_routes
from app.edge.limits import StreamsPerClient
from app.edge.pages import page_compression, page_handlers, template_config
from app.edge.polls import PollController
from app.edge.security import add_security_headers
from app.edge.stream import stream_results
from app.edge.votes import list_keys, vote_routes
from app.eligibility import secret as eligibility_secret
from app.eligibility.rate_limits import RateLimits, VoteRateLimits
from app.live.plugin import LiveResultsPlugin, channels_backend, channels_plugin
from app.log_web.pages import verify_page
from app.log_web.routes import log_routes
from app.organiser.pages import organiser_handlers
from app.storage import sealed_keys
from app.storage.db import Database
from app.storage.files import make_private_dir
from app.storage.first_start import refuse_lost_database
from app.storage.migrate import upgrade
from app.votes.service import VoteService


class VoteServicePlugin(InitPluginProtocol, CLIPluginProtocol):
    """Wires the service together: state, dependencies, lifespan and the CLI commands."""

    def __init__(self, settings: Settings, db: Database, votes: VoteService, rate_limits: RateLimits) -> None:
        self.settings = settings
        self.db = db
        self.votes = votes
        self.rate_limits = rate_limits

    def on_cli_init(self, cli) -> None:  # type: ignore[no-untyped-def]
        register_commands(cli)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.state.update(settings=self.settings, db=self.db, votes=self.votes, rate_limits=self.rate_limits)
        app_config.dependencies.update(
            settings=Provide(lambda: self.settings, sync_to_thread=False),
            db=Provide(lambda: self.db, sync_to_thread=False),
            receipt_keys=Provide(_receipt_keys, sync_to_thread=False),
            log_signer=Provide(_log_signer, sync_to_thread=False),
        )
        app_config.lifespan.append(self.lifespan)
        return app_config

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        # Disk and database work happen here, not in create_app(): the CLI builds the app too.
        make_private_dir(self.settings.data_dir)
        await refuse_lost_database(self.db, self.settings.data_dir)
        await upgrade(self.db)
        # From the data dir, or a fleet's from the database (app/storage/sealed_keys.py).
        keys, log_keys = await sealed_keys.load_rings(self.settings, self.db)
        # Before the vote service opens: a bad token file stops the start with nothing to close.
        token = self.settings.admin_token or admin_token(self.settings.data_dir)
        eligibility_key = await eligibility_secret.load(self.settings, self.db)
        log_signer = LogSigner(key_name_for(self.settings.base_url), log_keys)
        store = sealed_keys.SealedKeyStore.of(self.settings, self.db)
        refresher = None
        if store is not None:  # a fleet: a rotation on any node reaches this one without a restart
            rings = {sealed_keys.RECEIPT: keys, sealed_keys.LOG: log_keys}
            refresher = sealed_keys.KeyRefresher(store, rings, self.settings.key_refresh_seconds)
        self.votes.open(keys, eligibility_key)
        self.rate_limits.open(eligibility_key)
        app.state.update(receipt_keys=keys, admin_token=token, eligibility_key=eligibility_key, log_signer=log_signer)
        # The ballot log's sequencer: beside the vote path, never in it (app/ballot_log/integrator.py).
        base_url = self.settings.base_url
        # Its reads have their own connections (the vote path's pool is not theirs to take); its
        # short write goes through the vote path's commit engine, and queues with group commits.
        log_db = Database(self.settings.database_url)
        engine = self.votes.committer.engine
        files = self.db.sqlite_files
        integrator = Integrator(
            log_db,
            log_signer,
            lambda poll_id: origin_for(base_url, poll_id),
            engine.commit,
            node_lock=None if files is None else Path(f"{files.path}.sequencer-lock"),
            durability=engine.check_files,
            helper=None
            if files is None or engine.write_lock_path is None
            else SequencerHelper(files, engine.write_lock_path, base_url),
        )
        app.state.update(log_integrator=integrator)
        # Everything loaded so far lives as long as the process: keep it out of the garbage
        # collector's full passes, which otherwise scan it all about once a second (~60 ms each).
        gc.collect()
        gc.freeze()
        integrator.start()
        if refresher is not None:
            refresher.start()
        try:
            yield
        finally:
            if refresher is not None:
                await refresher.stop()
            await integrator.stop()
            await log_db.dispose()
            await self.votes.close()
            await self.db.dispose()


def _receipt_keys(state: State) -> KeyRing:
    return state.receipt_keys


def _log_signer(state: State) -> LogSigner:
    return state.log_signer


def create_app(settings: Settings | None = None) -> Litestar:
    if settings is None:
        try:
            settings = Settings.from_env()
        except SettingsError as error:
            # uvicorn and the litestar CLI call this too: one clear line, not a traceback.
            raise SystemExit(f"error: {error}") from None
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    db = Database(settings.database_url)
    votes = VoteService(db)
    rate_limits = RateLimits(settings)
    backend = channels_backend(settings)
    channels = channels_plugin(backend)
    app = Litestar(
        route_handlers=[
            PollController,
            *vote_routes(votes, rate_limits),
            list_keys,
            *log_routes,
            verify_page,
            stream_results,
            *health_routes(votes),
            *organiser_handlers,
            *page_handlers,
        ],
        # Order matters: the live plugin's lifespan needs the vote service open and the channels up.
        plugins=[
            VoteServicePlugin(settings, db, votes, rate_limits),
            channels,
            LiveResultsPlugin(
                settings, db, votes.on_accepted, votes.polls.forget, votes.polls.forget_all, channels, backend
            ),
        ],
        middleware=[
            DefineMiddleware(
                StreamsPerClient, limit=settings.streams_per_client, client_header=settings.client_address_header
            ),
            DefineMiddleware(VoteRateLimits, limits=rate_limits),
        ],
        exception_handlers=exception_handlers,
        before_send=[add_security_headers, remember_language],
        template_config=template_config(),
        compression_config=page_compression(),
        openapi_config=OpenAPIConfig(
            title="Offline-first vote service",
            path="/schema",
            version="1",
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer"),
                    # A poll's own capability: `Authorization: Manage TOKEN` (docs/organisers.md).
                    "manage": SecurityScheme(type="http", scheme="Manage"),
                }
            ),
        ),
    )
    answer_head_on_schema_routes(app)
    return app
