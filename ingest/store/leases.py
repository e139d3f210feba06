"""Periodic work that must run once per period across processes: a lease row per sweep.

The recovery sweep (pollers) and digest cutting (senders) each take their named lease for one
period before running; whoever gets it runs the sweep, the others skip it until the period ends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class LeaseStore(Protocol):
    def take_lease(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        """Take lease `name` for `owner` up to `until` if nobody holds it at `now`; whether it was taken."""
        ...
