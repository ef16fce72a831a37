"""Builds the Litestar application from settings."""

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
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins import CLIPluginProtocol, InitPluginProtocol
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from app import pages
from app.admin import admin_token
from app.api import api_handlers
from app.cli import register_commands
from app.db import Database
from app.keys import KeyRing, load_or_create
from app.live import LiveResultsPlugin, channels_backend, channels_plugin
from app.migrate import upgrade
from app.problems import exception_handlers
from app.security import add_security_headers
from app.settings import Settings, SettingsError
from app.stream import stream_handlers
from app.votes import VoteService

TEMPLATES_DIR = Path(__file__).parent / "templates"


class VoteServicePlugin(InitPluginProtocol, CLIPluginProtocol):
    """Wires the service together: state, dependencies, lifespan and the CLI commands."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)

    def on_cli_init(self, cli) -> None:  # type: ignore[no-untyped-def]
        register_commands(cli)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.state.update(settings=self.settings, db=self.db)
        app_config.dependencies.update(
            settings=Provide(lambda: self.settings, sync_to_thread=False),
            db=Provide(lambda: self.db, sync_to_thread=False),
            receipt_keys=Provide(_receipt_keys, sync_to_thread=False),
            vote_service=Provide(_votes, sync_to_thread=False),
        )
        app_config.lifespan.append(self.lifespan)
        return app_config

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        # Disk and database work happen here, not in create_app(): the CLI builds the app too.
        await upgrade(self.db)
        keys = load_or_create(self.settings.data_dir)
        app.state.update(
            receipt_keys=keys,
            votes=VoteService(self.db, keys),
            admin_token=self.settings.admin_token or admin_token(self.settings.data_dir),
        )
        # Everything loaded so far lives as long as the process: keep it out of the garbage
        # collector's full passes, which otherwise scan it all about once a second (~60 ms each).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await app.state.votes.close()
            await self.db.dispose()


def _receipt_keys(state: State) -> KeyRing:
    return state.receipt_keys


def _votes(state: State) -> VoteService:
    return state.votes


def create_app(settings: Settings | None = None) -> Litestar:
    if settings is None:
        try:
            settings = Settings.from_env()
        except SettingsError as error:
            # uvicorn and the litestar CLI call this too: one clear line, not a traceback.
            raise SystemExit(f"error: {error}") from None
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    backend = channels_backend(settings)
    channels = channels_plugin(backend)
    return Litestar(
        route_handlers=[*api_handlers, *pages.page_handlers, *stream_handlers],
        # Order matters: the live plugin's lifespan uses the vote service and the channels.
        plugins=[VoteServicePlugin(settings), channels, LiveResultsPlugin(settings, channels, backend)],
        exception_handlers=exception_handlers,
        before_send=[add_security_headers],
        template_config=TemplateConfig(
            directory=TEMPLATES_DIR,
            engine=JinjaTemplateEngine,
            engine_callback=getattr(pages, "configure_templates", None),
        ),
        openapi_config=OpenAPIConfig(
            title="Offline-first vote service",
            version="1",
            components=Components(security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}),
        ),
    )
