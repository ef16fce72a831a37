"""Types for the app-wide dependencies that handlers declare by name (see factory.py)."""

from litestar.di import NamedDependency

from app.db import Database
from app.keys import KeyRing
from app.settings import Settings
from app.votes import VoteService

DatabaseDep = NamedDependency[Database]
"""Declare as `db: DatabaseDep`."""
SettingsDep = NamedDependency[Settings]
"""Declare as `settings: SettingsDep`."""
ReceiptKeysDep = NamedDependency[KeyRing]
"""Declare as `receipt_keys: ReceiptKeysDep`."""
VoteServiceDep = NamedDependency[VoteService]
"""Declare as `vote_service: VoteServiceDep`."""
