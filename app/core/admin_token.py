"""The admin bearer token: from VOTE_ADMIN_TOKEN, or generated once into the data dir (0600).

A token that is empty, short or unsendable is never used: VOTE_ADMIN_TOKEN or a token file
like that stops the start, since an empty token would match an empty `Authorization: Bearer`.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

TOKEN_FILE = "admin-token"
MIN_TOKEN_LENGTH = 16  # the generated token has 43 characters
GENERATED_TOKEN_BYTES = 32
NOT_VISIBLE_ASCII = "must be visible ASCII characters, without spaces"


class AdminTokenError(ValueError):
    """The admin token cannot be used; the message names where it came from and what to do."""


def token_problem(token: str) -> str | None:
    """Why `token` cannot be the admin token, or None when it can."""
    if not token:
        return "is empty"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"must be at least {MIN_TOKEN_LENGTH} characters"
    # What an Authorization header carries unchanged: visible ASCII, no spaces.
    if not all("!" <= char <= "~" for char in token):
        return NOT_VISIBLE_ASCII
    return None


def admin_token(data_dir: Path) -> str:
    """The token in `data_dir`, generated on the first start; a bad one raises AdminTokenError."""
    path = data_dir / TOKEN_FILE
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        _generate(path)
    return _read(path)


def _generate(path: Path) -> None:
    # Written whole and fsynced under a temporary name, then linked into place: no reader, and no
    # restart after a crash or a full disk, ever finds a partly written token.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{TOKEN_FILE}.")  # 0600
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(GENERATED_TOKEN_BYTES))
            file.flush()
            os.fsync(file.fileno())
        try:
            # Unlike a rename, a link never replaces: of workers starting together, the first wins.
            os.link(temporary, path)
        except FileExistsError:
            return
        _fsync_dir(path.parent)
    finally:
        os.unlink(temporary)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: Path) -> str:
    try:
        token = path.read_bytes().decode("ascii").strip()
    except UnicodeDecodeError:
        problem: str | None = NOT_VISIBLE_ASCII
    else:
        problem = token_problem(token)
    if problem is not None:
        raise AdminTokenError(
            f"{path}: the admin token {problem}; delete the file to have a new one generated, or set VOTE_ADMIN_TOKEN"
        )
    return token
