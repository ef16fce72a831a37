"""Types for the app-wide dependencies that handlers declare by name (see app/factory.py)."""

from litestar.di import NamedDependency

from app.core.keys import KeyRing
from app.core.settings import Settings
from app.live.fanout import LiveResults
from app.live.poll_news import PollNews
from app.storage.db import Database

DatabaseDep = NamedDependency[Database]
"""Declare as `db: DatabaseDep`."""
SettingsDep = NamedDependency[Settings]
"""Declare as `settings: SettingsDep`."""
ReceiptKeysDep = NamedDependency[KeyRing]
"""Declare as `receipt_keys: ReceiptKeysDep`."""
LiveResultsDep = NamedDependency[LiveResults]
"""Declare as `live: LiveResultsDep`."""
PollNewsDep = NamedDependency[PollNews]
"""Declare as `poll_news: PollNewsDep`."""
