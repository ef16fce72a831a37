"""The ballot log's signing keys and names: like the receipt keys (app/core/keys.py), in their own
directory, `{data_dir}/log-keys/`. The newest signs new checkpoints; every one stays published."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from nacl.signing import SigningKey

from app.ballot_log.checkpoint import Checkpoint
from app.ballot_log.note import Verifier, sign
from app.core import keys

LOG_KEY_DIR = "log-keys"


def log_host(base_url: str) -> str:
    """The host (and port) of the service's public URL, which names its logs."""
    return urlsplit(base_url).netloc


def origin_for(base_url: str, poll_id: str) -> str:
    """The checkpoint origin of a poll's log: `vote.example/polls/demo`."""
    return f"{log_host(base_url)}/polls/{poll_id}"


def key_name_for(base_url: str) -> str:
    """One key name for all the service's poll logs: the origins' common prefix."""
    return f"{log_host(base_url)}/polls"


@dataclass(frozen=True, slots=True)
class LogSigner:
    name: str
    active: SigningKey
    all_keys: tuple[SigningKey, ...]

    @classmethod
    def load(cls, data_dir: Path, base_url: str) -> LogSigner:
        ring = keys.load_or_create(data_dir, LOG_KEY_DIR)
        return cls(key_name_for(base_url), ring.active.signing_key, tuple(k.signing_key for k in ring.keys))

    def sign(self, checkpoint: Checkpoint) -> bytes:
        return sign(checkpoint.text(), self.name, self.active).encode()

    def verifiers(self) -> list[Verifier]:
        return [Verifier.of(self.name, bytes(key.verify_key)) for key in self.all_keys]

    @property
    def vkey(self) -> str:
        return Verifier.of(self.name, bytes(self.active.verify_key)).vkey


def rotate(data_dir: Path) -> None:
    keys.load_or_create(data_dir, LOG_KEY_DIR)
    keys.rotate(data_dir, LOG_KEY_DIR)
