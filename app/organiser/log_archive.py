"""The ballot log as one download: what `litestar polls publish-log` writes (tlog-tiles, poll.json,
log-keys.json), as a gzipped tar streamed file by file, so memory stays bounded by the largest
file (an entry bundle) however large the poll.

Its one folder, `{poll_id}-ballot-log/`, is what `litestar polls audit DIR` recounts.
"""

from __future__ import annotations

import json
import tarfile
import zlib
from collections.abc import AsyncIterator

import msgspec

from app.ballot_log import store
from app.ballot_log.entries import bundle
from app.ballot_log.log_keys import LogSigner
from app.ballot_log.publish import KEYS_FILE, POLL_FILE
from app.ballot_log.tiles import bundles_for_size, tiles_for_size
from app.polls.store import Poll
from app.storage.db import Database

BLOCK = tarfile.BLOCKSIZE
_GZIP = 16 + zlib.MAX_WBITS  # a gzip wrapper, as `tar xzf` and every unarchiver read


class NoLogYet(LookupError):
    """No vote has reached the poll's log: there is nothing signed to export."""


def folder(poll_id: str) -> str:
    return f"{poll_id}-ballot-log"


async def log_files(db: Database, poll: Poll, signer: LogSigner) -> AsyncIterator[tuple[str, bytes]]:
    """(path, bytes) of each file, the checkpoint last (as publish-log writes them). The checkpoint
    is read first; tiles and bundles only grow, so reading them after, each in a short read of
    its own, gives exactly the log it signs."""
    async with db.read() as conn:
        checkpoint = await store.load_checkpoint(conn, poll.id)
    if checkpoint is None:
        raise NoLogYet(poll.id)
    yield POLL_FILE, msgspec.json.encode(poll)
    yield KEYS_FILE, json.dumps({"vkey": signer.vkey, "vkeys": [v.vkey for v in signer.verifiers()]}, indent=1).encode()
    for tile in tiles_for_size(checkpoint.size):
        assert isinstance(tile.level, int)
        async with db.read() as conn:
            stored = (await store.load_tiles(conn, poll.id, [(tile.level, tile.index)])).get((tile.level, tile.index))
        if stored is None or len(stored) < tile.width * 32:
            raise LookupError(f"poll {poll.id!r}: {tile.path} is missing from the database")
        yield tile.path, stored[: tile.width * 32]
    for bundle_id in bundles_for_size(checkpoint.size):
        async with db.read() as conn:
            entries = await store.load_entries(conn, poll.id, bundle_id.index * 256, bundle_id.width)
        yield bundle_id.path, bundle(entries)
    yield "checkpoint", checkpoint.note


def tar_member(path: str, data: bytes, mtime: int) -> bytes:
    """One file as a tar member: its header block, its bytes, and padding to a whole block."""
    info = tarfile.TarInfo(path)
    info.size = len(data)
    info.mtime = mtime
    info.mode = 0o644
    return info.tobuf(format=tarfile.USTAR_FORMAT) + data + b"\0" * (-len(data) % BLOCK)


async def tar_gz(files: AsyncIterator[tuple[str, bytes]], top: str, mtime: int) -> AsyncIterator[bytes]:
    """The files as a .tar.gz, one compressed chunk per file."""
    gzip = zlib.compressobj(6, zlib.DEFLATED, _GZIP)
    async for path, data in files:
        chunk = gzip.compress(tar_member(f"{top}/{path}", data, mtime))
        if chunk:
            yield chunk
    yield gzip.compress(b"\0" * 2 * BLOCK) + gzip.flush()  # the end-of-archive marker
