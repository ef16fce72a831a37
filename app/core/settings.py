"""Service settings, read once from `VOTE_*` environment variables (and `PORT`)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.core.admin_token import token_problem

SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
MAX_WORKERS = 256
MAX_READ_TIMEOUT_S = 600


class SettingsError(ValueError):
    """A setting has a value the service cannot run with; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///var/votes.db"
    """SQLAlchemy async URL: `sqlite+aiosqlite:///path` or `postgresql+asyncpg://user@host/db`."""
    data_dir: Path = Path("var")
    """Where the receipt signing keys and the generated admin token live."""
    admin_token: str | None = None
    """Bearer token for the admin API; generated into `data_dir` when unset."""
    public_url: str | None = None
    """Base URL printed in poll links; defaults to http://127.0.0.1:$PORT."""
    port: int = 8000
    """Port for `make run` (`PORT`)."""
    dist_dir: Path = Path("dist")
    """Where build.py wrote the static assets."""
    redis_url: str | None = None
    """Redis for cross-worker live results; in-memory fan-out when unset."""
    redis_channel_prefix: str = "vote"
    """Prefix of the Redis pub/sub channel names, so that deployments can share one Redis."""
    live_heartbeat_seconds: float = 15.0
    """Idle time after which a results stream sends a comment line, so proxies keep it open."""
    log_level: str = "INFO"
    """Python logging level name."""
    workers: int = 1
    """Worker processes for `make run` / `python -m app`, each with its own listening socket."""
    header_timeout_seconds: float = 10.0
    """Time a request's line and headers may take to arrive; past it, 408 and the connection ends."""
    body_timeout_seconds: float = 30.0
    """Time a request's body may take to arrive after its headers; past it, 408 and the connection ends."""
    max_connections: int = 2000
    """Open connections per worker; a request on a connection past this gets 503 with Retry-After."""
    streams_per_client: int = 16
    """Open results streams per client and worker (429 past it); 0 turns the cap off."""
    client_address_header: str | None = None
    """Header in which a trusted reverse proxy names the client (`X-Real-IP`; of `X-Forwarded-For`
    the last entry, the one that proxy added); the TCP peer when unset."""
    rate_limit_per_client: int = 600
    """Vote requests a minute per client address, with a burst of 5 s worth in one second; 0 = off."""
    rate_limit_per_poll: int = 0
    """Vote requests a minute per poll, from all clients together; 0 = off."""
    poll_creation: str = "admin"
    """Who may create polls: `admin` (the admin token) or `open` (anyone, at a bounded rate)."""
    key_encryption_key_file: Path | None = None
    """A fleet's key-encryption key (32 bytes, base64): with it the signing keys live in the
    database, sealed, shared by every node (docs/deploy.md); in `data_dir` without it."""
    key_refresh_seconds: float = 5.0
    """How often a node re-reads the keys in the database; a rotated key signs only after 3 times this."""

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://127.0.0.1:{self.port}").rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            database_url=_database_url(env.get("VOTE_DATABASE_URL", defaults.database_url)),
            data_dir=Path(env.get("VOTE_DATA_DIR", str(defaults.data_dir))),
            admin_token=_admin_token(env.get("VOTE_ADMIN_TOKEN")),
            public_url=_http_url("VOTE_PUBLIC_URL", env.get("VOTE_PUBLIC_URL")),
            port=_port(env.get("PORT", str(defaults.port))),
            dist_dir=Path(env.get("VOTE_DIST_DIR", str(defaults.dist_dir))),
            redis_url=_redis_url(env.get("VOTE_REDIS_URL")),
            redis_channel_prefix=_channel_prefix(env.get("VOTE_REDIS_CHANNEL_PREFIX", defaults.redis_channel_prefix)),
            live_heartbeat_seconds=_heartbeat(
                env.get("VOTE_LIVE_HEARTBEAT_SECONDS", str(defaults.live_heartbeat_seconds))
            ),
            log_level=_log_level(env.get("VOTE_LOG_LEVEL", defaults.log_level)),
            workers=_workers(env.get("VOTE_WORKERS", str(defaults.workers))),
            header_timeout_seconds=_read_timeout(env, "VOTE_HEADER_TIMEOUT_SECONDS", defaults.header_timeout_seconds),
            body_timeout_seconds=_read_timeout(env, "VOTE_BODY_TIMEOUT_SECONDS", defaults.body_timeout_seconds),
            max_connections=_count(env, "VOTE_MAX_CONNECTIONS", defaults.max_connections, minimum=1),
            streams_per_client=_count(env, "VOTE_STREAMS_PER_CLIENT", defaults.streams_per_client, minimum=0),
            client_address_header=_header_name("VOTE_CLIENT_ADDRESS_HEADER", env.get("VOTE_CLIENT_ADDRESS_HEADER")),
            rate_limit_per_client=_count(env, "VOTE_RATE_LIMIT_PER_CLIENT", defaults.rate_limit_per_client, minimum=0),
            rate_limit_per_poll=_count(env, "VOTE_RATE_LIMIT_PER_POLL", defaults.rate_limit_per_poll, minimum=0),
            poll_creation=_poll_creation(env.get("VOTE_POLL_CREATION", defaults.poll_creation)),
            key_encryption_key_file=_key_file(env.get("VOTE_KEY_ENCRYPTION_KEY_FILE")),
            key_refresh_seconds=_refresh(env.get("VOTE_KEY_REFRESH_SECONDS", str(defaults.key_refresh_seconds))),
        )


def _database_url(value: str) -> str:
    try:
        url = make_url(value)
    except ArgumentError:
        raise SettingsError(f"VOTE_DATABASE_URL: cannot parse {value!r} as a database URL") from None
    if url.drivername not in SUPPORTED_DRIVERS:
        raise SettingsError(
            f"VOTE_DATABASE_URL: driver {url.drivername!r} is not supported; use one of {SUPPORTED_DRIVERS}"
        )
    if url.drivername.startswith("sqlite") and not url.database:
        raise SettingsError("VOTE_DATABASE_URL: an in-memory SQLite database would lose votes; name a file")
    return value


def _admin_token(value: str | None) -> str | None:
    if value is None:
        return None
    # Set but empty is refused too: it is more likely a secret that failed to arrive than a choice.
    problem = token_problem(value)
    if problem is not None:
        hint = "; unset it to have one generated into VOTE_DATA_DIR/admin-token" if not value else ""
        raise SettingsError(f"VOTE_ADMIN_TOKEN: {problem}{hint}")
    return value


def _http_url(name: str, value: str | None) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{name}: expected an http(s) URL, got {value!r}")
    return value


def _redis_url(value: str | None) -> str | None:
    if not value:
        return None
    if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
        raise SettingsError(f"VOTE_REDIS_URL: expected a redis:// URL, got {value!r}")
    return value


def _channel_prefix(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", value):
        raise SettingsError(f"VOTE_REDIS_CHANNEL_PREFIX: expected 1-64 of A-Z a-z 0-9 _ . : -, got {value!r}")
    return value


def _heartbeat(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 300:
        raise SettingsError(f"VOTE_LIVE_HEARTBEAT_SECONDS: expected seconds in (0, 300], got {value!r}")
    return seconds


def _key_file(value: str | None) -> Path | None:
    if value is None:
        return None
    # Set but empty is refused: more likely a secret that failed to arrive than a choice.
    if not value.strip():
        raise SettingsError(
            "VOTE_KEY_ENCRYPTION_KEY_FILE: is empty; name the file, or unset it to keep keys in VOTE_DATA_DIR"
        )
    return Path(value)


def _refresh(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 300:
        raise SettingsError(f"VOTE_KEY_REFRESH_SECONDS: expected seconds in (0, 300], got {value!r}")
    return seconds


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SettingsError(f"PORT: expected a port number 1-65535, got {value!r}")
    return int(value)


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError(f"VOTE_LOG_LEVEL: expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got {value!r}")
    return level


def _workers(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_WORKERS:
        raise SettingsError(f"VOTE_WORKERS: expected a number of processes 1-{MAX_WORKERS}, got {value!r}")
    return int(value)


def _read_timeout(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name, str(default))
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= MAX_READ_TIMEOUT_S:
        raise SettingsError(f"{name}: expected seconds in (0, {MAX_READ_TIMEOUT_S}], got {value!r}")
    return seconds


def _count(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    value = env.get(name, str(default))
    if not value.isdigit() or not minimum <= int(value) <= 1_000_000:
        raise SettingsError(f"{name}: expected a whole number {minimum}-1000000, got {value!r}")
    return int(value)


def _header_name(name: str, value: str | None) -> str | None:
    if not value:
        return None
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", value):
        raise SettingsError(f"{name}: expected a header name (A-Z a-z 0-9 -), got {value!r}")
    return value


def _poll_creation(value: str) -> str:
    if value not in ("admin", "open"):
        raise SettingsError(f"VOTE_POLL_CREATION: expected admin or open, got {value!r}")
    return value
