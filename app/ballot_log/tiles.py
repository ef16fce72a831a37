"""C2SP tlog-tiles: where each tile lives, what it holds, and the tree's right edge as it grows.

A tile at level L holds up to 256 consecutive Merkle tree hashes at height 8·L; a full tile's
root is one hash of the tile above. Entry bundles follow the level-0 tiles' numbering.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from app.ballot_log.merkle import HASH_BYTES, node_hash, root_of

TILE_WIDTH = 256
TILE_HEIGHT = 8
FULL_TILE_BYTES = TILE_WIDTH * HASH_BYTES
MAX_LEVEL = 63
ENTRIES = "entries"

_LEVEL = r"(?P<level>0|[1-9][0-9]?|entries)"
_INDEX = r"(?P<index>(?:x[0-9]{3}/)*[0-9]{3})"
_WIDTH = r"(?:\.p/(?P<width>[1-9][0-9]?|1[0-9]{2}|2[0-4][0-9]|25[0-5]))?"
_TILE_PATH = re.compile(rf"{_LEVEL}/{_INDEX}{_WIDTH}")
MAX_INDEX_GROUPS = 7  # 10**21 tiles: far past any poll, and a bound on what a path may ask


@dataclass(frozen=True, slots=True)
class TileId:
    level: int | str  # 0…63, or "entries" for an entry bundle
    index: int
    width: int = TILE_WIDTH  # below 256: a partial tile

    @property
    def path(self) -> str:
        suffix = f".p/{self.width}" if self.width < TILE_WIDTH else ""
        return f"tile/{self.level}/{encode_index(self.index)}{suffix}"


def encode_index(index: int) -> str:
    """1234067 → x001/x234/067 (tlog-tiles: zero-padded groups of three, all but the last with x)."""
    digits = str(index)
    digits = digits.zfill(-(-len(digits) // 3) * 3)
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def parse_tile_path(path: str) -> TileId | None:
    """The tile a path after `tile/` names, or None when it is not a tile path exactly."""
    match = _TILE_PATH.fullmatch(path)
    if match is None or match["index"].count("/") >= MAX_INDEX_GROUPS:
        return None
    level: int | str = match["level"] if match["level"] == ENTRIES else int(match["level"])
    if isinstance(level, int) and level > MAX_LEVEL:
        return None
    groups = match["index"].replace("x", "").split("/")
    if len(groups) > 1 and groups[0] == "000":
        return None  # one index, one path: no leading zero groups
    width = int(match["width"]) if match["width"] else TILE_WIDTH
    return TileId(level, int("".join(groups)), width)


def tiles_for_size(size: int) -> list[TileId]:
    """Every hash tile a tree of this size is made of, full and partial (not the entry bundles)."""
    tiles = []
    level = 0
    while size >> (TILE_HEIGHT * level):
        count = size >> (TILE_HEIGHT * level)
        tiles += [TileId(level, index) for index in range(count // TILE_WIDTH)]
        if count % TILE_WIDTH:
            tiles.append(TileId(level, count // TILE_WIDTH, count % TILE_WIDTH))
        level += 1
    return tiles


def bundles_for_size(size: int) -> list[TileId]:
    bundles = [TileId(ENTRIES, index) for index in range(size // TILE_WIDTH)]
    if size % TILE_WIDTH:
        bundles.append(TileId(ENTRIES, size // TILE_WIDTH, size % TILE_WIDTH))
    return bundles


def all_tiles(leaf_hashes: Sequence[bytes]) -> dict[TileId, bytes]:
    """The tiles of the tree with these leaf hashes, computed from scratch (publish-log, audit)."""
    tiles: dict[TileId, bytes] = {}
    level, hashes = 0, list(leaf_hashes)
    while hashes:
        for start in range(0, len(hashes), TILE_WIDTH):
            chunk = hashes[start : start + TILE_WIDTH]
            tiles[TileId(level, start // TILE_WIDTH, len(chunk))] = b"".join(chunk)
        hashes = [root_of(hashes[i : i + TILE_WIDTH]) for i in range(0, len(hashes) - TILE_WIDTH + 1, TILE_WIDTH)]
        level += 1
    return tiles


def split_hashes(data: bytes) -> list[bytes]:
    return [data[i : i + HASH_BYTES] for i in range(0, len(data), HASH_BYTES)]


def root_from_edge(size: int, edge: Callable[[int], bytes]) -> bytes:
    """The tree's root from its right edge: `edge(level)` is that level's partial tile for this size.

    Each full subtree of the size's binary decomposition, of height h, is the root of 2**(h-8L)
    consecutive hashes of the partial tile at level L = h // 8.
    """
    subtrees = []
    for height in reversed(range(size.bit_length())):
        if not size >> height & 1:
            continue
        level, rise = divmod(height, TILE_HEIGHT)
        count = size >> (TILE_HEIGHT * level)  # hashes at height 8L in a tree of this size
        start = ((size >> height) - 1) << rise  # this subtree's first hash at height 8L
        hashes = split_hashes(edge(level))
        first = start - (count // TILE_WIDTH) * TILE_WIDTH
        subtrees.append(root_of(hashes[first : first + (1 << rise)]))
    # Subtrees fold right to left: the smallest pairs with the next larger one.
    root = subtrees[-1] if subtrees else root_of([])
    for subtree in reversed(subtrees[:-1]):
        root = node_hash(subtree, root)
    return root


@dataclass
class TreeEdge:
    """The right edge of a tree being appended to: per level, the tile that is not yet full.

    `load(level, index)` gives a stored partial tile. `changed` holds every tile the appends
    touched, full or partial, to be stored.
    """

    size: int
    load: Callable[[int, int], bytes]
    open_tiles: dict[int, tuple[int, bytearray]] = field(default_factory=dict)
    changed: dict[tuple[int, int], bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        level = 0
        while self.size >> (TILE_HEIGHT * level):
            count = self.size >> (TILE_HEIGHT * level)
            index, width = divmod(count, TILE_WIDTH)
            stored = self.load(level, index) if width else b""
            if len(stored) < width * HASH_BYTES:
                raise ValueError(f"tile {level}/{index} holds {len(stored) // HASH_BYTES} hashes, needs {width}")
            self.open_tiles[level] = (index, bytearray(stored[: width * HASH_BYTES]))
            level += 1

    def append(self, leaf_hashes: Iterable[bytes]) -> None:
        for leaf in leaf_hashes:
            self._add(0, leaf)
            self.size += 1

    def _add(self, level: int, node: bytes) -> None:
        index, hashes = self.open_tiles.get(level, (0, bytearray()))
        hashes += node
        self.changed[(level, index)] = bytes(hashes)
        if len(hashes) == FULL_TILE_BYTES:
            self.open_tiles[level] = (index + 1, bytearray())
            self._add(level + 1, root_of(split_hashes(bytes(hashes))))
        else:
            self.open_tiles[level] = (index, hashes)

    def root(self) -> bytes:
        return root_from_edge(self.size, lambda level: bytes(self.open_tiles[level][1]))
