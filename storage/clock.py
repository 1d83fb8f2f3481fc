"""Where "now" comes from. Times are naive datetimes in the school's local time zone everywhere.

The process's Runtime owns the one clock and everything asks it (`rt.clock`) or is given `now`; tests give the
Runtime a FrozenClock to move time instead of sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


class Clock:
    def __init__(self, tz: str = "Asia/Shanghai") -> None:
        self.tz = ZoneInfo(tz)

    def now(self) -> datetime:
        return datetime.now(self.tz).replace(tzinfo=None)

    def aware(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self.tz)

    def on_jump(self, follow: Callable[[float], None]) -> None:
        """Call `follow(seconds)` whenever this clock jumps (a FrozenClock moved by a test). Real time never
        jumps, so the real clock ignores it."""


class FrozenClock(Clock):
    def __init__(self, at: datetime, tz: str = "Asia/Shanghai") -> None:
        super().__init__(tz)
        self._at = at
        self._lock = threading.Lock()
        self._followers: list[Callable[[float], None]] = []

    def now(self) -> datetime:
        with self._lock:
            return self._at

    def on_jump(self, follow: Callable[[float], None]) -> None:
        """What else must move with this clock: the KV store's expiries (storage.kv `elapse`), so a dialog
        or a lock-out ends when the frozen time says so. Each follower once."""
        with self._lock:
            if follow not in self._followers:
                self._followers.append(follow)

    def set(self, at: datetime) -> None:
        with self._lock:
            delta, self._at = (at - self._at).total_seconds(), at
            followers = list(self._followers)
        for follow in followers:
            follow(delta)

    def advance(self, **kwargs: float) -> datetime:
        with self._lock:
            self._at = self._at + timedelta(**kwargs)
            at, followers = self._at, list(self._followers)
        for follow in followers:
            follow(timedelta(**kwargs).total_seconds())
        return at

