"""Builds the Litestar application from settings: the one place where the layers meet."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import CLIPluginProtocol, InitPluginProtocol

from app.cli import register_commands
from app.core.admin_token import admin_token
from app.core.keys import KeyRing, load_or_create
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
from app.live.plugin import LiveResultsPlugin, channels_backend, channels_plugin
from app.organiser.pages import organiser_handlers
from app.storage.db import Database
from app.storage.files import make_private_dir
from app.storage.first_start import refuse_lost_database
from app.storage.migrate import upgrade
from app.votes.service import VoteService


class VoteServicePlugin(InitPluginProtocol, CLIPluginProtocol):
    """Wires the service together: state, dependencies, lifespan and the CLI commands."""

    def __init__(self, settings: Settings, db: Database, votes: VoteService) -> None:
        self.settings = settings
        self.db = db
        self.votes = votes

    def on_cli_init(self, cli) -> None:  # type: ignore[no-untyped-def]
        register_commands(cli)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.state.update(settings=self.settings, db=self.db, votes=self.votes)
        app_config.dependencies.update(
            settings=Provide(lambda: self.settings, sync_to_thread=False),
            db=Provide(lambda: self.db, sync_to_thread=False),
            receipt_keys=Provide(_receipt_keys, sync_to_thread=False),
        )
        app_config.lifespan.append(self.lifespan)
        return app_config

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        # Disk and database work happen here, not in create_app(): the CLI builds the app too.
        make_private_dir(self.settings.data_dir)
        await refuse_lost_database(self.db, self.settings.data_dir)
        await upgrade(self.db)
        keys = load_or_create(self.settings.data_dir)
        # Before the vote service opens: a bad token file stops the start with nothing to close.
        token = self.settings.admin_token or admin_token(self.settings.data_dir)
        self.votes.open(keys)
        app.state.update(receipt_keys=keys, admin_token=token)
        # Everything loaded so far lives as long as the process: keep it out of the garbage
        # collector's full passes, which otherwise scan it all about once a second (~60 ms each).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await self.votes.close()
            await self.db.dispose()


def _receipt_keys(state: State) -> KeyRing:
    return state.receipt_keys


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
    backend = channels_backend(settings)
    channels = channels_plugin(backend)
    app = Litestar(
        route_handlers=[
            PollController,
            *vote_routes(votes),
            list_keys,
            stream_results,
            *health_routes(votes),
            *organiser_handlers,
            *page_handlers,
        ],
        # Order matters: the live plugin's lifespan needs the vote service open and the channels up.
        plugins=[
            VoteServicePlugin(settings, db, votes),
            channels,
            LiveResultsPlugin(settings, db, votes.on_accepted, votes.polls.forget, channels, backend),
        ],
        middleware=[
            DefineMiddleware(
                StreamsPerClient, limit=settings.streams_per_client, client_header=settings.client_address_header
            )
        ],
        exception_handlers=exception_handlers,
        before_send=[add_security_headers],
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
