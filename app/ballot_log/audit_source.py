"""What `litestar polls audit URL_OR_DIR` reads besides the log: the poll, its keys, its results.

On the service (`…/api/v1/polls/{poll_id}/log/`) they come from its API; on a mirror or in a
directory written by publish-log, from `poll.json` and `log-keys.json` beside the log. Keys given
with --vkey are trusted instead of the published ones: that is what makes an audit independent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.ballot_log.audit import AuditFailure, PollWindow
from app.ballot_log.note import NoteError, Verifier
from app.ballot_log.sources import DirSource, HttpSource, Source, SourceError

SERVICE_LOG_URL = re.compile(r"^(?P<base>https?://[^/]+(?:/.*?)?)/api/v1/polls/(?P<poll_id>[A-Za-z0-9_-]{1,64})/log/?$")


@dataclass
class AuditTarget:
    log: Source
    poll: PollWindow
    verifiers: list[Verifier]
    results: dict[str, int] | None  # the service's own counts, to compare with the recount


def resolve(where: str, pinned_vkeys: list[str]) -> AuditTarget:
    try:
        return _resolve(where, pinned_vkeys)
    except (SourceError, NoteError, ValueError, KeyError, TypeError) as error:
        raise AuditFailure(f"cannot read the poll beside the log: {error}") from None


def _resolve(where: str, pinned_vkeys: list[str]) -> AuditTarget:
    service = SERVICE_LOG_URL.match(where)
    results = None
    if service:
        api = HttpSource(service["base"])
        poll_path = f"api/v1/polls/{service['poll_id']}"
        poll = _json(api.get(poll_path))
        keys = _json(api.get("api/v1/keys"))["log"]
        results = {o["id"]: o["votes"] for o in _json(api.get(f"{poll_path}/results"))["options"]}
        log: Source = HttpSource(where)
    else:
        log = HttpSource(where) if re.match(r"https?://", where) else DirSource(Path(where))
        poll = _json(log.get("poll.json"))
        keys = _json(log.get("log-keys.json"))
    vkeys = pinned_vkeys or keys["vkeys"]
    window = PollWindow(
        poll_id=poll["id"],
        option_ids=frozenset(o["id"] for o in poll["options"]),
        created_at=int(poll["created_at"]),
        closes_at=None if poll["closes_at"] is None else int(poll["closes_at"]),
    )
    return AuditTarget(log, window, [Verifier.parse(v) for v in vkeys], results)


def _json(data: bytes) -> Any:
    return json.loads(data)
