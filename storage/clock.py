"""The one source of "now". Times are naive datetimes in the school's local time zone everywhere.

Tests swap in a FrozenClock to move time instead of sleeping.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


class Clock:
    def __init__(self, tz: str = "Asia/Shanghai") -> None:
        self.tz = ZoneInfo(tz)

    def now(self) -> datetime:
        return datetime.now(self.tz).replace(tzinfo=None)

    def aware(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self.tz)


class FrozenClock(Clock):
    def __init__(self, at: datetime, tz: str = "Asia/Shanghai") -> None:
        super().__init__(tz)
        self._at = at
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._at

    def set(self, at: datetime) -> None:
        with self._lock:
            self._at = at

    def advance(self, **kwargs: float) -> datetime:
        with self._lock:
            self._at = self._at + timedelta(**kwargs)
            return self._at


_clock: Clock = Clock()


def get_clock() -> Clock:
    return _clock


def set_clock(clock: Clock) -> None:
    global _clock
    _clock = clock


def now() -> datetime:
    return _clock.now()
