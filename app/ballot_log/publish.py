"""publish-log: a poll's ballot log as static files, for a CDN mirror or an auditor's disk.

The tlog-tiles layout at the root of the directory (`checkpoint`, `tile/…`), plus `poll.json`
(the poll's options and window, which the audit checks votes against) and `log-keys.json`
(the log's verifier keys, as GET /api/v1/keys lists them under "log").
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec

from app.ballot_log import store
from app.ballot_log.entries import bundle
from app.ballot_log.log_keys import LogSigner
from app.ballot_log.tiles import bundles_for_size, tiles_for_size
from app.storage.db import Database

POLL_FILE = "poll.json"
KEYS_FILE = "log-keys.json"


class PublishError(RuntimeError):
    pass


async def publish(db: Database, poll_id: str, out: Path, signer: LogSigner, poll: object) -> int:
    """Writes the log as of its latest checkpoint; the number of entries written."""
    async with db.read() as conn:
        checkpoint = await store.load_checkpoint(conn, poll_id)
        if checkpoint is None:
            raise PublishError(f"poll {poll_id!r} has no checkpoint yet: no vote has been integrated")
        files: dict[str, bytes] = {}
        for tile in tiles_for_size(checkpoint.size):
            assert isinstance(tile.level, int)
            stored = (await store.load_tiles(conn, poll_id, [(tile.level, tile.index)])).get((tile.level, tile.index))
            if stored is None or len(stored) < tile.width * 32:
                raise PublishError(f"poll {poll_id!r}: {tile.path} is missing from the database")
            files[tile.path] = stored[: tile.width * 32]
        for bundle_id in bundles_for_size(checkpoint.size):
            first = bundle_id.index * 256
            files[bundle_id.path] = bundle(await store.load_entries(conn, poll_id, first, bundle_id.width))
    files["checkpoint"] = checkpoint.note
    files[POLL_FILE] = msgspec.json.encode(poll)
    files[KEYS_FILE] = json.dumps(
        {"vkey": signer.vkey, "vkeys": [v.vkey for v in signer.verifiers()]}, indent=1
    ).encode()
    for path, data in sorted(files.items(), key=lambda item: item[0] == "checkpoint"):
        _write(out / path, data)  # the checkpoint last: a mirror never names tiles it lacks
    return checkpoint.size


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_bytes(data)
    os.replace(partial, path)
