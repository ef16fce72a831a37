"""Where an auditor reads a published log: a directory, or over HTTP (the service or a mirror)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Protocol

MAX_RESOURCE_BYTES = 1024 * 1024  # a full entry bundle is ~110 KB; nothing published is larger
HTTP_TIMEOUT_S = 30


class SourceError(Exception):
    """A resource the log must have is missing or unreadable."""


class Source(Protocol):
    def get(self, path: str) -> bytes: ...


class DirSource:
    def __init__(self, root: Path) -> None:
        self.root = root

    def get(self, path: str) -> bytes:
        file = self.root / path
        try:
            if file.stat().st_size > MAX_RESOURCE_BYTES:
                raise SourceError(f"{path} is too large to be part of a log")
            return file.read_bytes()
        except OSError:
            raise SourceError(f"{path} is missing from {self.root}") from None


class HttpSource:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"

    def get(self, path: str) -> bytes:
        url = self.base_url + path
        request = urllib.request.Request(url, headers={"Accept-Encoding": "identity"})
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
                data = response.read(MAX_RESOURCE_BYTES + 1)
        except urllib.error.HTTPError as error:
            raise SourceError(f"{url}: HTTP {error.code}") from None
        except (urllib.error.URLError, OSError) as error:
            raise SourceError(f"{url}: {error}") from None
        if len(data) > MAX_RESOURCE_BYTES:
            raise SourceError(f"{url} is too large to be part of a log")
        return data
