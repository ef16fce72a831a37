"""The Idempotency-Key request header (IETF draft "The Idempotency-Key HTTP Header Field")."""

from __future__ import annotations

import re

from app.core.problems import InvalidIdempotencyKey
from app.core.protocol import UUID_PATTERN

_UUID = re.compile(UUID_PATTERN)


def parse_sf_string(value: str) -> str:
    """An RFC 8941 sf-string: quoted, printable ASCII, with only \\" and \\\\ as escapes."""
    value = value.strip(" ")
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        raise ValueError("not a quoted string")
    out: list[str] = []
    chars = iter(value[1:-1])
    for char in chars:
        if char == "\\":
            escaped = next(chars, "")
            if escaped not in ('"', "\\"):
                raise ValueError("invalid escape")
            out.append(escaped)
        elif char == '"' or not " " <= char <= "~":
            raise ValueError("invalid character")
        else:
            out.append(char)
    return "".join(out)


def idempotency_key_from(header: str | None) -> str:
    """Accepts the Structured Field form ("…") and, for simple clients, the bare UUID."""
    if header is None or header.strip() == "":
        raise InvalidIdempotencyKey("Send the vote's idempotency_key in the Idempotency-Key header.")
    header = header.strip(" ")
    try:
        key = parse_sf_string(header) if header.startswith('"') else header
    except ValueError as error:
        raise InvalidIdempotencyKey(f"Idempotency-Key is not a Structured Field string: {error}.") from None
    if not _UUID.fullmatch(key):
        raise InvalidIdempotencyKey("Idempotency-Key must be a lower-case UUID.")
    return key
