"""A poll's ballot log as C2SP tlog-tiles under /api/v1/polls/{poll_id}/log/.

The checkpoint changes within seconds, so it is cached for a few; a tile or bundle of a given
width never changes once served, so it is cached for good.
"""

from __future__ import annotations

from litestar import Response
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from app.ballot_log import store
from app.ballot_log.checkpoint import Checkpoint
from app.ballot_log.entries import bundle
from app.ballot_log.log_keys import LogSigner, origin_for
from app.ballot_log.merkle import EMPTY_ROOT, HASH_BYTES
from app.ballot_log.tiles import ENTRIES, TILE_WIDTH, parse_tile_path
from app.core import problems
from app.edge.deps import DatabaseDep, SettingsDep
from app.edge.errors import problem_specs
from app.edge.http import PollId, get_or_head

LogSignerDep = NamedDependency[LogSigner]
"""Declare as `log_signer: LogSignerDep`."""

CHECKPOINT_CACHE_CONTROL = "public, max-age=2"  # the bound is 5 s; a vote shows within 1 s + this
IMMUTABLE = "public, max-age=31536000, immutable"
OCTETS = "application/octet-stream"
PREFIX = "/api/v1/polls/{poll_id:str}/log"


@get_or_head(
    f"{PREFIX}/checkpoint",
    operation_id="getLogCheckpoint",
    summary="The poll's ballot log: its latest signed checkpoint (C2SP tlog-checkpoint)",
    tags=["ballot log"],
    responses={
        200: ResponseSpec(str, media_type="text/plain; charset=utf-8", description="A signed note."),
        **problem_specs(problems.InvalidRequest, problems.PollNotFound),
    },
)
async def log_checkpoint(
    db: DatabaseDep, settings: SettingsDep, log_signer: LogSignerDep, poll_id: PollId
) -> Response[bytes]:
    async with db.read() as conn:
        stored = await store.load_checkpoint(conn, poll_id)
        if stored is None and not await store.poll_exists(conn, poll_id):
            raise problems.PollNotFound.named(poll_id)
    # A poll without votes yet has the empty log; its checkpoint is made when asked for.
    note = stored.note if stored else log_signer.sign(Checkpoint(origin_for(settings.base_url, poll_id), 0, EMPTY_ROOT))
    # Litestar adds "; charset=utf-8" to text types itself.
    return Response(note, media_type="text/plain", headers={"Cache-Control": CHECKPOINT_CACHE_CONTROL})


@get_or_head(
    f"{PREFIX}/tile/{{tile_path:path}}",
    operation_id="getLogTile",
    summary="A hash tile (tile/L/N[.p/W]) or an entry bundle (tile/entries/N[.p/W]) of the poll's ballot log",
    tags=["ballot log"],
    responses={
        200: ResponseSpec(bytes, media_type=OCTETS, description="Hashes, or uint16-length-prefixed entries."),
        **problem_specs(problems.InvalidRequest, problems.PollNotFound, problems.NotFound),
    },
)
async def log_tile(db: DatabaseDep, poll_id: PollId, tile_path: FromPath[str]) -> Response[bytes]:
    tile = parse_tile_path(tile_path.lstrip("/"))
    if tile is None:
        raise problems.NotFound("Not a tile of the ballot log (see C2SP tlog-tiles).")
    async with db.read() as conn:
        checkpoint = await store.load_checkpoint(conn, poll_id)
        if checkpoint is None and not await store.poll_exists(conn, poll_id):
            raise problems.PollNotFound.named(poll_id)
        size = checkpoint.size if checkpoint else 0
        if tile.level == ENTRIES:
            first = tile.index * TILE_WIDTH
            content = None
            if first + tile.width <= size:
                content = bundle(await store.load_entries(conn, poll_id, first, tile.width))
        else:
            assert isinstance(tile.level, int)
            stored = (await store.load_tiles(conn, poll_id, [(tile.level, tile.index)])).get((tile.level, tile.index))
            wanted = tile.width * HASH_BYTES
            content = stored[:wanted] if stored is not None and len(stored) >= wanted else None
    if content is None:
        raise problems.NotFound("The ballot log has no such tile yet.")
    return Response(content, media_type=OCTETS, headers={"Cache-Control": IMMUTABLE})


log_routes = [log_checkpoint, log_tile]
