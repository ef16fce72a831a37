"""A fleet's signing keys, held in the database sealed under the key-encryption key every node has
(app/core/key_encryption.py): one rotation reaches every node, with no directory to copy.

Each node re-reads them every VOTE_KEY_REFRESH_SECONDS and replaces its rings in place. A rotated
key is published at once and signs from a time stored with it, three of those intervals later, by
which every node publishes it: no receipt or checkpoint is signed with a key another node does not
show at /api/v1/keys, and every node switches at that instant (as far as their clocks agree).
Without a key-encryption key, the keys stay files in the data dir (app/core/keys.py).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.core import keys
from app.core.key_encryption import KeyEncryptionError, KeyEncryptionKey
from app.core.keys import KeyRing, ReceiptKey
from app.core.settings import Settings
from app.storage.db import Database
from app.storage.schema import sealed_keys

RECEIPT = "receipt"
LOG = "log"
ELIGIBILITY = "eligibility"
FIRST_KEY_NS = 0  # the first key's id: of nodes starting together, one inserts it, the rest read it
ACTIVATION_INTERVALS = 3  # refreshes between a rotation and the new key's first signature
SEED_BYTES = 32
KEY_DIRS = {RECEIPT: keys.KEY_DIR_NAME, LOG: keys.LOG_KEY_DIR_NAME}

log = logging.getLogger(__name__)


class SealedKeyStore:
    """The sealed keys of one database, opened with one key-encryption key."""

    def __init__(self, db: Database, kek: KeyEncryptionKey) -> None:
        self.db = db
        self.kek = kek

    @classmethod
    def of(cls, settings: Settings, db: Database) -> SealedKeyStore | None:
        """The store when the settings name a key-encryption key, else None (keys in files)."""
        if settings.key_encryption_key_file is None:
            return None
        return cls(db, KeyEncryptionKey.read(settings.key_encryption_key_file))

    async def seeds(self, purpose: str) -> list[tuple[int, int, bytes]]:
        """(created_ns, active_from ms, seed) of each key, oldest first."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                select(sealed_keys.c.created_ns, sealed_keys.c.active_from, sealed_keys.c.sealed)
                .where(sealed_keys.c.purpose == purpose)
                .order_by(sealed_keys.c.created_ns)
            )
            return [(row.created_ns, row.active_from, self.kek.open(bytes(row.sealed))) for row in rows]

    async def ensure(self, purpose: str, first: Callable[[], list[tuple[int, bytes]]]) -> None:
        """Stores `first()` (seeds with their creation times) when the purpose has no key yet."""
        if await self.seeds(purpose):
            return
        seeds = first() or [(FIRST_KEY_NS, secrets.token_bytes(SEED_BYTES))]
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    sealed_keys.insert(),
                    [
                        # The oldest takes the agreed first id, so that a second node's insert fails.
                        {
                            "purpose": purpose,
                            "created_ns": FIRST_KEY_NS if n == 0 else created_ns,
                            "active_from": 0,
                            "sealed": self.kek.seal(seed),
                        }
                        for n, (created_ns, seed) in enumerate(seeds)
                    ],
                )
        except IntegrityError:
            pass  # another node stored the first keys first: theirs are the fleet's

    async def add(self, purpose: str, seed: bytes, active_from_ms: int) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                sealed_keys.insert().values(
                    purpose=purpose, created_ns=time.time_ns(), active_from=active_from_ms, sealed=self.kek.seal(seed)
                )
            )

    async def ring_keys(self, purpose: str) -> list[ReceiptKey]:
        return [keys.key_of_seed(seed, active_from) for _, active_from, seed in await self.seeds(purpose)]


async def load_rings(settings: Settings, db: Database) -> tuple[KeyRing, KeyRing]:
    """The receipt and ballot log key rings: from the database when a key-encryption key is set
    (the data dir's key files, if any, are imported first), else from the data dir's files."""
    store = SealedKeyStore.of(settings, db)
    if store is None:
        return keys.load_or_create(settings.data_dir), keys.load_or_create(settings.data_dir, keys.LOG_KEY_DIR_NAME)
    rings = []
    for purpose in (RECEIPT, LOG):
        await store.ensure(purpose, lambda p=purpose: keys.file_seeds(settings.data_dir, KEY_DIRS[p]))
        rings.append(KeyRing(await store.ring_keys(purpose)))
    return rings[0], rings[1]


async def rotate(settings: Settings, db: Database, purpose: str) -> ReceiptKey:
    """A new key: at once in the data dir's files, or in the database, where it signs only once
    every node has had time to publish it."""
    store = SealedKeyStore.of(settings, db)
    if store is None:
        keys.load_or_create(settings.data_dir, KEY_DIRS[purpose])
        return keys.rotate(settings.data_dir, KEY_DIRS[purpose])
    await load_rings(settings, db)  # the first keys come first, so the new one is the newest
    seed = secrets.token_bytes(SEED_BYTES)
    active_from = int((time.time() + ACTIVATION_INTERVALS * settings.key_refresh_seconds) * 1000)
    await store.add(purpose, seed, active_from)
    return keys.key_of_seed(seed, active_from)


class KeyRefresher:
    """Re-reads the fleet's keys on an interval and replaces the rings in place."""

    def __init__(self, store: SealedKeyStore, rings: dict[str, KeyRing], interval_s: float) -> None:
        self.store = store
        self.rings = rings
        self.interval_s = interval_s
        self.task: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        for purpose, ring in self.rings.items():
            ring.replace(await self.store.ring_keys(purpose))

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="key refresher")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.refresh()
            except KeyEncryptionError:
                # A key this node cannot open: keep signing with the ones it has, all still published.
                log.error("a stored key does not open with this node's key-encryption key; keys not refreshed")
            except Exception as error:  # the database away: the keys in memory stay valid meanwhile
                log.warning("keys not refreshed: %s", error)
