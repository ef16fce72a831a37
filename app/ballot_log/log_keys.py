"""The ballot log's signing keys and names: like the receipt keys (app/core/keys.py), in their own
directory, `{data_dir}/log-keys/`, or beside them in the database for a fleet
(app/storage/sealed_keys.py). The newest signs new checkpoints; every one stays published."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from nacl.signing import SigningKey

from app.ballot_log.checkpoint import Checkpoint
from app.ballot_log.note import Verifier, sign
from app.core import keys

LOG_KEY_DIR = keys.LOG_KEY_DIR_NAME


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
    ring: keys.KeyRing
    """Replaced in place when a fleet's keys are refreshed (app/storage/sealed_keys.py)."""

    @classmethod
    def load(cls, data_dir: Path, base_url: str) -> LogSigner:
        return cls(key_name_for(base_url), keys.load_or_create(data_dir, LOG_KEY_DIR))

    @property
    def active(self) -> SigningKey:
        return self.ring.active.signing_key

    @property
    def all_keys(self) -> tuple[SigningKey, ...]:
        return tuple(key.signing_key for key in self.ring.keys)

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
