"""HTTP details shared by the routes: the poll id in a path, and conditional requests."""

from __future__ import annotations

import re
from typing import Annotated

from litestar.params import Parameter

from app.core.protocol import ID_PATTERN

PollId = Annotated[str, Parameter(pattern=ID_PATTERN, description="A poll id, [A-Za-z0-9_-]{1,64}.")]

# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text.
# Commas may stand inside a tag, so the list is scanned tag by tag rather than split.
_LIST_ITEM = re.compile(r'[\s,]*(?:W/)?("[\x21\x23-\x7e\x80-\xff]*")[ \t]*(?:,|$)')


def none_match(if_none_match: str | None, etag: str) -> bool:
    """True when If-None-Match names `etag` (or is `*`): the client's copy is current (RFC 9110
    §13.1.2, weak comparison: W/ is ignored on either side). A malformed header matches nothing."""
    if if_none_match is None:
        return False
    value = if_none_match.strip(" \t")
    if value == "*":
        return True
    wanted = etag.removeprefix("W/")
    position = 0
    while value[position:].strip(" \t,"):
        item = _LIST_ITEM.match(value, position)
        if item is None:
            return False
        if item.group(1) == wanted:
            return True
        position = item.end()
    return False
