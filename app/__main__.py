"""`make run`: migrate, make the keys, ensure a demo poll, print its URL, serve."""

from __future__ import annotations

import asyncio
import sys

from app.core.admin_token import AdminTokenError, admin_token
from app.core.key_encryption import KeyEncryptionError
from app.core.settings import Settings, SettingsError
from app.edge.limits import http_protocol
from app.eligibility import secret as eligibility_secret
from app.eligibility.secret import BadEligibilityKey
from app.polls.store import ensure_demo_poll
from app.storage.db import Database
from app.storage.files import make_private_dir
from app.storage.first_start import LostDatabase, refuse_lost_database
from app.storage.migrate import upgrade
from app.storage.sealed_keys import load_rings
from app.workers import serve

# Results streams never end by themselves: past this, a shutdown stops waiting and ends them.
GRACEFUL_SHUTDOWN_S = 3


async def prepare(settings: Settings) -> str:
    """What the workers' start-up would do, once and first, so that a refusal is one clear line."""
    make_private_dir(settings.data_dir)
    db = Database(settings.database_url)
    try:
        await refuse_lost_database(db, settings.data_dir)
        await upgrade(db)
        if settings.admin_token is None:
            admin_token(settings.data_dir)
        # The keys, made or opened once here: a wrong key-encryption key is one line, not N tracebacks.
        await load_rings(settings, db)
        await eligibility_secret.load(settings, db)
        return await ensure_demo_poll(db)
    finally:
        await db.dispose()


def main() -> None:
    try:
        settings = Settings.from_env()
        poll_id = asyncio.run(prepare(settings))
    except (SettingsError, AdminTokenError, LostDatabase, KeyEncryptionError, BadEligibilityKey) as error:
        sys.exit(f"error: {error}")
    print(f"Demo poll: {settings.base_url}/polls/{poll_id}", flush=True)
    serve(
        "127.0.0.1",
        settings.port,
        settings.workers,
        log_level=settings.log_level.lower(),
        # No client addresses in the logs: a vote must not be traceable to a network address.
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        # Read deadlines, a header cap and a connection cap, which uvicorn lacks (app/edge/limits.py).
        http=http_protocol(settings),
        # No WebSocket: an upgrade is refused with an answer, before uvicorn could log the client.
        ws="none",
    )


if __name__ == "__main__":
    main()
